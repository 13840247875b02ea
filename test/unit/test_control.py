"""Computed-torque law, safety modes and the joint-state mapper, against real Pinocchio."""

import numpy as np
import pinocchio as pin
import pytest

from dynlearn_ros.core.analytic import AnalyticInverseModel
from dynlearn_ros.core.control import ComputedTorqueController, Mode
from dynlearn_ros.core.inverse_model import InverseModel
from dynlearn_ros.core.robots import robot_spec
from dynlearn_ros.core.safety import (
    NON_FINITE,
    OK,
    SHORT,
    UNKNOWN_NAMES,
    JointStateMapper,
    TorqueClamp,
    clamp_torque,
)
from dynlearn_ros.core.schedule import GainSchedule
from dynlearn_ros.core.trajectories import HoldReference, SineReference

SPEC = robot_spec("iiwa")
N = SPEC.n


def schedule(fixed=False):
    return GainSchedule(k_min=np.full(N, 10.0), k_max=np.full(N, 100.0), sigma_n=np.full(N, 0.1),
                        sigma_f=np.full(N, 2.0), c=np.full(N, 3.0), zeta=np.full(N, 1.5), fixed=fixed)


class ScriptedModel(InverseModel):
    """A learned-model stand-in whose outputs the test dictates (checks the controller's handling)."""

    kind = "scripted"

    def __init__(self, mean, std, ok=True):
        super().__init__(SPEC.joint_names)
        self.mean, self.std, self.ok = np.asarray(mean, float), np.asarray(std, float), ok
        self.committed = []
        self.resets = 0

    def predict(self, query, mean_out, std_out):
        mean_out[:] = self.mean
        std_out[:] = self.std
        return self.ok

    def commit(self, tau_applied):
        self.committed.append(tau_applied.copy())

    def reset(self):
        self.resets += 1


def controller(model=None, fixed=False, tau_max=None):
    analytic = AnalyticInverseModel(SPEC.urdf_path, SPEC.joint_names, std=0.5)
    ref = SineReference(SPEC.home, amplitude=0.2, freq_hz=0.5, ramp_s=0.5)
    return ComputedTorqueController(analytic, model or analytic, schedule(fixed), ref,
                                    SPEC.effort_limits if tau_max is None else tau_max,
                                    dt=1e-3, stale_timeout_s=0.05)


def test_law_equals_rnea_plus_pd():
    ctl = controller()
    rng = np.random.default_rng(0)
    model = pin.buildModelFromUrdf(str(SPEC.urdf_path))
    data = model.createData()
    ctl.step(SPEC.home, np.zeros(N), t_state=10.0, wall_now=0.0)  # sets t0
    for k in range(1, 50):
        q = SPEC.home + rng.normal(0, 0.05, N)
        qd = rng.normal(0, 0.3, N)
        t = 10.0 + 0.37 * k
        assert ctl.step(q, qd, t_state=t, wall_now=0.0) is Mode.NORMAL
        qdes, qddes, qdddes = np.zeros(N), np.zeros(N), np.zeros(N)
        ctl.reference.sample(0.37 * k, qdes, qddes, qdddes)
        kp, kd = np.zeros(N), np.zeros(N)
        schedule().gains(np.full(N, 0.5), kp, kd)
        expected = pin.rnea(model, data, q, qd, qdddes) + kp * (qdes - q) + kd * (qddes - qd)
        expected = np.clip(expected, -SPEC.effort_limits, SPEC.effort_limits)
        np.testing.assert_allclose(ctl.tau, expected, rtol=1e-12, atol=1e-9)


def test_learned_model_feeds_forward_and_sees_executed_torque():
    mean = np.linspace(-3, 3, N)
    model = ScriptedModel(mean, np.full(N, 0.1))
    ctl = controller(model)
    q = SPEC.home.copy()
    ctl.step(q, np.zeros(N), 0.0, 0.0)
    # at t=0 the sine reference equals home at rest -> PD terms vanish, tau = tau_ff
    np.testing.assert_allclose(ctl.tau, mean, atol=1e-12)
    np.testing.assert_allclose(ctl.kp, 10.0)  # sigma = sigma_n -> K_min
    np.testing.assert_allclose(model.committed[-1], ctl.tau)


