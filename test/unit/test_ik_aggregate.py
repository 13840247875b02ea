"""``ik aggregate``: mean and sample sd over seeds of ``ik eval --json`` results."""

from __future__ import annotations

import json
import math

import pytest

from dynlearn_ros.cli import main
from dynlearn_ros.learning.ik.aggregate import aggregate, markdown


def _run(chain: str, seed: int, success: float, first: float) -> dict:
    s = {"n": 200, "success": success, "success_by_starts": [first, success], "starts": 2,
         "pos_mm_median": 2.0 + seed, "rot_deg_median": 0.5, "iterations_mean": 30.0 + seed,
         "corrections_mean": 0.0}
    return {"chain": chain, "seed": seed, "ik": {"random": {"pose": {"learned-gn": s}}}}


def test_mean_and_sample_sd_over_the_seeds_of_several_files(tmp_path):
    """Seeds 0 and 1 in one file, seed 2 in another: success 0.96, 1.0, 0.98 -> mean 0.98,
    sample sd 0.02 (population sd would be 0.0163: the test tells them apart); another arm's
    row stays its own with one seed and no sd."""
    a = {"runs": [_run("iiwa", 0, 0.96, 0.80), _run("iiwa", 1, 1.0, 0.90)]}
    b = {"runs": [_run("iiwa", 2, 0.98, 0.85), _run("panda", 0, 0.97, 0.7)]}
    rows = {r["chain"]: r for r in aggregate([a, b])}
    iiwa = rows["iiwa"]
    assert iiwa["seeds"] == [0, 1, 2] and iiwa["starts"] == [2]
    assert iiwa["success"]["mean"] == pytest.approx(0.98)
    assert iiwa["success"]["sd"] == pytest.approx(0.02)
    assert iiwa["success_1"]["values"] == pytest.approx([0.80, 0.90, 0.85])
    assert iiwa["pos_mm_median"]["min"] == 2.0 and iiwa["pos_mm_median"]["max"] == 4.0
    assert math.isnan(rows["panda"]["success"]["sd"])
    md = markdown(list(rows.values()))
    assert "98.0 ± 2.0 (96.0, 100.0, 98.0)" in md and "97.0 (97.0)" in md
    fa, fb = tmp_path / "a.json", tmp_path / "b.json"
    fa.write_text(json.dumps(a))
    fb.write_text(json.dumps(b))
    out = tmp_path / "agg.json"
    assert main(["ik", "aggregate", str(fa), str(fb), "--json", str(out)]) == 0
    assert len(json.loads(out.read_text())["rows"]) == 2


def test_a_seed_given_twice_or_a_foreign_file_is_refused(tmp_path):
    a = {"runs": [_run("iiwa", 0, 0.96, 0.80)]}
    with pytest.raises(ValueError, match="twice"):
        aggregate([a, a])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"models": {}}))
    with pytest.raises(SystemExit, match="no 'runs'"):
        main(["ik", "aggregate", str(bad)])
