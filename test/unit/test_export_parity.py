"""ONNX step export vs torch over 250 recurrent steps, through the runtime predictors.

Tolerance: torch and onnxruntime both compute in float32 but may fuse / reorder operations
(Gemm vs MatMul+Add, softmax), which changes results at the level of float32 rounding, ~1e-7
relative per operation. A step is ~30 dependent operations and the belief carries errors from
step to step; the Kalman update contracts them (gain < 1) instead of compounding, so after 250
steps we expect ~1e-5 relative. We assert 2e-4 relative to each output's scale (the training
statistics: std of tau differences, of the observation differences): 10x margin over the
expected drift, still 1000x below the model's own errors on real data.
"""

import json

import numpy as np
import onnx
import pytest
import torch

from dynlearn_ros.core.inverse_model import InverseQuery
from dynlearn_ros.datasets.normalize import Stats
from dynlearn_ros.learning.export.acrkn import ForwardStep, InverseStep, initial_belief, write_model_dir
from dynlearn_ros.learning.models.sequence import ModelConfig, build_model
from dynlearn_ros.runtime.acrkn import AcrknForwardPredictor, AcrknInversePredictor
from dynlearn_ros.runtime.registry import ModelLoadError, load_inverse_model

torch.set_num_threads(1)
N = 3
JOINTS = ("a", "b", "c")


def _stats(d_o, d_a, rng):
    return Stats(obs_mean=rng.normal(0, 1, d_o), obs_std=rng.uniform(0.5, 2, d_o),
                 act_mean=rng.normal(0, 5, d_a), act_std=rng.uniform(2, 10, d_a),
                 dobs_mean=rng.normal(0, 1e-4, d_o), dobs_std=rng.uniform(1e-3, 1e-2, d_o),
                 dact_mean=rng.normal(0, 1e-3, d_a), dact_std=rng.uniform(0.05, 0.2, d_a))


def _ckpt(model, stats, direction):
    cfg = model.cfg
    return {"stats": stats.to_dict(), "model_config": cfg.to_dict(), "joint_names": list(JOINTS), "dt": 1e-3,
            "train_config": {"kind": cfg.kind, "direction": direction, "obs_qd": False, "seed": 0},
            "data": "synthetic", "data_hash": "0"}


def _model(kind, direction, d_o, d_a, act_target="difference"):
    torch.manual_seed(1)
    m = build_model(ModelConfig(kind, direction, d_o, d_a, lod=8, num_basis=5, enc_hidden=(32,),
                                dec_hidden=(32,), ctrl_hidden=(32,), act_target=act_target))
    with torch.no_grad():
        m.cell.basis.add_(0.05 * torch.randn_like(m.cell.basis))   # leave the symmetric init
    return m.eval()


@pytest.fixture(scope="module", params=["difference", "absolute"])
def inverse_dir(tmp_path_factory, request):
    rng = np.random.default_rng(0)
    model = _model("acrkn-inv", "inverse", 2 * N, N, act_target=request.param)
    stats = _stats(2 * N, N, rng)
    with torch.no_grad():   # the trainer sets these from the statistics
        model.dnext_scale.copy_(torch.as_tensor(stats.obs_std / stats.dobs_std, dtype=torch.float32))
        model.dnext_shift.copy_(torch.as_tensor(stats.dobs_mean / stats.dobs_std, dtype=torch.float32))
    out = write_model_dir(model, _ckpt(model, stats, "inverse"), tmp_path_factory.mktemp("m") / "inv",
                          test_std=np.array([[0.1, 0.2, 0.3], [1.0, 2.0, 3.0]]))
    return out, model, stats


def test_model_directory_is_self_contained(inverse_dir):
    out, _, _ = inverse_dir
    assert sorted(p.name for p in out.iterdir()) == ["golden.npz", "metadata.json", "model.onnx"]
    proto = onnx.load(out / "model.onnx")
    onnx.checker.check_model(proto)
    assert proto.ir_version <= 13
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [18]
    meta = json.loads((out / "metadata.json").read_text())
    for key in ("format_version", "model_version", "kind", "role", "joint_names", "dt", "normalization", "inputs",
                "outputs", "sigma_bounds", "provenance", "metrics", "golden", "acrkn"):
        assert key in meta
    for key in ("opset", "initial_belief", "model_config", "graph"):
        assert key in meta["acrkn"]
    assert meta["provenance"]["data_hash"] == "0" and meta["provenance"]["created_utc"]
    assert meta["kind"] == "acrkn" and meta["joint_names"] == list(JOINTS)
    assert meta["acrkn"]["desired_next"] == "increment"
    # 5th / 95th percentile of the two rows of predicted std given to the exporter
    np.testing.assert_allclose(meta["sigma_bounds"]["sigma_n"], [0.145, 0.29, 0.435])
    np.testing.assert_allclose(meta["sigma_bounds"]["sigma_f"], [0.955, 1.91, 2.865])