@pytest.mark.parametrize("mean,std,ok", [
    (np.full(N, np.nan), np.full(N, 0.1), True),
    (np.zeros(N), np.full(N, np.inf), True),
    (np.zeros(N), np.full(N, 0.1), False),
])
def test_unusable_model_output_falls_back_to_analytic_with_max_gains(mean, std, ok):
    ctl = controller(ScriptedModel(mean, std, ok))
    q = SPEC.home + 0.01
    assert ctl.step(q, np.zeros(N), 0.0, 0.0) is Mode.MODEL_FALLBACK
    assert ctl.counters.model_fallback == 1
    kp_max, kd_max = np.zeros(N), np.zeros(N)
    ctl.schedule.max_gains(kp_max, kd_max)
    np.testing.assert_allclose(ctl.kp, kp_max)
    ff, s = np.zeros(N), np.zeros(N)
    ctl.analytic.predict(ctl.query, ff, s)
    np.testing.assert_allclose(ctl.tau, np.clip(ff + kp_max * (SPEC.home - q), -300, 300), atol=1e-9)
    assert np.isfinite(ctl.tau).all()


def test_stale_state_gives_gravity_hold_at_last_position():
    ctl = controller()
    q = SPEC.home + 0.1
    ctl.step(q, np.zeros(N), 0.0, wall_now=1.0)
    assert not ctl.is_stale(1.04)
    assert ctl.is_stale(1.06)
    assert ctl.stale_hold() is Mode.HOLD
    g = np.zeros(N)
    ctl.analytic.rbd.gravity(q, g)
    np.testing.assert_allclose(ctl.tau, g, atol=1e-12)
    assert ctl.counters.stale_hold == 1


def test_never_stale_before_first_state():
    assert not controller().is_stale(1e9)


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_nonfinite_torque_becomes_hold():
    huge = ScriptedModel(np.full(N, np.inf), np.full(N, 0.1))  # inf mean is caught as fallback
    ctl = controller(huge)
    ctl.step(SPEC.home, np.zeros(N), 0.0, 0.0)
    assert np.isfinite(ctl.tau).all()
    # a state so extreme that the PD term overflows to inf: held, counted
    ctl2 = controller()
    assert ctl2.step(SPEC.home, np.full(N, 1e308), 0.0, 0.0) is Mode.HOLD
    assert ctl2.counters.nonfinite_torque == 1
    assert np.isfinite(ctl2.tau).all()


def test_torque_clamped_and_counted():
    ctl = controller(ScriptedModel(np.full(N, 1e4), np.full(N, 0.1)), tau_max=np.full(N, 50.0))
    ctl.step(SPEC.home, np.zeros(N), 0.0, 0.0)
    np.testing.assert_allclose(ctl.tau, 50.0)
    assert ctl.counters.clamped_joints == N
    tau = np.array([1.0, -60.0, 60.0])
    assert clamp_torque(tau, np.full(3, 50.0)) == 2
    np.testing.assert_allclose(tau, [1.0, -50.0, 50.0])


def test_torque_clamp_equals_clamp_torque_bit_for_bit():
    """The tick's allocation-free clamp gives clamp_torque's values (the bytes) and count on
    values inside, on, just past and far past the limits, signed zeros and denormals."""
    rng = np.random.default_rng(7)
    limits = np.array([320.0, 320.0, 176.0, 176.0, 110.0, 40.0, 40.0])
    clamp = TorqueClamp(limits)
    edge = np.concatenate([limits, -limits, np.nextafter(limits, np.inf), np.nextafter(-limits, -np.inf),
                           np.nextafter(limits, 0.0), [0.0, -0.0, 5e-324, -5e-324, 1e300, -1e300]])
    cases = [rng.normal(0.0, 150.0, N) for _ in range(300)] + [rng.choice(edge, N) for _ in range(300)]
    for tau in cases:
        ours, theirs = tau.copy(), tau.copy()
        assert clamp(ours) == clamp_torque(theirs, limits)
        assert ours.tobytes() == theirs.tobytes()
    assert clamp(np.zeros(N)) == 0


