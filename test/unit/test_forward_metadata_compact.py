"""metadata.json written compactly (runtime/metadata.compact_json): a list of scalars on one line,
so the forward model's std-scale table (steps x 2n values) takes one line per step; the record
reads back equal and the model loads and predicts exactly as before."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from dynlearn_ros.benchmarks.predictor import write_std_scale
from dynlearn_ros.paths import resolve_model_dir
from dynlearn_ros.runtime.acrkn import AcrknForwardPredictor
from dynlearn_ros.runtime.metadata import ModelMetadata, compact_json


def test_any_json_record_reads_back_equal() -> None:
    rng = np.random.default_rng(0)
    record = {
        "floats": rng.standard_normal(50).tolist(),              # shortest repr must round-trip exactly
        "tiny_and_huge": [5e-324, 1.7976931348623157e308, -0.0, 1e-17],
        "table": rng.standard_normal((4, 3)).tolist(),
        "mixed": [1, "two", None, True, {"k": [1, [2, 3]]}, []],
        "empty": {}, "empty_list": [], "nested": {"a": {"b": {"c": [[]]}}},
        "text": 'quote " backslash \\ unicode µ\u2013 newline \n',
        "ints": list(range(10)), 7: "non-string key becomes a string as in json.dumps",
    }
    expected = json.loads(json.dumps(record))
    assert json.loads(compact_json(record)) == expected
    # bitwise float round trip (== on floats would accept -0.0 == 0.0)
    back = json.loads(compact_json(record))
    assert [np.float64(x).tobytes() for x in back["tiny_and_huge"]] == \
        [np.float64(x).tobytes() for x in record["tiny_and_huge"]]


def test_non_finite_refused() -> None:
    with pytest.raises(ValueError):
        compact_json({"x": [1.0, float("nan")]})


def test_std_scale_table_one_line_per_step_and_model_unchanged(tmp_path) -> None:
    src = resolve_model_dir("acrkn_iiwa_fwd")
    meta = json.loads((src / "metadata.json").read_text())
    cal = meta["acrkn"].get("std_scale")
    if cal is None:
        pytest.skip("the shipped forward model carries no std_scale")
    steps, width = len(cal["scale"]), len(cal["scale"][0])
    text = compact_json(meta)
    assert json.loads(text) == meta
    lines = text.splitlines()
    # every row of the scale table on its own line: the table is `steps` lines (+ 2 brackets), not
    # steps * width; the old writer (indent=1, one value a line) needed > steps * width lines
    rows = [json.loads(line.strip().rstrip(",")) for line in lines if line.strip().startswith("[") and
            line.strip().endswith(("]", "],"))]
    assert sum(len(r) == width for r in rows) >= steps
    assert len(lines) < steps + 1000 < steps * width

    # rewrite a copy through the package's writer and read the model back: identical predictions
    dst = tmp_path / "fwd"
    shutil.copytree(src, dst)
    write_std_scale(dst, cal)
    assert len((dst / "metadata.json").read_text().splitlines()) == len(lines)
    assert ModelMetadata.read(dst).to_dict() == ModelMetadata.read(src).to_dict()
    a, b = AcrknForwardPredictor.from_directory(src), AcrknForwardPredictor.from_directory(dst)
    n = a.metadata.n_joints
    obs = np.linspace(-0.5, 0.5, 2 * n)
    tau = np.linspace(-2.0, 2.0, n)
    out = [np.zeros(2 * n) for _ in range(4)]
    for k in range(30):
        ob = obs if k % 4 == 0 else None          # 3 of 4 steps without an observation
        assert a.predict(ob, tau, out[0], out[1]) and b.predict(ob, tau, out[2], out[3])
        np.testing.assert_array_equal(out[0], out[2])
        np.testing.assert_array_equal(out[1], out[3])   # the scaled variance too
