"""``report aggregate``: mean +- spread over seeds of eval / inverse-table JSONs, on small
synthetic results whose mean, sample std and ratios are known in closed form."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from dynlearn_ros.cli import main
from dynlearn_ros.commands.report_aggregate import aggregate_markdown
from dynlearn_ros.learning.evaluation.aggregate import aggregate_results, layout, row_key


def forward_result(seed: int, model: float, prev: float, free: float = 0.2) -> dict:
    """A forward eval result of one seed: one learned model at horizons 1 and 10 (model, 2 model),
    the previous state (prev, 2 prev), an ARX row, names carrying the seed as eval writes them."""
    return {"split_seed": seed, "models": {
        f"acrkn-fwd s{seed}": {"rmse": {"1": model, "10": 2 * model},
                               "prev_state_rmse": {"1": prev, "10": 2 * prev},
                               "free_run": {"rmse": free, "prev_state_rmse": 0.5}, "nll_1step": -1.0 - seed},
        f"gru s{seed} [gru-w80-s{seed}]": {"rmse": {"1": 1.5 * model, "10": 3 * model}},
        "ARX(2, 2)": {"rmse": {"1": prev / 2, "10": 4 * prev}},
    }}


def test_row_key_removes_only_the_seed():
    assert row_key("acrkn-fwd s0") == "acrkn-fwd"
    assert row_key("acrkn-fwd s12 (1/10 rate)") == "acrkn-fwd (1/10 rate)"
    assert row_key("gru s1 [gru-w80-s1]") == "gru [gru-w80]"
    # no seed token: unchanged (an "s" inside a word is not a seed)
    for name in ("ARX(2, 2)", "previous state", "lstm, own tau fed back", "acrkn-inv ctl"):
        assert row_key(name) == name


def test_forward_mean_std_ratio_and_order():
    vals, prevs = [0.010, 0.012, 0.014], [0.020, 0.020, 0.028]
    agg = aggregate_results([forward_result(s, v, p) for s, (v, p) in enumerate(zip(vals, prevs, strict=True))],
                            ["s0", "s1", "s2"])
    assert agg["layout"] == "forward"
    t = agg["tables"]["forward"]
    assert t["reference"] == "previous state"
    assert set(t["rows"]) == {"acrkn-fwd", "gru [gru-w80]", "ARX(2, 2)", "previous state"}
    h1 = t["rows"]["acrkn-fwd"]["cells"]["h=1"]
    assert h1["mean"] == pytest.approx(0.012) and h1["std"] == pytest.approx(0.002)   # sample std (ddof 1)
    assert h1["n"] == 3 and h1["min"] == 0.010 and h1["max"] == 0.014
    # the ratio is the mean of the per-seed ratios (0.5, 0.6, 0.5), not 0.012 / 0.0227
    r = t["rows"]["acrkn-fwd"]["ratio"]["h=1"]
    assert r["mean"] == pytest.approx((0.5 + 0.6 + 0.5) / 3)
    assert r["std"] == pytest.approx(np.std([0.5, 0.6, 0.5], ddof=1))
    assert t["rows"]["acrkn-fwd"]["ratio"]["free run"]["mean"] == pytest.approx(0.4)
    assert "NLL (1-step)" not in t["rows"]["acrkn-fwd"]["ratio"]      # a log-likelihood has no ratio
    # order per column: ARX best at h=1 (prev / 2), worst at h=10 (4 prev)
    assert t["order"]["h=1"] == ["ARX(2, 2)", "acrkn-fwd", "gru [gru-w80]", "previous state"]
    assert t["order"]["h=10"] == ["acrkn-fwd", "gru [gru-w80]", "previous state", "ARX(2, 2)"]
    md = aggregate_markdown(agg)
    assert "| acrkn-fwd | 3 | 0.0120 ± 0.0020 | 0.0240 ± 0.0040 |" in md
    assert "h=1: ARX(2, 2) < acrkn-fwd < gru [gru-w80] < previous state" in md


def test_a_row_missing_in_one_seed_counts_its_seeds():
    res = [forward_result(s, 0.01, 0.02) for s in range(3)]
    del res[2]["models"]["gru s2 [gru-w80-s2]"]
    t = aggregate_results(res)["tables"]["forward"]
    assert t["rows"]["gru [gru-w80]"]["cells"]["h=1"]["n"] == 2
    assert t["rows"]["acrkn-fwd"]["cells"]["h=1"]["n"] == 3


def test_one_seed_has_no_std_and_a_diverged_seed_shows():
    agg = aggregate_results([forward_result(0, 0.01, 0.02)])
    cell = agg["tables"]["forward"]["rows"]["acrkn-fwd"]["cells"]["h=1"]
    assert cell["n"] == 1 and math.isnan(cell["std"])
    assert "| acrkn-fwd | 1 | 0.0100 | 0.0200 |" in aggregate_markdown(agg)
    res = [forward_result(s, 0.01, 0.02, free=f) for s, f in enumerate([0.2, 0.3, 3.4e9])]
    md = aggregate_markdown(aggregate_results(res))
    assert "1.13e+09 (max 3.4e+09)" in md     # a diverged seed is not hidden behind a std


def test_inverse_table_regimes_and_their_references():
    def res(seed: int, lstm_i: float, lstm_ii: float) -> dict:
        models = {"lstm, own tau fed back": {"test": {"rmse": lstm_i}},
                  "analytic (Pinocchio)": {"test": {"rmse": 2.0}},
                  f"lstm s{seed}": {"test": {"rmse": lstm_ii}},
                  "previous torque": {"test": {"rmse": 0.1}}}
        return {"models": models, "regime_reference": {"i": "analytic (Pinocchio)", "ii": "previous torque"},
                "regimes": {"i": {"lstm, own tau fed back": 0.0, "analytic (Pinocchio)": 1.0},
                            "ii": {f"lstm s{seed}": 0.0, "previous torque": 1.0}}}

    agg = aggregate_results([res(0, 1.0, 0.08), res(1, 3.0, 0.09)])
    assert agg["layout"] == "inverse-table"
    ti, tii = agg["tables"]["regime i"], agg["tables"]["regime ii"]
    assert ti["reference"] == "analytic (Pinocchio)" and tii["reference"] == "previous torque"
    assert ti["rows"]["lstm, own tau fed back"]["ratio"]["all"]["mean"] == pytest.approx(1.0)   # (0.5 + 1.5) / 2
    assert tii["rows"]["lstm"]["cells"]["all"]["mean"] == pytest.approx(0.085)
    assert tii["rows"]["lstm"]["ratio"]["all"]["mean"] == pytest.approx(0.85)


def test_inverse_eval_layout_per_joint():
    def res(v: float) -> dict:
        return {"joint_names": ["j1", "j2"], "models": {
            "lstm s0": {"rmse": v, "rmse_per_joint": [v, 2 * v]}, "previous torque": {"rmse": 1.0}}}

    agg = aggregate_results([res(0.5), res(0.7)])
    row = agg["tables"]["inverse"]["rows"]["lstm"]
    assert row["cells"]["j2"]["mean"] == pytest.approx(1.2) and row["ratio"]["all"]["mean"] == pytest.approx(0.6)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="no results"):
        aggregate_results([])
    with pytest.raises(ValueError, match="models"):
        layout({"rows": []})
    with pytest.raises(ValueError, match="different layouts"):
        aggregate_results([forward_result(0, 0.01, 0.02), {"models": {"m": {"rmse": 1.0}}}])


def test_cli_reads_the_files_and_writes_json_and_md(tmp_path, capsys):
    files = []
    for s, v in enumerate([0.010, 0.012, 0.014]):
        f = tmp_path / f"eval-s{s}.json"
        f.write_text(json.dumps(forward_result(s, v, 0.02)))
        files.append(str(f))
    out_json, out_md = tmp_path / "agg.json", tmp_path / "agg.md"
    assert main(["report", "aggregate", *files, "--json", str(out_json), "--md", str(out_md)]) == 0
    agg = json.loads(out_json.read_text())
    assert agg["seeds"] == ["eval-s0.json", "eval-s1.json", "eval-s2.json"] and agg["files"] == files
    assert agg["tables"]["forward"]["rows"]["acrkn-fwd"]["cells"]["h=10"]["mean"] == pytest.approx(0.024)
    assert "0.0120 ± 0.0020" in out_md.read_text() and "0.0120 ± 0.0020" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SystemExit, match="bad.json"):
        main(["report", "aggregate", str(bad)])
    with pytest.raises(SystemExit, match="--labels"):
        main(["report", "aggregate", *files, "--labels", "a"])