def test_mapper_accepts_reordered_and_extra_names():
    m = JointStateMapper(["a", "b", "c"])
    assert m.update(["a", "b", "c"], [1, 2, 3], [4, 5, 6]) == OK
    np.testing.assert_allclose(m.q, [1, 2, 3])
    assert m.update(["c", "finger", "a", "b"], [30, 99, 10, 20], [60, 99, 40, 50]) == OK
    np.testing.assert_allclose(m.q, [10, 20, 30])
    np.testing.assert_allclose(m.qd, [40, 50, 60])
    assert m.reorders == 2


@pytest.mark.parametrize("names,pos,vel,reason", [
    (["a", "b"], [1, 2], [1, 2], UNKNOWN_NAMES),
    (["a", "b", "x"], [1, 2, 3], [1, 2, 3], UNKNOWN_NAMES),
    (["a", "a", "b", "c"], [1, 1, 2, 3], [1, 1, 2, 3], UNKNOWN_NAMES),
    (["a", "b", "c"], [1, 2], [1, 2, 3], SHORT),
    (["a", "b", "c"], [1, 2, 3], [], SHORT),
    ([], [], [], SHORT),
    (["a", "b", "c"], [1, np.nan, 3], [1, 2, 3], NON_FINITE),
    (["a", "b", "c"], [1, 2, 3], [1, 2, np.inf], NON_FINITE),
])
def test_mapper_rejects_and_keeps_last_good(names, pos, vel, reason):
    m = JointStateMapper(["a", "b", "c"])
    assert m.update(["a", "b", "c"], [7, 8, 9], [0, 0, 0]) == OK
    assert m.update(names, pos, vel) == reason
    np.testing.assert_allclose(m.q, [7, 8, 9])


class RecordingModel(ScriptedModel):
    def predict(self, query, mean_out, std_out):
        self.seen_tau_prev = query.tau_prev.copy()
        return super().predict(query, mean_out, std_out)


def test_first_tick_previous_torque_is_the_analytic_torque_not_zero():
    """Models predicting relative to the previous torque must not start from zero (an arm
    holding itself against gravity needs tens of N*m)."""
    model = RecordingModel(np.zeros(N), np.full(N, 0.1))
    ctl = controller(model)
    ctl.step(SPEC.home, np.zeros(N), 0.0, 0.0)
    g = np.zeros(N)
    ctl.analytic.rbd.gravity(SPEC.home, g)  # reference at rest at home: RNEA = gravity
    np.testing.assert_allclose(model.seen_tau_prev, g, atol=1e-9)
    assert abs(g[1]) > 10.0


def test_sigma_envelope_attacks_at_once_and_releases_with_its_time_constant():
    from dynlearn_ros.core.control import SigmaEnvelope

    dt, release = 1e-3, 0.1
    env, out = SigmaEnvelope(2, dt, release), np.zeros(2)
    env.apply(np.array([1.0, 1.0]), out)
    np.testing.assert_allclose(out, [1.0, 1.0])            # first value passes through
    env.apply(np.array([5.0, 1.0]), out)
    np.testing.assert_allclose(out, [5.0, 1.0])            # a rise is taken at once
    for _ in range(100):                                   # one time constant of lower std
        env.apply(np.array([1.0, 1.0]), out)
    # first-order decay from 5 towards 1: 1 + 4 e^-1 after release_s (exact for the discrete
    # recursion since keep = exp(-dt / release_s), 100 steps = release_s)
    np.testing.assert_allclose(out, [1.0 + 4.0 * np.exp(-1.0), 1.0], rtol=1e-12)
    env.reset(np.array([3.0, 3.0]))
    env.apply(np.array([0.5, 4.0]), out)
    assert 0.5 < out[0] < 3.0 and out[1] == 4.0
    off, o2 = SigmaEnvelope(2, dt, 0.0), np.zeros(2)       # release 0: the raw std
    for s in ([5.0, 1.0], [1.0, 2.0]):
        off.apply(np.array(s), o2)
        np.testing.assert_allclose(o2, s)
    with pytest.raises(ValueError, match="release_s"):
        SigmaEnvelope(2, dt, -1.0)