def test_desired_next_reference_mode_and_bad_value(inverse_dir, tmp_path):
    """metadata desired_next="reference" hands (q_d, qd_d)(t+dt) to the model unchanged; an unknown
    value is refused at load time (ModelLoadError), never guessed."""
    out, model, stats = inverse_dir
    meta = json.loads((out / "metadata.json").read_text())
    for value in ("reference", "bogus"):
        d = tmp_path / value
        d.mkdir()
        for f in ("model.onnx", "golden.npz"):
            (d / f).write_bytes((out / f).read_bytes())
        (d / "metadata.json").write_text(json.dumps({**meta, "acrkn": {**meta["acrkn"], "desired_next": value}}))
    with pytest.raises(ModelLoadError, match="desired_next"):
        load_inverse_model("acrkn", tmp_path / "bogus", JOINTS)
    pred = load_inverse_model("acrkn", tmp_path / "reference", JOINTS)
    q = InverseQuery(N)
    rng = np.random.default_rng(5)
    q.q[:], q.qd[:] = stats.obs_mean[:N], stats.obs_mean[N:]
    ref_next = stats.obs_mean + rng.normal(0, 1e-2, 2 * N) * stats.obs_std
    q.q_des_next[:], q.qd_des_next[:] = ref_next[:N], ref_next[N:]
    q.tau_prev[:] = stats.act_mean
    mean, std = np.zeros(N), np.zeros(N)
    assert pred.predict(q, mean, std)
    step = InverseStep(model, stats).eval()
    f = lambda x: torch.as_tensor(x, dtype=torch.float32)[None]  # noqa: E731
    with torch.no_grad():
        tau_t, _, _ = step(f(stats.obs_mean), f(ref_next), f(stats.act_mean), initial_belief(model)[None])
    scale = stats.dact_std if model.cfg.act_target == "difference" else stats.act_std
    np.testing.assert_allclose(mean, tau_t[0].numpy(), rtol=0, atol=2e-4 * scale.max() + 1e-5 * np.abs(tau_t[0].numpy()).max())


@pytest.mark.parametrize("requested", [JOINTS, ("c", "a", "b")])   # identity and reordered paths
def test_inverse_parity_250_steps_with_joint_reordering(inverse_dir, requested):
    out, model, stats = inverse_dir
    pred = load_inverse_model("acrkn", out, requested)
    assert isinstance(pred, AcrknInversePredictor)
    perm = np.array([requested.index(j) for j in JOINTS])  # model j <- requested perm[j]
    step = InverseStep(model, stats).eval()
    belief = initial_belief(model)[None]
    rng = np.random.default_rng(3)
    q = InverseQuery(N)
    mean, std = np.zeros(N), np.zeros(N)
    obs_m = stats.obs_mean.copy()
    tau_prev = stats.act_mean.copy()
    taus = []
    for _ in range(250):
        # a reference and its one-step change; the predictor's "increment" target moves the
        # measured state by that change: qd' = qd + (qd_d' - qd_d), q' = q + dt qd'
        ref = obs_m + rng.normal(0, 1e-1, 2 * N) * stats.obs_std
        ref_next = ref + rng.normal(0, 1e-2, 2 * N) * stats.obs_std
        qd_next = obs_m[N:] + (ref_next[N:] - ref[N:])
        obs_next = np.concatenate([obs_m[:N] + q.dt * qd_next, qd_next])
        q.q[perm], q.qd[perm] = obs_m[:N], obs_m[N:]
        q.q_des[perm], q.qd_des[perm] = ref[:N], ref[N:]
        q.q_des_next[perm], q.qd_des_next[perm] = ref_next[:N], ref_next[N:]
        q.tau_prev[perm] = tau_prev
        assert pred.predict(q, mean, std)
        with torch.no_grad():
            f = lambda x: torch.as_tensor(x, dtype=torch.float32)[None]  # noqa: E731
            tau_t, var_t, belief = step(f(obs_m), f(obs_next), f(tau_prev), belief)
        # output scale of the network: tau = a_prev + mu * dact_std (difference) or mu * act_std
        scale = stats.dact_std if model.cfg.act_target == "difference" else stats.act_std
        np.testing.assert_allclose(mean[perm], tau_t[0].numpy(), rtol=0, atol=2e-4 * scale.max() + 1e-5 * np.abs(tau_t[0].numpy()).max())
        np.testing.assert_allclose(std[perm] ** 2, var_t[0].numpy(), rtol=2e-4, atol=1e-7 * scale.max() ** 2)
        taus.append(mean[perm].copy())
        pred.commit(mean)                                 # executed = predicted (requested order)
        tau_prev = mean[perm].copy()
        obs_m = obs_next
    taus = np.array(taus)
    assert taus.std(0).min() > 1e-3                       # the comparison saw a moving signal
    sn, sf = pred.noise_and_signal_std()
    np.testing.assert_allclose(sn[perm], [0.145, 0.29, 0.435])    # metadata sigma_bounds, model order
    np.testing.assert_allclose(sf[perm], [0.955, 1.91, 2.865])


