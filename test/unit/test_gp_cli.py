"""train -> eval -> export of a GP model through the ``dynlearn-ros`` verbs on a generic .npz data
set (the path a user's own logs take), then the exported directory through the controller's
registry; the GP run configuration's defaults."""

from __future__ import annotations

import json

import numpy as np
import pytest
from arm_data import sine_arm

from dynlearn_ros.datasets.format import TrajectoryData, save_npz


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    """6 episodes x 400 rows of a 2-joint arm with viscous friction, 100 Hz."""
    rng = np.random.default_rng(3)
    n_ep = 6
    t, ep, q, qd, qdd = sine_arm(rng, n_ep, 400, [1.3, 2.1])
    tau = np.stack([1.5 * qdd[:, 0] + 6.0 * np.cos(q[:, 0]) + 0.4 * qd[:, 0],
                    0.3 * qdd[:, 1] + 2.0 * np.cos(q[:, 0] + q[:, 1]) + 0.2 * qd[:, 1]], 1)
    tau += rng.normal(0, 0.05, tau.shape)
    data = TrajectoryData(t=t, q=q, qd=qd, qdd=qdd, tau=tau, episode=ep, joint_names=("a1", "a2"), dt=0.01,
                          meta={"source": "test"})
    return str(save_npz(tmp_path_factory.mktemp("d") / "arm.npz", data))


#: a small architecture and a short schedule (the test checks plumbing and a loose error bound)
SMALL = ["--model", "svdkl", "--seed", "0", "--epochs", "8", "--batch-size", "128", "--lr", "2e-2",
         "--gp-hidden", "32,32", "--gp-features", "4", "--gp-inducing", "32", "--no-progress"]


def test_train_eval_export_round_trip(npz, tmp_path):
    from dynlearn_ros.cli import main
    from dynlearn_ros.runtime.registry import load_inverse_model

    run = tmp_path / "run"
    assert main(["train", "--data", npz, "--out", str(run), *SMALL]) == 0
    summary = json.loads((run / "train.json").read_text())
    assert summary["config"]["num_inducing"] == 32 and summary["joint_names"] == ["a1", "a2"]
    assert main(["eval", "--data", npz, "--runs", str(run), "--json", str(tmp_path / "e.json"),
                 "--md", str(tmp_path / "e.md"), "--model", "svdkl"]) == 0
    res = json.loads((tmp_path / "e.json").read_text())
    met = res["models"]["svdkl s0"]
    # torque std here is ~ 4 N*m (gravity term 6 cos q1); a model that learned anything is far
    # below that on held-out episodes of the same motion family
    assert met["rmse"] < 1.0
    assert "| svdkl s0 |" in (tmp_path / "e.md").read_text()
    mdir = tmp_path / "model"
    assert main(["export", "--data", npz, "--model", "svdkl", "--run", str(run), "--out", str(mdir)]) == 0
    meta = json.loads((mdir / "metadata.json").read_text())
    assert meta["provenance"]["data_hash"] == summary["data_hash"]
    assert meta["metrics"]["test"]["rmse"] == pytest.approx(met["rmse"])
    pred = load_inverse_model("svdkl", mdir, ("a2", "a1"))  # reordered on load
    assert pred.n == 2


def test_common_defaults_are_replaced_by_gp_defaults():
    from dynlearn_ros.cli import build_parser
    from dynlearn_ros.commands._common import gp_run_config
    from dynlearn_ros.learning.training.gp_runs import GP_DEFAULTS

    args = build_parser().parse_args(["train", "--model", "svdkl"])
    assert gp_run_config(args).hparams() == GP_DEFAULTS["svdkl"]
    args = build_parser().parse_args(["train", "--model", "svdkl", "--epochs", "3", "--batch-size", "64",
                                      "--lr", "5e-3"])
    assert gp_run_config(args).hparams() == (3, 64, 5e-3)


def test_dkl_has_no_onnx_export(npz):
    from dynlearn_ros.cli import main

    with pytest.raises(SystemExit, match="no ONNX export"):
        main(["export", "--data", npz, "--model", "dkl"])


def test_novelty_and_report_verbs_on_a_trained_run(npz, tmp_path):
    """``novelty`` -> ``export --novelty`` -> ``report gp-compare --novelty`` -> ``report
    inverse-table``: the verbs that replaced the python -m entry points, on one small run."""
    from dynlearn_ros.cli import main

    run = tmp_path / "run"
    assert main(["train", "--data", npz, "--out", str(run), *SMALL]) == 0
    assert main(["novelty", "--data", npz, "--runs", str(run), "--k", "64", "--d0", "0", "0.5"]) == 0
    rec = json.loads((run / "novelty.json").read_text())
    assert rec["k"] == 64 and rec["d0"] in (0.0, 0.5) and len(rec["alpha"]) == 2
    assert rec["command"].startswith("dynlearn-ros novelty")
    # the term only adds variance (alpha >= 0), so the exported model's coverage cannot drop
    mdir = tmp_path / "m"
    assert main(["export", "--data", npz, "--model", "svdkl", "--run", str(run), "--novelty", "--out", str(mdir)]) == 0
    test = json.loads((mdir / "metadata.json").read_text())["metrics"]
    assert test["test"]["coverage95"] >= test["test_without_novelty"]["coverage95"]
    c_json, c_md = tmp_path / "c.json", tmp_path / "c.md"
    assert main(["report", "gp-compare", "--data", npz, "--runs", f"s={run}", "--novelty", "--json", str(c_json),
                 "--md", str(c_md)]) == 0
    models = json.loads(c_json.read_text())["models"]
    assert set(models) == {"s", "s + novelty"}
    assert models["s + novelty"]["test"]["mean_std"] >= models["s"]["test"]["mean_std"]
    assert "| s + novelty |" in c_md.read_text()
    t_json = tmp_path / "t.json"
    assert main(["report", "inverse-table", "--data", npz, "--runs", f"s={run}", "--no-analytic",
                 "--json", str(t_json)]) == 0
    table = json.loads(t_json.read_text())
    assert set(table["models"]) == {"s", "previous torque", "torque AR(5)", "training mean", "linear (least squares)"}
    assert table["command"].startswith("dynlearn-ros report inverse-table")


def test_novelty_refuses_a_missing_run(tmp_path):
    from dynlearn_ros.cli import main

    with pytest.raises(SystemExit, match="no checkpoint.pt"):
        main(["novelty", "--runs", str(tmp_path / "nothing")])
