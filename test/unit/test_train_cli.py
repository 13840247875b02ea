"""train -> eval -> export through the real CLI (``dynlearn_ros.cli.main``) on a synthetic .npz,
and one short run on the real Panda data set (skipped with a reason when the data is missing,
failing under CI)."""

import json

import numpy as np
import pytest
from data_required import require

from dynlearn_ros.cli import main
from dynlearn_ros.datasets.format import save_npz
from dynlearn_ros.learning.synthetic import pendulum_data
from dynlearn_ros.runtime.acrkn import AcrknInversePredictor
from dynlearn_ros.runtime.registry import load_inverse_model


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    return str(save_npz(tmp_path_factory.mktemp("d") / "pend.npz", pendulum_data(n_ep=10, T=120)))


def test_inverse_train_eval_export(npz, tmp_path):
    run = tmp_path / "run"
    small = ["--lod", "6", "--hidden", "16", "--window", "20", "--no-progress"]
    assert main(["train", "--data", npz, "--model", "acrkn-inv", "--epochs", "2", "--out", str(run), *small]) == 0
    summary = json.loads((run / "train.json").read_text())
    assert len(summary["history"]) == 2 and summary["best_epoch"] in (0, 1)
    assert summary["train_config"]["direction"] == "inverse"
    ffnn = tmp_path / "ffnn"
    assert main(["train", "--data", npz, "--model", "ffnn", "--epochs", "1", "--out", str(ffnn), *small]) == 0
    js, md = tmp_path / "r.json", tmp_path / "r.md"
    assert main(["eval", "--data", npz, "--runs", str(run), str(ffnn), "--json", str(js), "--md", str(md)]) == 0
    res = json.loads(js.read_text())
    assert set(res["models"]) == {"acrkn-inv s0", "ffnn s0", "previous torque", "training mean",
                                  "linear (least squares)"}
    for r in res["models"].values():
        assert len(r["rmse_per_joint"]) == 2 and np.isfinite(r["rmse"]) and r["rmse"] > 0
    assert "| acrkn-inv s0 |" in md.read_text()
    out = tmp_path / "model"
    assert main(["export", "--model", "acrkn-inv", "--run", str(run), "--out", str(out)]) == 0
    meta = json.loads((out / "metadata.json").read_text())
    # the metrics stored at export are the eval command's figures (same split, same model)
    assert meta["metrics"]["rmse"] == pytest.approx(res["models"]["acrkn-inv s0"]["rmse"], rel=1e-9)
    sb = meta["sigma_bounds"]
    assert len(sb["sigma_n"]) == 2 and all(a < b for a, b in zip(sb["sigma_n"], sb["sigma_f"], strict=True))
    assert isinstance(load_inverse_model("acrkn", out, ("j1", "j0")), AcrknInversePredictor)


def test_forward_train_eval(npz, tmp_path):
    run = tmp_path / "fwd"
    assert main(["train", "--data", npz, "--model", "acrkn-fwd", "--epochs", "1", "--out", str(run),
                 "--lod", "6", "--hidden", "16", "--no-progress"]) == 0
    js = tmp_path / "f.json"
    assert main(["eval", "--data", npz, "--runs", str(run), "--json", str(js)]) == 0
    r = json.loads(js.read_text())["models"]["acrkn-fwd s0"]
    assert list(r["rmse"]) == ["1", "3", "5", "7", "10"]
    # errors grow with the horizon for the model and for the previous-state predictor
    assert r["prev_state_rmse"]["10"] > r["prev_state_rmse"]["1"]
    assert r["rmse"]["10"] > r["rmse"]["1"]
    arx = json.loads(js.read_text())["models"]["ARX(2, 2)"]
    assert list(arx["rmse"]) == ["1", "3", "5", "7", "10"] and arx["windows"] == r["windows"]


def test_export_refuses_a_baseline(npz, tmp_path, capsys):
    run = tmp_path / "lstm"
    assert main(["train", "--data", npz, "--model", "lstm", "--epochs", "1", "--out", str(run),
                 "--lod", "4", "--hidden", "8", "--no-progress"]) == 0
    capsys.readouterr()
    # a user error: one line on stderr, exit 2, nothing written
    assert main(["export", "--run", str(run), "--out", str(tmp_path / "m"), "--no-metrics"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "RKN models" in err[0], err
    assert not (tmp_path / "m").exists()
    with pytest.raises(ValueError, match="RKN models"):   # --debug: the exception itself
        main(["--debug", "export", "--run", str(run), "--out", str(tmp_path / "m"), "--no-metrics"])


@pytest.mark.data
def test_real_panda_short_run(tmp_path):
    require("panda_gaz2019")
    run = tmp_path / "panda"
    assert main(["train", "--data", "panda_gaz2019", "--model", "acrkn-inv", "--epochs", "1",
                 "--max-train-samples", "3000", "--out", str(run), "--no-progress"]) == 0
    js = tmp_path / "p.json"
    assert main(["eval", "--data", "panda_gaz2019", "--runs", str(run), "--model", "analytic", "--json", str(js)]) == 0
    res = json.loads(js.read_text())["models"]
    # the Panda's torques have std ~[2.4, 17.9, 9.8, 5.9, 0.98, 1.05, 0.28] N*m; with the measured
    # previous torque fed back, even one epoch must stay far below that spread (< 1 N*m pooled)
    assert res["acrkn-inv s0"]["rmse"] < 1.0
    assert len(res["analytic (Pinocchio)"]["rmse_per_joint"]) == 7


def test_export_records_how_a_collected_data_set_was_made(tmp_path):
    """`collect` stores its command as meta["command_line"]; the exported model's provenance must
    carry it (export once read only meta["command"] and recorded nothing for collected sets)."""
    data = pendulum_data(n_ep=6, T=80)
    data.meta = {**(data.meta or {}), "command_line": "dynlearn-ros collect --episodes 6 --out pend.npz"}
    npz = save_npz(tmp_path / "collected.npz", data)
    run, out = tmp_path / "run", tmp_path / "model"
    small = ["--lod", "6", "--hidden", "16", "--window", "20", "--no-progress"]
    assert main(["train", "--data", str(npz), "--model", "acrkn-inv", "--epochs", "1", "--out", str(run), *small]) == 0
    assert main(["export", "--model", "acrkn-inv", "--run", str(run), "--out", str(out)]) == 0
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["provenance"]["details"]["data_command"] == "dynlearn-ros collect --episodes 6 --out pend.npz"
