"""GP inverse models on real data from the data root: the shipped SVDKL model on the Panda
(Gaz 2019) test split, and a short SVDKL training on UR10. Skips naming the missing data set,
fails instead when CI is set."""

from __future__ import annotations

import json

import numpy as np
import pytest
from data_required import require

from dynlearn_ros.paths import models_dir

pytestmark = pytest.mark.data


def shipped_dir():
    path = models_dir() / "svdkl_panda"
    if not (path / "model.onnx").is_file():
        pytest.fail(f"shipped model directory {path} is missing")
    return path


def test_shipped_svdkl_reproduces_its_recorded_test_metrics():
    require("panda_gaz2019")
    from dynlearn_ros.core.inverse_model import InverseQuery
    from dynlearn_ros.datasets.splits import load_splits
    from dynlearn_ros.learning.training.gp import fit_normalization, gaussian_metrics, inputs_targets
    from dynlearn_ros.runtime.registry import load_inverse_model

    mdir = shipped_dir()
    meta = json.loads((mdir / "metadata.json").read_text())
    data, tr, _va, te = load_splits("panda_gaz2019", int(meta["provenance"]["train_config"]["seed"]))
    # the model was trained on this data (same loader, same filtering of qdd, same split): the
    # training split's column statistics recorded at training time come out again. Not the
    # recorded sha256 data_hash: that is bit-exact, and the zero-phase filter behind qdd differs
    # in the last bits between CPUs (seen: two hashes on two machines of this workplace). Last-bit
    # differences move a mean of 14,700 rows by ~1e-16 relative; any real change of data, filter
    # or split moves it by far more than 1e-9
    assert len(tr) == meta["provenance"]["train_config"]["train_rows"]
    norm = fit_normalization(*inputs_targets(tr))
    for key in ("x_mean", "x_std", "y_mean", "y_std"):
        np.testing.assert_allclose(norm[key], meta["normalization"][key], rtol=1e-9, atol=1e-12, err_msg=key)
    pred = load_inverse_model("svdkl", mdir, data.joint_names)
    n = data.n_joints
    query = InverseQuery(n=n)
    rows = np.arange(0, len(te), 5)  # every 5th test row: 630 rows, a fraction of a second
    mean = np.zeros((rows.size, n))
    std = np.zeros((rows.size, n))
    for k, i in enumerate(rows):
        query.q[:], query.qd[:], query.qdd_des[:] = te.q[i], te.qd[i], te.qdd[i]
        assert pred.predict(query, mean[k], std[k])
    got = gaussian_metrics(te.tau[rows], mean, std, np.asarray(meta["normalization"]["y_std"]))
    rec = meta["metrics"]["test"]
    # recorded on all test rows with gpytorch in float32; here every 5th row through ONNX. The
    # rows are 1 ms apart on a smooth trajectory, so the subsample's RMSE is within a few
    # percent of the full one; the ONNX/gpytorch difference (< 1 % of a std) is far smaller
    # the shipped metadata predates issue 9's pooled "all": its "rmse" is the mean of the per-joint RMSEs
    assert got["rmse_mean_joint"] == pytest.approx(rec["rmse"], rel=0.05)
    assert got["coverage95"] == pytest.approx(rec["coverage95"], abs=0.03)
    sn, sf = pred.noise_and_signal_std()
    np.testing.assert_allclose(sn, meta["sigma_bounds"]["sigma_n"])
    assert np.all(sn > 0) and np.all(sf > sn)


@pytest.mark.slow
def test_svdkl_learns_panda_inverse_dynamics():
    require("panda_gaz2019")
    import torch

    from dynlearn_ros.datasets.splits import load_splits
    from dynlearn_ros.learning.models.gp import GPConfig
    from dynlearn_ros.learning.training.gp import evaluate_model, inputs_targets, train_gp

    torch.set_num_threads(1)
    _data, tr, va, _te = load_splits("panda_gaz2019", 0)
    xtr, ytr = inputs_targets(tr)
    xva, yva = inputs_targets(va)
    res = train_gp(GPConfig(hidden=(64, 64), num_inducing=64), xtr[::3], ytr[::3], epochs=6,
                   batch_size=256, lr=2e-2, seed=0)
    m = evaluate_model(res.model, xva, yva)
    # nMSE = MSE / var(tau) per joint: 1 for predicting the mean. The validation block follows
    # the training block in time on the same exciting trajectory, and rigid-body dynamics (a
    # smooth function of q, qd, qdd) explain nearly all of the Panda's measured torque
    # (the analytic model alone leaves < 5 % of the variance on joint 2): a model that learned
    # the dynamics must leave well under 10 % unexplained
    assert m["nmse"] < 0.1, m
    # the predictive std is not degenerate: within a factor 10 of the actual error
    assert 0.1 < m["mean_std"] / m["rmse"] < 10
