"""The predictor's forward step and stream (runtime/acrkn.py forward part, runtime/forward.py) on a
synthetic system with a known answer.

The model is a hand-written ONNX graph with the ac-RKN forward signature (obs, valid, act, belief
-> obs_next_mean, obs_next_var, belief_out) that computes the exact semi-implicit Euler step of
n independent joints with inverse inertias c_j:

    qd_{t+1} = qd_t + dt c a_t,   q_{t+1} = q_t + dt qd_{t+1}

It is written into a model directory through the package's own writer and validator, so every
check a shipped model passes runs here too. Since the graph is the plant, a stream that pairs
each state with the right torque predicts the next state to float32 rounding; the torques are
random every step, so pairing o_k with the torque of the step before (or o_{k+1} with its own)
misses by dt^2 c |a_t - a_{t-1}| ~ 1e-6..1e-4 rad, >= 100x the tolerance (asserted below).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from dynlearn_ros.runtime.acrkn import AcrknForwardPredictor  # noqa: E402
from dynlearn_ros.runtime.forward import ForwardStream, check_forward_model, decimation  # noqa: E402
from dynlearn_ros.runtime.metadata import Provenance, TensorSpec  # noqa: E402
from dynlearn_ros.runtime.model_store import finish_model_dir, publish_model_dir  # noqa: E402
from dynlearn_ros.runtime.slot import ModelRefused  # noqa: E402
from dynlearn_ros.runtime.validate import validate_model_dir  # noqa: E402

DT = 1e-3
NAMES = ("j1", "j2", "j3")
N = len(NAMES)
C = np.array([2.0, 5.0, 0.5])        # inverse inertias, 1/(kg m^2)
VAR = 1e-8                           # the graph's one-step variance per element (std 1e-4)
BELIEF = 4


def transition(dt: float = DT) -> tuple[np.ndarray, np.ndarray]:
    """F (2n, 2n), G (2n, n) of o' = F o + G a for o = [q, qd]."""
    eye = np.eye(N)
    f = np.block([[eye, dt * eye], [np.zeros((N, N)), eye]])
    g = np.vstack([dt * dt * np.diag(C), dt * np.diag(C)])
    return f, g


def write_integrator_dir(out: Path, dt: float = DT, names: tuple[str, ...] = NAMES, version: int = 1) -> Path:
    """A valid forward model directory whose graph is the exact integrator above."""
    f, g = transition(dt)
    d = 2 * N

    def fill(tmp: Path) -> None:
        init = [numpy_helper.from_array(f.T.astype(np.float32), "FT"),
                numpy_helper.from_array(g.T.astype(np.float32), "GT"),
                numpy_helper.from_array(np.full((1, d), VAR, np.float32), "var0"),
                numpy_helper.from_array(np.zeros((1, 1), np.float32), "zero")]
        nodes = [helper.make_node("MatMul", ["obs", "FT"], ["fo"]),
                 helper.make_node("MatMul", ["act", "GT"], ["ga"]),
                 helper.make_node("Add", ["fo", "ga"], ["obs_next_mean"]),
                 helper.make_node("Mul", ["valid", "zero"], ["v0"]),          # uses 'valid' (0 * valid)
                 helper.make_node("Add", ["var0", "v0"], ["obs_next_var"]),
                 helper.make_node("Identity", ["belief"], ["belief_out"])]
        vi = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
        graph = helper.make_graph(nodes, "integrator",
                                  [vi("obs", [1, d]), vi("valid", [1, 1]), vi("act", [1, N]), vi("belief", [1, BELIEF])],
                                  [vi("obs_next_mean", [1, d]), vi("obs_next_var", [1, d]), vi("belief_out", [1, BELIEF])],
                                  init)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
        model.ir_version = 10
        onnx.save(model, str(tmp / "model.onnx"))
        t = lambda name, shape: TensorSpec(name, shape, "float32", name)  # noqa: E731
        ins = (t("obs", (1, d)), t("valid", (1, 1)), t("act", (1, N)), t("belief", (1, BELIEF)))
        outs = (t("obs_next_mean", (1, d)), t("obs_next_var", (1, d)), t("belief_out", (1, BELIEF)))
        rng = np.random.default_rng(0)
        golden = {"obs": rng.standard_normal((8, 1, d)), "valid": np.ones((8, 1, 1)),
                  "act": rng.standard_normal((8, 1, N)), "belief": np.zeros((8, 1, BELIEF))}
        golden = {k: v.astype(np.float32) for k, v in golden.items()}
        fields = {
            "model_version": version, "kind": "acrkn", "model": "acrkn-fwd", "role": "forward",
            "joint_names": names, "dt": dt, "inputs": ins, "outputs": outs, "sigma_bounds": None,
            "normalization": {"applied_in_graph": True},
            "provenance": Provenance("test_predictor_stream.write_integrator_dir", "synthetic", "0", datetime.now(UTC)
                                     .strftime("%Y-%m-%dT%H:%M:%SZ"), "0", {}),
            "metrics": {}, "specific": {"model_config": {"kind": "integrator"}, "initial_belief": [0.0] * BELIEF,
                                        "belief_dim": BELIEF, "graph": "hand-written", "opset": 18},
        }
        finish_model_dir(tmp, fields, golden, {"belief": "belief_out"})

    return publish_model_dir(out, fill, check=validate_model_dir)