def test_controller_gains_follow_the_envelope_and_fallback_leaves_them_high():
    """A model whose std drops from sigma_f to sigma_n: with release 0.05 s the gains come down
    over tens of ms instead of in one tick; after a fallback tick (max gains) they also start
    from the top, never below what the raw std would give."""
    analytic = AnalyticInverseModel(SPEC.urdf_path, SPEC.joint_names, std=0.5)
    model = ScriptedModel(np.zeros(N), np.full(N, 2.0))   # sigma_f of schedule()
    ref = SineReference(SPEC.home, amplitude=0.2, freq_hz=0.5, ramp_s=0.5)
    ctl = ComputedTorqueController(analytic, model, schedule(False), ref, SPEC.effort_limits, dt=1e-3,
                                   stale_timeout_s=0.05, sigma_release_s=0.05)
    ctl.step(SPEC.home, np.zeros(N), t_state=0.0, wall_now=0.0)
    kp_top = ctl.kp.copy()
    model.std = np.full(N, 0.1)
    kps = []
    for k in range(1, 200):
        ctl.step(SPEC.home, np.zeros(N), t_state=k * 1e-3, wall_now=k * 1e-3)
        kps.append(ctl.kp.copy())
    kps = np.array(kps)
    raw = np.zeros(N), np.zeros(N)
    ctl.schedule.gains(model.std, *raw)
    assert np.all(kps[0] > raw[0] + 0.5 * (kp_top - raw[0]))     # one tick later: still high
    assert np.all(np.diff(kps[:, 0]) <= 1e-9)                    # monotone release
    # 199 ticks after the drop the envelope is exactly 0.1 + 1.9 exp(-0.199 / 0.05); the schedule
    # turns that ~0.036 N*m above sigma_n into 1 - exp(-3 * 0.036 / 1.9) = 5.5 % of the span
    np.testing.assert_allclose(ctl.sigma_sched, 0.1 + 1.9 * np.exp(-0.199 / 0.05), rtol=1e-9)
    assert np.all(kps[-1] < raw[0] + 0.1 * (kp_top - raw[0]))
    model.ok = False
    ctl.step(SPEC.home, np.zeros(N), t_state=0.2, wall_now=0.2)  # fallback: max gains
    model.ok = True
    ctl.step(SPEC.home, np.zeros(N), t_state=0.201, wall_now=0.201)
    assert np.all(ctl.kp > raw[0] + 0.9 * (kp_top - raw[0]))


