"""Gain schedule: Eq. 7-8 at chosen points, monotone, clamped, validated."""

import math

import numpy as np
import pytest

from dynlearn_ros.core.schedule import GainSchedule


def make(**kw):
    base = dict(k_min=[10.0, 1.0], k_max=[100.0, 5.0], sigma_n=[0.5, 0.1], sigma_f=[2.5, 1.1],
                c=[3.0, 5.0], zeta=[2.0, 0.5])
    base.update(kw)
    return GainSchedule(**{k: np.asarray(v, dtype=float) if not isinstance(v, bool) else v
                           for k, v in base.items()})


def gains(s, sigma):
    kp, kd = np.zeros(s.n), np.zeros(s.n)
    s.gains(np.asarray(sigma, dtype=float), kp, kd)
    return kp, kd


def test_equation_7_8_at_chosen_points():
    s = make()
    # sigma halfway between sigma_n and sigma_f: z = exp(-C/2)
    sigma = np.array([1.5, 0.6])
    kp, kd = gains(s, sigma)
    z = np.exp(-np.array([3.0, 5.0]) * 0.5)
    expected = np.array([10.0, 1.0]) + (1 - z) * (np.array([100.0, 5.0]) - np.array([10.0, 1.0]))
    np.testing.assert_allclose(kp, expected, rtol=1e-12)
    np.testing.assert_allclose(kd, np.array([2.0, 0.5]) * np.sqrt(expected), rtol=1e-12)
    # at sigma_n: z = 1 -> K_min exactly
    kp, _ = gains(s, [0.5, 0.1])
    np.testing.assert_allclose(kp, [10.0, 1.0], rtol=1e-12)
    # at sigma_f: z = exp(-C)
    kp, _ = gains(s, [2.5, 1.1])
    np.testing.assert_allclose(kp[0], 10 + (1 - math.exp(-3)) * 90, rtol=1e-12)


def test_monotone_and_clamped():
    s = make()
    sig = np.linspace(-1.0, 5.0, 601)
    kps = np.array([gains(s, [x, x])[0] for x in sig])
    assert np.all(np.diff(kps, axis=0) >= -1e-12), "K_P must not decrease as sigma grows"
    assert np.all(kps >= s.k_min - 1e-12) and np.all(kps <= s.k_max + 1e-12)
    # below sigma_n clamps to K_min, above sigma_f to the sigma_f value
    np.testing.assert_allclose(gains(s, [-5, -5])[0], s.k_min)
    np.testing.assert_allclose(gains(s, [50, 50])[0], gains(s, s.sigma_f)[0])


def test_non_finite_sigma_is_maximal_uncertainty():
    s = make()
    kp_nan, _ = gains(s, [np.nan, np.inf])
    kp_max, _ = gains(s, s.sigma_f)
    np.testing.assert_allclose(kp_nan, kp_max)
    kp2, kd2 = np.zeros(2), np.zeros(2)
    s.max_gains(kp2, kd2)
    np.testing.assert_allclose(kp2, kp_max)


def test_fixed_mode_ignores_sigma():
    s = make(fixed=True)
    for sig in ([0.5, 0.1], [2.0, 0.9], [np.nan, 1.0]):
        kp, kd = gains(s, sig)
        np.testing.assert_allclose(kp, s.k_max)
        np.testing.assert_allclose(kd, s.zeta * np.sqrt(s.k_max))


@pytest.mark.parametrize("bad,match", [
    (dict(k_min=[200.0, 1.0]), "k_min must be <= k_max"),
    (dict(sigma_f=[0.5, 1.1]), "sigma_f must be > sigma_n"),
    (dict(c=[0.0, 1.0]), "c must be > 0"),
    (dict(zeta=[-1.0, 1.0]), "zeta must be >= 0"),
    (dict(k_min=[np.nan, 1.0]), "finite"),
    (dict(zeta=[1.0, 2.0, 3.0]), "expected 1 or 2 values"),
])
def test_invalid_parameters_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        make(**bad)
