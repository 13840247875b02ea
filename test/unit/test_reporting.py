"""dynlearn_ros.reporting: the one markdown table writer and the JSON + markdown output."""

from __future__ import annotations

import json

import pytest

from dynlearn_ros.reporting.markdown import md_table, write_outputs
from dynlearn_ros.reporting.tables import gp_eval_table, sequence_eval_table


def test_md_table_lines_and_refuses_ragged_rows():
    assert md_table(["a", "b"], [[1, "x"], [2.5, None]]) == "| a | b |\n|---|---|\n| 1 | x |\n| 2.5 | None |"
    with pytest.raises(ValueError, match="row 1 has 1 cells"):
        md_table(["a", "b"], [[1, 2], [3]])


def test_result_tables_have_one_cell_per_header_column():
    res = {"models": {"ffnn s0": {"rmse_per_joint": [0.1, 0.2], "rmse": 0.15, "nll": -1.0, "within_2std": 0.9},
                      "previous torque": {"rmse_per_joint": [0.3, 0.4], "rmse": 0.35}}}
    text = sequence_eval_table(res, "inverse", ["j1", "j2"])
    lines = text.strip().splitlines()
    assert lines[0] == "| model | j1 | j2 | all | NLL | within 2 std |"
    assert lines[3] == "| previous torque | 0.300 | 0.400 | 0.350 | - | - |"
    fwd = {"models": {"rkn s0": {"rmse": {"1": 0.01, "3": 0.02}, "nll_1step": -2.0, "epochs": 3, "best_epoch": 2,
                                 "prev_state_rmse": {"1": 0.05, "3": 0.1}}}}
    assert sequence_eval_table(fwd, "forward", []).splitlines()[-1] == "| previous state | 0.0500 | 0.1000 | - | - | - |"
    gp = {"models": {"svdkl s0": {"rmse_per_joint": [1.0], "rmse": 1.0, "nll": 0.5, "coverage95": 0.95,
                                  "mean_std": 0.7}}}
    assert gp_eval_table(gp, ["j1"]).splitlines()[2] == "| svdkl s0 | 1.000 | 1.000 | 0.500 | 0.950 | 0.700 |"


def test_write_outputs_creates_directories_and_prints(tmp_path, capsys):
    js, md = tmp_path / "a" / "r.json", tmp_path / "b" / "r.md"
    write_outputs({"x": 1}, "| t |\n", str(js), str(md))
    assert json.loads(js.read_text()) == {"x": 1} and md.read_text() == "| t |\n"
    assert "| t |" in capsys.readouterr().out
    write_outputs({"y": 2}, None, None, None)  # nothing to write: no error, nothing printed
    assert capsys.readouterr().out == ""
