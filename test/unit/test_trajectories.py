"""References: derivatives consistent with positions (central differences), boundary values."""

import numpy as np
import pytest

from dynlearn_ros.core.trajectories import (
    HoldReference,
    SineReference,
    SplineReference,
    WaypointReference,
    min_jerk,
)


def sample(ref, t):
    q, qd, qdd = np.zeros(ref.n), np.zeros(ref.n), np.zeros(ref.n)
    ref.sample(t, q, qd, qdd)
    return q, qd, qdd


def check_derivatives(ref, times, h=1e-5, rtol=1e-5, atol=1e-6):
    # Central differences have O(h^2) truncation error times the 3rd/4th derivative: with
    # h = 1e-5 and derivatives of order 10^2, that is ~1e-8, far under atol; the float64 rounding
    # error of a difference quotient is ~1e-16/h = 1e-11 (position) - both well inside the bounds.
    for t in times:
        q_p, qd_p, _ = sample(ref, t + h)
        q_m, qd_m, _ = sample(ref, t - h)
        _, qd, qdd = sample(ref, t)
        np.testing.assert_allclose(qd, (q_p - q_m) / (2 * h), rtol=rtol, atol=atol)
        np.testing.assert_allclose(qdd, (qd_p - qd_m) / (2 * h), rtol=rtol, atol=atol)


def test_min_jerk_boundaries():
    assert min_jerk(0.0) == (0.0, 0.0, 0.0) and min_jerk(1.0) == (1.0, 0.0, 0.0)
    s, ds, dds = min_jerk(0.5)
    assert s == pytest.approx(0.5) and ds == pytest.approx(1.875) and dds == pytest.approx(0.0)


def test_sine_starts_at_rest_and_is_consistent():
    ref = SineReference(center=[0.1, -0.2, 0.3], amplitude=[0.2, 0.3, 0.1], freq_hz=[0.5, 0.25, 1.0],
                        phase=[0.0, 1.0, 2.0], ramp_s=1.0)
    q, qd, qdd = sample(ref, 0.0)
    np.testing.assert_allclose(q, [0.1, -0.2, 0.3])
    np.testing.assert_allclose(qd, 0.0)
    np.testing.assert_allclose(qdd, 0.0)
    check_derivatives(ref, [0.3, 0.77, 1.5, 4.2])
    q, _, _ = sample(ref, 3.3)  # after the ramp: the plain sine
    np.testing.assert_allclose(q, [0.1, -0.2, 0.3] + np.array([0.2, 0.3, 0.1]) * np.sin(
        2 * np.pi * np.array([0.5, 0.25, 1.0]) * 3.3 + np.array([0.0, 1.0, 2.0])))


def test_waypoints_visit_each_point_at_rest_and_loop():
    wp = np.array([[0.0, 0.0], [1.0, -1.0], [0.5, 0.5]])
    ref = WaypointReference(wp, move_s=2.0, dwell_s=0.5, loop=True)
    for k, t in enumerate([2.0, 4.5]):
        q, qd, qdd = sample(ref, t)
        np.testing.assert_allclose(q, wp[k + 1], atol=1e-12)
        np.testing.assert_allclose(qd, 0.0, atol=1e-12)
    q, _, _ = sample(ref, 3 * 2.5 + 0.0)  # back at the start after a full loop
    np.testing.assert_allclose(q, wp[0], atol=1e-12)
    check_derivatives(ref, [0.3, 1.0, 3.1, 5.9])


def test_spline_interpolates_and_holds():
    ref = SplineReference([0.0, 1.0, 2.5], [[0.0], [1.0], [0.0]])
    np.testing.assert_allclose(sample(ref, 1.0)[0], [1.0])
    np.testing.assert_allclose(sample(ref, 9.0)[0], [0.0])
    np.testing.assert_allclose(sample(ref, -1.0)[0], [0.0])
    check_derivatives(ref, [0.2, 0.6, 1.7, 2.2])


@pytest.mark.parametrize("times,pos", [([0.0, 0.0], [[0.0], [1.0]]), ([0.0, 1.0], [[0.0], [np.nan]]),
                                       ([0.0, 1.0, 2.0], [[0.0], [1.0]])])
def test_spline_rejects_bad_trajectories(times, pos):
    with pytest.raises(ValueError):
        SplineReference(times, pos)


def test_hold():
    q, qd, qdd = sample(HoldReference([1.0, 2.0]), 5.0)
    np.testing.assert_allclose(q, [1.0, 2.0])
    assert not qd.any() and not qdd.any()
