"""``export`` of a static-task FFNN (train --task static): an svdkl-kind model directory whose
graph equals the torch module through onnxruntime, that the controller's runtime loads and runs,
and an export that would not match is refused before anything is written."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dynlearn_ros.cli import main
from dynlearn_ros.datasets.format import TrajectoryData, save_npz


def _two_joint_log(path, n: int, seed: int) -> str:
    """Rows (q, qd, qdd) at random and a smooth nonlinear torque of them (2 joints); not a time
    series (each row its own episode). The map need not be learnt well: only the export's parity
    with the trained module is under test."""
    rng = np.random.default_rng(seed)
    q, qd, qdd = rng.uniform(-2, 2, (n, 2)), rng.uniform(-1, 1, (n, 2)), rng.uniform(-3, 3, (n, 2))
    tau = np.c_[5 * np.cos(q[:, 0]) + 0.5 * qdd[:, 0] + 0.2 * qd[:, 0] * qd[:, 1],
                2 * np.sin(q[:, 0] + q[:, 1]) + 0.1 * qdd[:, 1] + 0.3 * np.sign(qd[:, 1])]
    td = TrajectoryData(t=np.zeros(n), q=q, qd=qd, qdd=qdd, tau=tau, episode=np.arange(n), joint_names=("a1", "a2"),
                        dt=0.01, meta={"source": "test: a smooth 2-joint map, not a time series"})
    return str(save_npz(path, td))


@pytest.fixture(scope="module")
def static_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("static_export")
    log = _two_joint_log(root / "log.npz", 1500, seed=4)
    run = root / "run"
    assert main(["train", "--task", "static", "--model", "ffnn", "--data", log, "--out", str(run), "--epochs", "15",
                 "--hidden", "32", "--no-progress"]) == 0
    return root, log, run


def test_export_matches_torch_through_onnxruntime_and_loads_in_the_runtime(static_run):
    import onnxruntime as ort
    import torch

    from dynlearn_ros.datasets.catalog import load_dataset
    from dynlearn_ros.learning.training.gp import inputs_targets
    from dynlearn_ros.learning.training.static import load_static
    from dynlearn_ros.runtime.registry import load_inverse_model
    from dynlearn_ros.runtime.validate import validate_model_dir

    root, log, run = static_run
    out = root / "model"
    assert main(["export", "--run", str(run), "--out", str(out)]) == 0
    meta = json.loads((out / "metadata.json").read_text())
    assert (meta["kind"], meta["model"], meta["role"], meta["dt"]) == ("svdkl", "ffnn", "inverse", None)
    assert meta["joint_names"] == ["a1", "a2"] and meta["model_version"] == 1
    assert meta["metrics"]["rmse"] > 0 and "test split" in meta["metrics"]["split"]
    lo, hi = np.array(meta["sigma_bounds"]["sigma_n"]), np.array(meta["sigma_bounds"]["sigma_f"])
    assert np.all((lo > 0) & (lo < hi))
    validate_model_dir(out)

    # parity on rows the golden set did not hold: 300 rows of a fresh draw, one at a time (batch 1)
    model, _ = load_static(run)
    x = inputs_targets(load_dataset(_two_joint_log(root / "fresh.npz", 300, seed=11)))[0]
    with torch.no_grad():
        t_mean, t_var = (v.double().numpy() for v in model(torch.as_tensor(x, dtype=torch.float32)))
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    o = np.array([[v[0] for v in sess.run(["mean", "var"], {"x": row[None].astype(np.float32)})] for row in x])
    o_mean, o_var = o[:, 0].astype(np.float64), o[:, 1].astype(np.float64)
    # the same float32 operations in the same order, only the matrix products' summation order may
    # differ: ~1e-7 relative per sum of 32-96 terms, so 1e-5 of the torque scale / of the variance
    # is 100x that and still 1,000x below any wrong weight, missing normalization or head swap
    y_std = model.y_std.double().numpy()
    assert np.max(np.abs(o_mean - t_mean) / y_std) < 1e-5
    assert np.max(np.abs(o_var - t_var) / t_var) < 1e-5

    # the controller's runtime runs it as model_kind svdkl, in the caller's joint order
    from dynlearn_ros.core.inverse_model import InverseQuery

    pred = load_inverse_model("svdkl", out, ["a2", "a1"])
    mean, std = np.zeros(2), np.zeros(2)
    r = x[0]
    q = InverseQuery(n=2)
    q.q[:], q.qd[:], q.qdd_des[:] = r[[1, 0]], r[[3, 2]], r[[5, 4]]   # x = [q, qd, qdd] of (a1, a2)
    assert pred.predict(q, mean, std)
    np.testing.assert_allclose(mean, t_mean[0][[1, 0]], rtol=0, atol=1e-5 * y_std.max())
    np.testing.assert_allclose(std, np.sqrt(t_var[0][[1, 0]]), rtol=1e-5)


def test_a_graph_that_misses_torch_is_refused_and_nothing_is_written(static_run, monkeypatch):
    import torch

    from dynlearn_ros.learning.export import static as exp

    root, _log, run = static_run
    real = exp.build_onnx

    def off_by_a_bias(model):   # the graph of a module whose mean head is shifted by 0.01 (normalized)
        import copy

        m = copy.deepcopy(model)
        with torch.no_grad():
            m.mean_head.bias += 0.01
        return real(m)

    monkeypatch.setattr(exp, "build_onnx", off_by_a_bias)
    out = root / "refused"
    with pytest.raises(SystemExit, match="export refused"):
        main(["export", "--run", str(run), "--out", str(out)])
    assert not out.exists()


def test_static_export_refuses_bad_requests(static_run):
    root, _log, run = static_run
    with pytest.raises(SystemExit, match="no-metrics"):
        main(["export", "--run", str(run), "--out", str(root / "x"), "--no-metrics"])
    with pytest.raises(SystemExit, match="static ffnn"):
        main(["export", "--run", str(run), "--out", str(root / "x"), "--model", "acrkn-inv"])
    with pytest.raises(SystemExit, match="no checkpoint"):
        main(["export", "--run", str(root / "nothing"), "--out", str(root / "x")])
