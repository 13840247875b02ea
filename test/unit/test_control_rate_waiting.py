"""The controller's torque-rate limit and its WAITING mode, against real Pinocchio (no ROS)."""

import numpy as np
import pytest

from dynlearn_ros.core.analytic import AnalyticInverseModel
from dynlearn_ros.core.control import ComputedTorqueController, Mode, Tuning
from dynlearn_ros.core.robots import robot_spec
from dynlearn_ros.core.schedule import GainSchedule
from dynlearn_ros.core.trajectories import HoldReference

SPEC = robot_spec("iiwa")
N = SPEC.n
DT = 1e-3
RATE = 100.0            # N*m/s -> at most 0.1 N*m per tick
STEP = RATE * DT


def make(rate=RATE, max_error=0.0):
    analytic = AnalyticInverseModel(SPEC.urdf_path, SPEC.joint_names, std=0.5)
    sched = GainSchedule(k_min=np.full(N, 100.0), k_max=np.full(N, 400.0), sigma_n=np.full(N, 0.1),
                         sigma_f=np.full(N, 2.0), c=np.full(N, 3.0), zeta=np.full(N, 2.0))
    return ComputedTorqueController(analytic, analytic, sched, HoldReference(SPEC.home), SPEC.effort_limits,
                                    dt=DT, stale_timeout_s=0.05, max_error=max_error,
                                    torque_rate_limit=rate)


def test_waiting_until_the_first_state_and_never_stale_then():
    ctl = make()
    assert ctl.mode is Mode.WAITING and not ctl.started
    assert not ctl.is_stale(1e9)
    assert ctl.step(SPEC.home, np.zeros(N), 0.0, 0.0) is Mode.NORMAL
    assert ctl.started


def test_first_command_is_the_hold_torque_not_a_ramp_from_zero():
    """At start the previous command is the analytic torque at the first state: with a hold
    reference that is the gravity torque there, so the first command is not rate-limited."""
    ctl = make()
    ctl.step(SPEC.home, np.zeros(N), 0.0, 0.0)
    g = ctl.analytic.rbd.gravity(SPEC.home, np.zeros(N))
    np.testing.assert_allclose(ctl.tau, g, atol=1e-9)
    assert abs(g[1]) > 10 * STEP          # a ramp from zero would have been limited
    assert ctl.counters.rate_limited_joints == 0


def test_every_step_is_bounded_and_the_limited_command_converges():
    ctl, free = make(), make(rate=None)
    q0 = SPEC.home
    for c in (ctl, free):
        c.step(q0, np.zeros(N), 0.0, 0.0)
    # the arm is pushed 0.05 rad off on every joint: the PD term asks for K_P * 0.05 >= 5 N*m more
    q1 = q0 + 0.05
    prev = ctl.tau.copy()
    limited_ticks = 0
    for k in range(1, 1000):
        ctl.step(q1, np.zeros(N), k * DT, 0.0)
        free.step(q1, np.zeros(N), k * DT, 0.0)
        # the bound itself, with a float64 rounding margin on tau ~ 1e2 N*m
        assert np.all(np.abs(ctl.tau - prev) <= STEP + 1e-9)
        limited_ticks += int(np.any(ctl.tau != free.tau))
        prev = ctl.tau.copy()
    assert limited_ticks > 10
    # the unlimited command is constant here (q fixed), so the limited one reaches it after
    # |delta| / STEP ticks (< 1000 for every joint: checked) and then equals it bit for bit
    assert np.max(np.abs(free.tau - ctl.analytic.rbd.gravity(q0, np.zeros(N)))) / STEP < 990
    np.testing.assert_array_equal(ctl.tau, free.tau)
    assert ctl.counters.rate_limited_joints >= limited_ticks


def test_hold_paths_are_rate_limited_too():
    ctl = make()
    ctl.step(SPEC.home, np.zeros(N), 0.0, 0.0)
    for k in range(1, 50):   # build up a command well away from gravity
        ctl.step(SPEC.home + 0.3, np.zeros(N), k * DT, 0.0)
    before = ctl.tau.copy()
    g = ctl.analytic.rbd.gravity(SPEC.home + 0.3, np.zeros(N))
    assert np.max(np.abs(before - g)) > 10 * STEP
    assert ctl.stale_hold() is Mode.HOLD
    assert np.all(np.abs(ctl.tau - before) <= STEP + 1e-9)
    # repeated holds walk to the gravity torque at STEP per call
    for _ in range(2000):
        ctl.stale_hold()
    np.testing.assert_allclose(ctl.tau, g, atol=1e-9)


def test_fault_hold_is_rate_limited():
    ctl = make(max_error=0.1)
    ctl.step(SPEC.home, np.zeros(N), 0.0, 0.0)
    before = ctl.tau.copy()
    assert ctl.step(SPEC.home + 0.5, np.ones(N), DT, 0.0) is Mode.FAULT
    assert np.all(np.abs(ctl.tau - before) <= STEP + 1e-9)
    assert ctl.counters.rate_limited_joints > 0


@pytest.mark.parametrize("rate,expect", [
    (None, None), (0.0, None), ([0.0] * N, None), (np.inf, None),
    (50.0, np.full(N, 50.0)), ([0.0, 5, 5, 5, 5, 5, 5], np.array([np.inf] + [5.0] * 6)),
])
def test_tuning_reads_zero_as_no_limit(rate, expect):
    t = Tuning.make(make().schedule, SPEC.effort_limits, DT, torque_rate_limit=rate)
    if expect is None:
        assert t.dtau_max is None
    else:
        np.testing.assert_array_equal(t.dtau_max, expect)


def test_tuning_refuses_negative_rate():
    with pytest.raises(ValueError, match="torque_rate_limit"):
        Tuning.make(make().schedule, SPEC.effort_limits, DT, torque_rate_limit=-1.0)