def test_nonfinite_input_returns_false_and_keeps_the_belief(inverse_dir):
    out, _, _ = inverse_dir
    a = AcrknInversePredictor.from_directory(out, JOINTS)
    b = AcrknInversePredictor.from_directory(out, JOINTS)
    q = InverseQuery(N)
    q.q[:] = 0.1
    m1, s1, m2, s2 = (np.zeros(N) for _ in range(4))
    assert a.predict(q, m1, s1) and b.predict(q, m2, s2)
    q.qd[1] = np.nan
    assert not a.predict(q, m1, s1)
    q.qd[1] = 0.0
    assert a.predict(q, m1, s1) and b.predict(q, m2, s2)
    np.testing.assert_array_equal(m1, m2)                 # the NaN tick left no trace
    a.reset()
    b.reset()
    assert a.predict(q, m1, s1) and b.predict(q, m2, s2)
    np.testing.assert_array_equal(m1, m2)


def test_wrong_joints_are_rejected(inverse_dir):
    out, _, _ = inverse_dir
    with pytest.raises(ModelLoadError):
        AcrknInversePredictor.from_directory(out, ("a", "b", "x"))
    with pytest.raises(ModelLoadError):
        load_inverse_model("acrkn", out, ("a", "b"))
    with pytest.raises(ModelLoadError):
        AcrknForwardPredictor.from_directory(out)         # an inverse model is not a forward one


def test_forward_parity_250_steps_with_missing_observations(tmp_path):
    rng = np.random.default_rng(1)
    model = _model("acrkn-fwd", "forward", N, 2)
    stats = _stats(N, 2, rng)
    out = write_model_dir(model, _ckpt(model, stats, "forward"), tmp_path / "fwd")
    pred = AcrknForwardPredictor.from_directory(out)
    step = ForwardStep(model, stats).eval()
    belief = initial_belief(model)[None]
    mean, var = np.zeros(N), np.zeros(N)
    o = stats.obs_mean.copy()
    last = None
    var_acc = np.zeros(N)
    means = []
    for t in range(250):
        observed = (t % 4 == 0)                          # 3 of 4 observations removed
        o = o + rng.normal(0, 1, N) * stats.dobs_std
        act = stats.act_mean + rng.normal(0, 1, 2) * stats.act_std
        assert pred.predict(o if observed else None, act, mean, var)
        x = o if observed else last
        with torch.no_grad():
            f = lambda v: torch.as_tensor(v, dtype=torch.float32)[None]  # noqa: E731
            mu_t, var_t, belief = step(f(x), torch.tensor([[1.0 if observed else 0.0]]), f(act), belief)
        var_acc = (0 if observed else var_acc) + var_t[0].numpy()
        np.testing.assert_allclose(mean, mu_t[0].numpy(), rtol=0, atol=2e-4 * stats.dobs_std.max() + 1e-6 * np.abs(x).max())
        np.testing.assert_allclose(var, var_acc, rtol=2e-4)
        last = mu_t[0].numpy().astype(np.float64)
        means.append(mean.copy())
    assert np.std(np.diff(np.array(means), axis=0)) > 1e-5