def test_following_error_fault_latches_a_stiff_analytic_hold_and_a_new_reference_clears_it():
    analytic = AnalyticInverseModel(SPEC.urdf_path, SPEC.joint_names, std=0.5)
    model = ScriptedModel(np.full(N, 3.0), np.full(N, 0.1))
    ref = HoldReference(SPEC.home)
    ctl = ComputedTorqueController(analytic, model, schedule(False), ref, SPEC.effort_limits, dt=1e-3,
                                   stale_timeout_s=0.05, max_error=[0.3] * 6 + [0.0])
    zero = np.zeros(N)
    assert ctl.step(SPEC.home, zero, 0.0, 0.0) is Mode.NORMAL
    q7 = SPEC.home.copy()
    q7[6] += 1.0                                   # joint 7 has no limit (0 = off)
    assert ctl.step(q7, zero, 0.001, 0.0) is Mode.NORMAL
    q_trip = SPEC.home.copy()
    q_trip[1] += 0.31
    assert ctl.step(q_trip, zero, 0.002, 0.0) is Mode.FAULT
    assert ctl.counters.tracking_fault == 1 and model.resets == 1
    kp_max, kd_max = np.zeros(N), np.zeros(N)
    ctl.schedule.max_gains(kp_max, kd_max)
    q, qd = q_trip + 0.02, np.full(N, 0.1)
    assert ctl.step(q, qd, 0.003, 0.0) is Mode.FAULT   # latched: no new trip, hold at q_trip
    expected = analytic.rbd.rnea(q, qd, zero, np.zeros(N)) + kp_max * (q_trip - q) - kd_max * qd
    np.testing.assert_allclose(ctl.tau, expected, rtol=1e-12, atol=1e-9)
    assert ctl.counters.tracking_fault == 1
    qs = [np.zeros(N) for _ in range(3)]
    ctl.desired_now(*qs)                              # where a new reference must start
    np.testing.assert_allclose(qs[0], q_trip)
    assert not qs[1].any() and not qs[2].any()
    ctl.set_reference(HoldReference(q_trip), t_start=0.003)
    assert ctl.step(q, zero, 0.004, 0.0) is Mode.NORMAL and model.resets == 2
    np.testing.assert_allclose(ctl.tau_ff, 3.0)        # the learned model is back
    with pytest.raises(ValueError, match="max_error"):
        ComputedTorqueController(analytic, model, schedule(False), ref, SPEC.effort_limits, max_error=-1.0)


def test_state_time_covers_the_run_while_reference_time_restarts_with_each_reference():
    """The summary's sim_time_s (state_time_s) is the state time since the first valid state;
    t_ref restarts at every new reference (the ik_demo's launch summary printed t_ref as 'sim time':
    6.1 s after 80 s of simulation, the time since the last of its targets)."""
    ctl = controller()
    assert ctl.state_time_s == 0.0
    for k in range(6):                                  # states at 10.000 .. 10.005 s
        ctl.step(SPEC.home, np.zeros(N), t_state=10.0 + 1e-3 * k, wall_now=0.0)
    assert ctl.state_time_s == pytest.approx(0.005) and ctl.t_ref == pytest.approx(0.005)
    ctl.set_reference(HoldReference(SPEC.home))         # continues from now: t0 moves to 10.005
    for k in range(6, 9):
        ctl.step(SPEC.home, np.zeros(N), t_state=10.0 + 1e-3 * k, wall_now=0.0)
    assert ctl.state_time_s == pytest.approx(0.008)
    assert ctl.t_ref == pytest.approx(0.003)


def test_reference_clipped_to_the_limits_the_model_reads():
    """The sine (amplitude 0.2 rad) crosses a limit placed 0.1 rad above home on joint 2: q_des is
    clipped and counted with either model; q_des_next (the reference at t + dt) is sampled and
    clipped for a learned model, which reads it. The analytic model does not sample it, so
    what it holds is not checked nor counted: a value beyond the limits there (here a sentinel,
    at start it is zeros) does not count the first tick, whose reference is home."""
    lo, hi = SPEC.lower.copy(), SPEC.upper.copy()
    hi[1] = SPEC.home[1] + 0.1
    for model in (None, ScriptedModel(np.zeros(N), np.full(N, 0.5))):
        ctl = controller(model)
        ctl.set_position_limits(lo, hi)
        ctl.query.q_des_next[:] = 7.0   # beyond every limit
        ctl.step(SPEC.home, np.zeros(N), t_state=0.0, wall_now=0.0)
        assert ctl.counters.reference_clipped == 0
        for k in range(1, 1500):
            ctl.step(SPEC.home, np.zeros(N), t_state=k * 1e-3, wall_now=0.0)
            assert ctl.query.q_des[1] <= hi[1]
            if model is not None:
                assert np.all(ctl.query.q_des_next <= hi) and np.all(ctl.query.q_des_next >= lo)
        assert ctl.counters.reference_clipped > 0
