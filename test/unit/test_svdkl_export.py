"""ONNX export of SVDKL/SVGP mean + variance against gpytorch's own prediction, and the runtime
predictor (onnxruntime, IOBinding) behind the controller's InverseModel interface."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
import torch

from dynlearn_ros.core.inverse_model import InverseQuery
from dynlearn_ros.learning.export.gp import EXPORT_MEAN_TOL_STD as GOLDEN_MEAN_TOL_STD
from dynlearn_ros.learning.export.gp import EXPORT_VAR_RTOL as GOLDEN_VAR_RTOL
from dynlearn_ros.learning.export.gp import build_onnx, export_model_dir, gpytorch_mean_var
from dynlearn_ros.learning.models.gp import GPConfig
from dynlearn_ros.learning.training.gp import train_gp
from dynlearn_ros.runtime.registry import ModelLoadError, load_inverse_model
from dynlearn_ros.runtime.svdkl import SvdklPredictor

JOINTS = ("j_a", "j_b", "j_c")


def toy_data(n_rows: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """3 joints: tau_i = 2 qdd_i + 5 sin(q_i + q_{i+1}) + 0.5 qd_i |qd_i| + noise (std 0.2)."""
    q = rng.uniform(-1.5, 1.5, (n_rows, 3))
    qd = rng.normal(0, 1, (n_rows, 3))
    qdd = rng.normal(0, 2, (n_rows, 3))
    tau = 2 * qdd + 5 * np.sin(q + np.roll(q, -1, axis=1)) + 0.5 * qd * np.abs(qd)
    return np.concatenate([q, qd, qdd], 1), tau + rng.normal(0, 0.2, tau.shape)


@pytest.fixture(scope="module")
def models():
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    x, y = toy_data(1500, rng)
    xt, _ = toy_data(300, rng)
    out = {}
    variants = {"svdkl": {}, "svgp": {}, "svdkl+x": {"gp_input": "features+x", "lengthscale_max": 5.0}}
    for name, kw in variants.items():
        cfg = GPConfig(kind=name.split("+")[0], hidden=(32, 32), feature_dim=6, num_inducing=48, **kw)
        # trained (not fresh) parameters: learned inducing points crowd together and the
        # variational covariance moves away from identity, which is what stresses the caches
        out[name] = train_gp(cfg, x, y, epochs=12, batch_size=128, lr=2e-2, seed=1).model
    # inputs spread beyond the training range too (2x), where the variance grows to the prior
    xt[:100] *= 2.0
    return out, xt


def ort_run(proto: onnx.ModelProto, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
    outs = [sess.run(None, {"x": row[None].astype(np.float32)}) for row in x]
    return np.array([o[0][0] for o in outs], np.float64), np.array([o[1][0] for o in outs], np.float64)


@pytest.mark.parametrize("kind", ["svdkl", "svgp", "svdkl+x"])
def test_onnx_matches_gpytorch(models, kind):
    model_map, xt = models
    model = model_map[kind]
    proto = build_onnx(model)
    assert proto.ir_version <= 13  # onnxruntime 1.31 accepts IR <= 13
    mean, var = ort_run(proto, xt)
    ref_mean, ref_var = gpytorch_mean_var(model, xt)
    # Tolerances. Both sides evaluate the features and kernel in float32 (relative rounding
    # ~1e-7 per op). The whitened terms a = L^{-1} k and alpha = L^{-T} m are computed once in
    # float64 here but by triangular solves in gpytorch; float32 rounding of k is amplified by
    # |L^{-1}| ~ 1/sqrt(jitter) = 1e2 and summed over M ~ 50 terms: ~1e-7 * 1e2 * 50 = 5e-4 of
    # the latent scale, below 1 % of the predictive std, which includes the noise (>= 0.2 N*m
    # here). The variance subtracts |a|^2 ~ sf2 from sf2: an absolute error ~1e-6 sf2 against a
    # total that is never below the noise variance, i.e. < 1e-3 relative.
    assert np.all(np.abs(mean - ref_mean) <= GOLDEN_MEAN_TOL_STD * np.sqrt(ref_var))
    np.testing.assert_allclose(var, ref_var, rtol=GOLDEN_VAR_RTOL, atol=0)
    # the comparison is not vacuous: variances differ across inputs by far more than the tolerance
    assert ref_var.max() / ref_var.min() > 1.5


def test_variance_includes_noise_and_is_bounded_by_prior(models):
    model_map, xt = models
    model = model_map["svdkl"]
    _, var = ort_run(build_onnx(model), xt)
    sigma_n, sigma_f = model.sigma_n_f()
    # var = sf2 + jitter - |a|^2 + |c|^2 + noise >= noise (the latent variance is >= 0 up to rounding)
    assert np.all(var >= (1 - 1e-3) * sigma_n**2)
    # far from the data the latent variance returns to the prior: (sigma_f^2 + sigma_n^2)
    far = np.full((1, 9), 50.0)
    _, var_far = ort_run(build_onnx(model), far)
    np.testing.assert_allclose(var_far[0], sigma_f**2 + sigma_n**2, rtol=1e-3)


@pytest.fixture()
def model_dir(models, tmp_path):
    model_map, xt = models
    return export_model_dir(model_map["svdkl"], tmp_path / "svdkl_toy", JOINTS,
                            extra_meta={"training_data_hash": "test"}, golden_x=xt[:3])


def test_model_directory_contents(model_dir):
    meta = json.loads((model_dir / "metadata.json").read_text())
    assert meta["kind"] == "svdkl" and meta["joint_names"] == list(JOINTS)
    assert len(meta["sigma_bounds"]["sigma_n"]) == 3 and len(meta["sigma_bounds"]["sigma_f"]) == 3
    assert meta["normalization"]["applied_in_graph"] is True
    assert [o["name"] for o in meta["outputs"]] == ["mean", "var"]
    assert meta["provenance"]["data_hash"] == "test" and meta["model_version"] == 1
    assert (model_dir / "model.onnx").stat().st_size < 2_000_000
    assert not list(model_dir.parent.glob(".svdkl_toy.*"))  # no temporary directory left behind


def test_predictor_through_registry(models, model_dir):
    model_map, xt = models
    pred = load_inverse_model("svdkl", model_dir, JOINTS)
    assert isinstance(pred, SvdklPredictor)
    query = InverseQuery(n=3)
    mean_out, std_out = np.zeros(3), np.zeros(3)
    ref_mean, ref_var = gpytorch_mean_var(model_map["svdkl"], xt[:20])
    for i in range(20):
        query.q[:], query.qd[:], query.qdd_des[:] = xt[i, :3], xt[i, 3:6], xt[i, 6:]
        assert pred.predict(query, mean_out, std_out)
        assert np.all(np.abs(mean_out - ref_mean[i]) <= GOLDEN_MEAN_TOL_STD * np.sqrt(ref_var[i]))
        # std = sqrt(var): half the variance's relative tolerance
        np.testing.assert_allclose(std_out, np.sqrt(ref_var[i]), rtol=GOLDEN_VAR_RTOL / 2)
    sn, sf = pred.noise_and_signal_std()
    np.testing.assert_allclose(sn, model_map["svdkl"].sigma_n_f()[0])
    np.testing.assert_allclose(sf, model_map["svdkl"].sigma_n_f()[1])


def test_predictor_reorders_joints(models, model_dir):
    _, xt = models
    plain = SvdklPredictor.from_directory(model_dir, JOINTS)
    order = (2, 0, 1)
    swapped = SvdklPredictor.from_directory(model_dir, tuple(JOINTS[i] for i in order))
    q1, q2 = InverseQuery(n=3), InverseQuery(n=3)
    m1, s1, m2, s2 = np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(3)
    q1.q[:], q1.qd[:], q1.qdd_des[:] = xt[5, :3], xt[5, 3:6], xt[5, 6:]
    for name in ("q", "qd", "qdd_des"):
        getattr(q2, name)[:] = getattr(q1, name)[list(order)]
    assert plain.predict(q1, m1, s1) and swapped.predict(q2, m2, s2)
    # same floats through the same graph: identical after reordering
    np.testing.assert_array_equal(m2, m1[list(order)])
    np.testing.assert_array_equal(s2, s1[list(order)])
    np.testing.assert_array_equal(swapped.noise_and_signal_std()[0], plain.noise_and_signal_std()[0][list(order)])


def test_predictor_rejects_bad_directories(model_dir, tmp_path):
    with pytest.raises(ModelLoadError, match="do not match"):
        SvdklPredictor.from_directory(model_dir, ("j_a", "j_b", "other"))
    # a tampered golden file (its hash no longer the one in metadata) is refused
    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    with np.load(bad / "golden.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["out.mean"][0, 0, 0] += 1.0
    np.savez(bad / "golden.npz", **arrays)
    with pytest.raises(ModelLoadError, match="golden|sha256"):
        SvdklPredictor.from_directory(bad, JOINTS)
    # a corrupt graph is refused with the reason
    (bad / "model.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(ModelLoadError):
        load_inverse_model("svdkl", bad, JOINTS)


def test_predictor_reports_non_finite(model_dir):
    pred = SvdklPredictor.from_directory(model_dir, JOINTS)
    query = InverseQuery(n=3)
    query.qd[1] = np.nan
    mean_out, std_out = np.zeros(3), np.zeros(3)
    assert pred.predict(query, mean_out, std_out) is False


def test_bench_runs_and_its_implementations_agree():
    """The benchmark's three implementations compute the same prediction (no timing asserted)."""
    from dynlearn_ros.benchmarks.svdkl import bench_config

    res = bench_config(GPConfig(hidden=(16,), feature_dim=4, num_inducing=16), n_calls=20)
    for key in ("onnx_predictor", "onnx_session_run", "numpy", "gpytorch"):
        assert res[key]["n"] >= 20 and res[key]["p50_us"] > 0
    # untrained model with unit-scale outputs: float32 rounding of O(1) values, far below 1e-4
    assert max(res["max_abs_diff_vs_gpytorch"].values()) < 1e-4
