"""The pure safety pieces of issue 13: the state gate, the source lock, reference limits,
trajectory checks, the O(n) spline swap, the lateness gain scale (numpy only, no ROS)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dynlearn_ros.core import safety as S
from dynlearn_ros.core.robots import robot_spec
from dynlearn_ros.core.trajectories import (
    HoldReference,
    PrefixedSpline,
    SineReference,
    SplineReference,
    TrajectoryError,
    WaypointReference,
    check_trajectory,
    fit_to_limits,
    interior_velocities,
)

SPEC = robot_spec("iiwa")
N = SPEC.n


def gate():
    return S.StateGate(SPEC.lower, SPEC.upper, SPEC.velocity_limits, min_interval_s=5e-4)


def test_gate_accepts_motion_physics_allows_and_rejects_the_rest():
    g, q0, z = gate(), SPEC.home.copy(), np.zeros(N)
    assert g.check(q0, z, 1.0) == S.OK
    g.accept(q0, 1.0)
    # 1 ms later, each joint moved at its velocity limit: plausible
    q1 = q0 + SPEC.velocity_limits * 1e-3
    assert g.check(q1, SPEC.velocity_limits, 1.001) == S.OK
    q = q0.copy()
    q[1] = 1e30
    assert g.check(q, z, 1.001) == S.OUT_OF_RANGE
    q = q0.copy()
    q[0] = SPEC.upper[0] + 0.05          # inside the margin (0.1 rad): a joint pressed into its stop
    assert S.StateGate(SPEC.lower, SPEC.upper, SPEC.velocity_limits, 5e-4).check(q, z, 0.0) == S.OK
    qd = z.copy()
    qd[3] = 1e6
    assert g.check(q0, qd, 1.001) == S.TOO_FAST
    # jump: 2 x v_max x 1 ms + 10 mrad = 19 mrad allowed on joint 4; 0.3 rad is not
    q = q0.copy()
    q[3] += 0.3
    assert g.check(q, z, 1.001) == S.JUMP
    assert g.check(q, z, 1.2) == S.OK      # 0.2 s later the same pose is reachable
    assert g.check(q0, z, 1.0) == S.STAMP_REPEATED
    assert g.check(q0, z, 0.0) == S.STAMP_BACKWARDS
    assert g.check(q0, z, 1.0002) == S.RATE
    g.reset()
    assert g.check(q0, z, 0.0) == S.OK      # a new source starts a new history


def test_source_lock_follows_one_publisher_and_notices_a_second():
    lock = S.SourceLock(silence_s=0.05)
    lock.note_publishers(1)
    assert lock.check(b"A", 0.0) and lock.check(b"A", 0.001)
    assert not lock.check(b"B", 0.002) and lock.conflict          # interleaved second source
    assert not lock.check(b"A", 0.003)                             # refused until one remains
    lock.note_publishers(1)
    assert not lock.conflict and lock.check(b"A", 0.004)
    # the followed publisher is gone (silent > 50 ms, one publisher on the graph): a restarted
    # driver is followed
    assert lock.check(b"C", 0.2) and lock.relocks == 1
    lock.note_publishers(2)
    assert not lock.check(b"C", 0.21)


def test_builtin_references_are_clipped_inside_the_limits():
    lo, hi = SPEC.lower, SPEC.upper
    c = SPEC.home.copy()
    sine, notes = fit_to_limits(SineReference(c, 3.0, 0.5), lo, hi)
    # every joint but the last (+-3.05 rad: room for 3.0 rad around 0 inside the 0.05 margin)
    assert [n.split(":")[0] for n in notes] == [f"joint {j}" for j in range(N - 1)]
    q, qd, qdd = np.zeros(N), np.zeros(N), np.zeros(N)
    for t in np.linspace(0, 10, 2001):
        sine.sample(t, q, qd, qdd)
        assert np.all(q >= lo + 0.05 - 1e-12) and np.all(q <= hi - 0.05 + 1e-12)
    small, notes = fit_to_limits(SineReference(c, 0.1, 0.5), lo, hi)
    assert not notes and np.all(small.amplitude == 0.1)
    wp = np.vstack([c, c + 5.0])
    way, notes = fit_to_limits(WaypointReference(wp), lo, hi)
    assert notes and np.all(way.wp <= hi - 0.05 + 1e-12)
    hold, notes = fit_to_limits(HoldReference(c + 10.0), lo, hi)
    hold.sample(0.0, q, qd, qdd)
    assert notes and np.allclose(q, hi - 0.05)


def test_trajectories_beyond_limits_or_malformed_are_refused():
    names = list(SPEC.joint_names)
    t = np.array([1.0, 2.0])
    p = np.tile(SPEC.home, (2, 1))
    times, pos, vel = check_trajectory(names[::-1], names, t, p[:, ::-1], None, SPEC.lower, SPEC.upper)
    assert np.array_equal(pos, p) and vel is None      # reordered to the controller's order
    bad = p.copy()
    bad[1, 1] = 3.0                                      # 3.0 rad on a 2.09 rad joint
    with pytest.raises(TrajectoryError, match="outside its limits"):
        check_trajectory(names, names, t, bad, None, SPEC.lower, SPEC.upper)
    with pytest.raises(TrajectoryError, match="strictly increasing"):
        check_trajectory(names, names, np.array([1.0, 1.0]), p, None, SPEC.lower, SPEC.upper)
    with pytest.raises(TrajectoryError, match="missing"):
        check_trajectory(names[:6], names, t, p[:, :6], None, SPEC.lower, SPEC.upper)
    nan = p.copy()
    nan[0, 0] = np.nan
    with pytest.raises(TrajectoryError, match="non-finite"):
        check_trajectory(names, names, t, nan, None, SPEC.lower, SPEC.upper)
    with pytest.raises(TrajectoryError, match="no points"):
        check_trajectory(names, names, np.zeros(0), np.zeros((0, N)), None, SPEC.lower, SPEC.upper)


@pytest.mark.parametrize("m", [1, 2, 7, 500])
@pytest.mark.parametrize("given", [False, True])
def test_prefixed_spline_is_the_spline_through_the_current_state(m, given):
    rng = np.random.default_rng(m)
    t = np.cumsum(rng.uniform(0.01, 0.1, m))
    p = rng.normal(size=(m, N))
    q0, qd0 = rng.normal(size=N), rng.normal(size=N)
    vel = rng.normal(size=(m, N)) if given else None
    ref = SplineReference(np.concatenate([[0.0], t]), np.vstack([q0, p]),
                          None if vel is None else np.vstack([qd0, vel]))
    fast = PrefixedSpline(q0, qd0, SplineReference(t, p, vel if given else interior_velocities(t, p)), not given)
    a, b = [np.zeros(N) for _ in range(3)], [np.zeros(N) for _ in range(3)]
    for ts in np.concatenate([rng.uniform(0.0, t[-1] + 0.5, 400), [0.0, 0.5 * t[0]]]):
        ref.sample(ts, *a)
        fast.sample(ts, *b)
        for x, y in zip(a, b, strict=True):
            np.testing.assert_allclose(y, x, rtol=1e-9, atol=1e-9)
    assert fast.duration == ref.duration


def test_lateness_scale_and_held_delay():
    T = 1e-3
    ls = S.LatenessScale(T, release_s=1.0)
    # on time: no bound (inf), the law as designed
    assert ls.update(T) == math.inf
    # a 20 ms hold: omega * hold = LATENESS_PHASE at once (fast attack)
    assert ls.update(0.02) == pytest.approx(S.LATENESS_PHASE / 0.02)
    # then on time again: the bound relaxes with release_s (slow release), monotonically, and is
    # off once d_hat < 2 T: T + 19 ms exp(-t / 1 s) < 2 ms after ln 19 = 2.94 s of on-time ticks
    bounds = [ls.update(T) for _ in range(2900)]
    assert all(b1 >= b0 for b0, b1 in zip(bounds, bounds[1:], strict=False)) and math.isfinite(bounds[-1])
    ls2 = S.LatenessScale(T, release_s=1.0)
    ls2.update(0.02)
    n_late = sum(math.isfinite(ls2.update(T)) for _ in range(4000))
    assert abs(n_late - 1000 * math.log(19.0)) <= 2   # the envelope's closed form, to a tick
    # a single 2-period hold counts for its own tick only
    ls3 = S.LatenessScale(T)
    assert math.isfinite(ls3.update(2e-3)) and ls3.update(T) == math.inf
    # realtime plant, 20 ms of states missed (or a starved controller: 80 ms): the stamp step,
    # at most the robot's command watchdog (past it the robot brakes)
    assert S.held_delay(0.02, 0.021, T, False) == 0.02
    assert S.held_delay(0.08, 0.5, T, False) == 0.08
    assert S.held_delay(0.08, 0.08, T, False, timeout_s=0.02) == 0.02
    # lockstep under load: stamps advance one period per (slow) exchange -> one period;
    # a state lost to the queue (2 ms) is already a hold of two periods
    assert S.held_delay(1e-3, 0.004, T, False) == T
    assert S.held_delay(2e-3, 2e-3, T, False) == 2e-3
    assert S.held_delay(1.999999e-3, 2e-3, T, False) == 1.999999e-3   # stamps in ns
    # a driver whose stamps jump faster than it publishes; a resumption after the stale hold
    assert S.held_delay(0.2, 0.02, T, False) == T
    assert S.held_delay(1.0, 1.0, T, True) == T
    # the reference pauses for the part of a gap beyond the watchdog, never for a slow driver
    assert S.unfollowed_time(0.05, 0.05, 0.02) == pytest.approx(0.03)
    assert S.unfollowed_time(0.01, 0.01, 0.02) == 0.0
    assert S.unfollowed_time(0.2, 0.02, 0.02) == 0.0