def simulate(steps: int, seed: int = 1, hold_from: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """o (steps+1, 2n) and a (steps, n): a_k applied over step k, random every step (N*m);
    from ``hold_from`` on the torque stays at a[hold_from]."""
    rng = np.random.default_rng(seed)
    f, g = transition()
    a = rng.uniform(-2.0, 2.0, (steps, N))
    if hold_from is not None:
        a[hold_from:] = a[hold_from]
    o = np.zeros((steps + 1, 2 * N))
    o[0, :N] = rng.uniform(-1, 1, N)
    o[0, N:] = rng.uniform(-0.5, 0.5, N)
    for k in range(steps):
        o[k + 1] = f @ o[k] + g @ a[k]
    return o, a


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return write_integrator_dir(tmp_path_factory.mktemp("fwd") / "integrator")


def stream_of(model_dir: Path, horizon: int = 10, step_dt: float = DT, max_gap: float = 0.05) -> ForwardStream:
    return ForwardStream(AcrknForwardPredictor.from_directory(model_dir), horizon, step_dt, max_gap)


# float32 graph on states of order 1: one step is exact to ~1e-7 relative; 1e-6 absolute leaves
# 10x, and the shifted pairings below miss by >= 1e-4 (asserted, so the test can fail)
TOL = 1e-6


def test_one_step_prediction_pairs_each_state_with_the_torque_that_led_to_it(model_dir):
    o, a = simulate(200)
    s = stream_of(model_dir)
    errs, shifted_act, shifted_obs = [], [], []
    f, g = transition()
    for j in range(1, 201):
        # the message at t_j carries o_j and the torque applied over the step that led to it
        s.observe(o[j, :N], o[j, N:], a[j - 1], j * DT)
        if j >= 2:
            errs.append(np.max(np.abs(s._one_mean - o[j])))
            shifted_act.append(np.max(np.abs(f @ o[j - 1] + g @ a[j - 2] - o[j])))   # o_{k} with a_{k-1}
            shifted_obs.append(np.max(np.abs(f @ o[j] + g @ a[j - 1] - o[j])))       # o_{k+1} with a_k
    assert max(errs) < TOL
    assert min(shifted_act) > 100 * TOL and min(shifted_obs) > 100 * TOL


def test_a_stream_fed_the_next_steps_torque_fails_the_check(model_dir):
    """The same check run on a stream given a_j instead of a_{j-1}: it must miss."""
    o, a = simulate(50)
    s = stream_of(model_dir)
    errs = []
    for j in range(1, 50):
        s.observe(o[j, :N], o[j, N:], a[j], j * DT)
        if j >= 2:
            errs.append(np.max(np.abs(s._one_mean - o[j])))
    assert min(errs) > 100 * TOL


def test_rollout_holds_the_last_torque_and_stamps_the_horizon(model_dir):
    o, a = simulate(60, hold_from=30)     # torque constant from step 30: the held torque is the truth
    s = stream_of(model_dir, horizon=10, step_dt=2 * DT)
    for j in range(1, 40):
        s.observe(o[j, :N], o[j, N:], a[j - 1], 5.0 + j * DT)
    assert s.rollout()
    assert s.t_base == pytest.approx(5.0 + 39 * DT)
    truth = o[39 + 2: 39 + 21: 2]          # points k = 1..10 at + 2k ms
    np.testing.assert_allclose(s.q_pred, truth[:, :N], atol=1e-5)
    np.testing.assert_allclose(s.qd_pred, truth[:, N:], atol=1e-5)
    # std: the graph's one-step variance summed over the steps since the state
    np.testing.assert_allclose(s.q_std[:, 0], np.sqrt(VAR * 2 * np.arange(1, 11)), rtol=1e-4)
    # the rollout leaves the belief as it was: the next one-step prediction is still exact
    s.observe(o[40, :N], o[40, N:], a[39], 5.0 + 40 * DT)
    assert np.max(np.abs(s._one_mean - o[40])) < TOL


def test_a_stale_rollout_starts_later_and_a_gap_is_bridged(model_dir):
    o, a = simulate(80, hold_from=20)
    s = stream_of(model_dir, horizon=5)
    for j in range(1, 30):
        s.observe(o[j, :N], o[j, N:], a[j - 1], j * DT)
    assert s.rollout(skip=7)               # states missing for 7 steps: the horizon starts at t + 7 dt
    assert s.t_base == pytest.approx(36 * DT)
    np.testing.assert_allclose(s.q_pred, o[37:42, :N], atol=1e-5)
    runs = s.counters.rollouts
    assert s.rollout(skip=9)               # later while still stale: a slice of the same rollout
    assert s.counters.rollouts == runs and s.t_base == pytest.approx(38 * DT)
    np.testing.assert_allclose(s.q_pred, o[39:44, :N], atol=1e-5)
    # three states lost: the next one is reached by bridging 4 steps open loop (torque held)
    before, gaps = s.counters.bridged_steps, s.counters.gaps
    s.observe(o[33, :N], o[33, N:], a[32], 33 * DT)
    assert s.counters.bridged_steps - before == 3
    assert s.counters.gaps == gaps + 1 and s.counters.largest_gap == 3
    assert np.max(np.abs(s._one_mean - o[33])) < 1e-5
    # a gap beyond max_gap restarts the belief
    resets = s.counters.resets
    s.observe(o[80, :N], o[80, N:], a[79], 80 * DT + 1.0)
    assert s.counters.resets == resets + 1 and s.since_reset == 1
    assert s.counters.gaps == gaps + 2 and s.counters.largest_gap == round((80 * DT + 1.0 - 33 * DT) / DT) - 1


def test_states_faster_than_the_model_step_are_dropped(model_dir):
    o, a = simulate(10)
    s = stream_of(model_dir)
    assert s.observe(o[1, :N], o[1, N:], a[0], 1e-3)
    assert not s.observe(o[1, :N], o[1, N:], a[0], 1.2e-3)
    assert s.counters.too_fast == 1


def test_online_score_of_exact_predictions(model_dir):
    o, a = simulate(400, hold_from=0)      # one torque throughout: every published forecast is exact
    s = stream_of(model_dir, horizon=100)
    for j in range(1, 401):
        s.observe(o[j, :N], o[j, N:], a[j - 1], j * DT)
        if j % 20 == 0:
            assert s.rollout()
    sc = s.score.summary()
    assert set(sc) == {"1ms", "10ms", "50ms", "100ms"}
    for h in sc.values():
        assert h["rmse_q_rad"] < 1e-5 and h["coverage95_q"] == 1.0 and h["n"] > 0


def test_check_forward_model_refuses_what_the_node_cannot_run(model_dir, tmp_path):
    m = AcrknForwardPredictor.from_directory(model_dir)
    check_forward_model(m, NAMES, np.zeros(N), 2 * DT)
    with pytest.raises(ModelRefused, match="joints"):
        check_forward_model(m, ("a", "b", "c"), np.zeros(N), DT)
    with pytest.raises(ModelRefused, match="multiple"):
        check_forward_model(m, NAMES, np.zeros(N), 1.5 * DT)
    assert decimation(3e-3, 1e-3) == 3 and decimation(2.5e-3, 1e-3) is None
    with pytest.raises(ValueError, match="multiple"):
        stream_of(model_dir, step_dt=0.5 * DT)


def test_a_horizon_beyond_the_limits_is_not_published(model_dir):
    """A rollout that leaves the joint limits (+0.5 rad) or 3x the velocity limits is refused."""
    o, a = simulate(30, hold_from=0)
    lim = (np.full(N, -5.0), np.full(N, 5.0), np.full(N, 10.0))
    s = ForwardStream(AcrknForwardPredictor.from_directory(model_dir), 10, DT, 0.05, limits=lim)
    for j in range(1, 20):
        s.observe(o[j, :N], o[j, N:], a[j - 1], j * DT)
    assert s.rollout()
    # the same stream driven far off: a state at 5.4 rad moving at 29 rad/s (> 3 x 10 within a step)
    s.observe(np.full(N, 5.4), np.full(N, 29.9), np.full(N, 200.0), 20 * DT)
    assert not s.rollout() and s.counters.implausible_rollouts == 1


def test_swap_to_a_model_with_another_belief_size(model_dir, tmp_path):
    """A hot-swapped model may have another latent size: the stream resizes its scratch state."""
    global BELIEF
    saved, BELIEF = BELIEF, 9
    try:
        other = write_integrator_dir(tmp_path / "wide", version=2)
    finally:
        BELIEF = saved
    o, a = simulate(40)
    s = stream_of(model_dir)
    for j in range(1, 10):
        s.observe(o[j, :N], o[j, N:], a[j - 1], j * DT)
    s.swap_model(AcrknForwardPredictor.from_directory(other))
    assert s.t_last is None and s.model.version == 2
    for j in range(10, 20):
        s.observe(o[j, :N], o[j, N:], a[j - 1], j * DT)
    assert s.rollout()
    assert np.max(np.abs(s._one_mean - o[19])) < TOL
