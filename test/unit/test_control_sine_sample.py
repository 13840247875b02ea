"""SineReference.sample's short path after the ramp (core/trajectories.py) gives, bit for bit,
what the full formula gives: the full formula is written out here as it stood before the short
path (every term, including the ones that are signed zeros after the ramp), and both are
compared on the bytes of q, qd, qdd over ramps, after them, for long times, at t = 0, for a zero
ramp, with phases and with a joint at (nearly) zero frequency (the full formula then runs)."""

from __future__ import annotations

import numpy as np
import pytest

from dynlearn_ros.core.trajectories import SineReference, min_jerk


def _full(ref: SineReference, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if ref.ramp_s > 0:
        s, ds, dds = min_jerk(t / ref.ramp_s)
        ds /= ref.ramp_s
        dds /= ref.ramp_s * ref.ramp_s
    else:
        s, ds, dds = 1.0, 0.0, 0.0
    w, a = ref.omega, ref.amplitude
    sn = w * t
    sn += ref.phase
    cs, sn = np.cos(sn), np.sin(sn)
    q = sn * (a * s) + ref.center
    qd = sn * ds
    qd += s * w * cs
    qd *= a
    qdd = sn * dds
    qdd += 2.0 * ds * w * cs
    qdd -= s * w * w * sn
    qdd *= a
    return q, qd, qdd


CASES = {
    "builtin": dict(amplitude=0.25, freq_hz=np.linspace(0.3, 0.55, 7), ramp_s=1.0),
    "no ramp": dict(amplitude=np.linspace(0.05, 0.4, 7), freq_hz=0.5, ramp_s=0.0),
    "phase": dict(amplitude=0.2, freq_hz=0.4, phase=np.linspace(-1.0, 1.0, 7), ramp_s=0.5),
    "one joint still": dict(amplitude=0.2, freq_hz=np.r_[0.5, 0.0, 0.5, 0.5, 0.5, 0.5, 0.5], ramp_s=1.0),
    "negative freq": dict(amplitude=-0.3, freq_hz=-0.7, ramp_s=2.0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_short_path_is_the_full_formula_bit_for_bit(case):
    rng = np.random.default_rng(1)
    center = rng.uniform(-1.0, 1.0, 7)
    ref = SineReference(center, **CASES[case])
    ts = np.r_[0.0, 1e-9, 1e-3 * np.arange(1, 4000, 7), ref.ramp_s, np.nextafter(ref.ramp_s, 0.0),
               np.nextafter(ref.ramp_s, 9.0), 1e5 + 1e-3, 3.7e7, rng.uniform(0.0, 600.0, 200)]
    q, qd, qdd = np.empty(7), np.empty(7), np.empty(7)
    fast = 0
    for t in ts:
        ref.sample(float(t), q, qd, qdd)
        want = _full(ref, float(t))
        for got, exp in zip((q, qd, qdd), want, strict=True):
            assert got.tobytes() == exp.tobytes(), (case, t)
        fast += ref._fast and t >= ref.ramp_s and t > 0
    # the short path ran where the claim is made (not only the full formula)
    assert (fast > 100) == (case in ("builtin", "no ramp", "negative freq"))


def test_amplitude_changed_after_construction_is_used():
    """fit_to_limits lowers ``amplitude`` on the object after construction: the short path reads it."""
    ref = SineReference(np.zeros(7), 0.5, 0.5, ramp_s=0.1)
    ref.amplitude = np.full(7, 0.1)
    q, qd, qdd = np.empty(7), np.empty(7), np.empty(7)
    ref.sample(0.5, q, qd, qdd)
    assert np.allclose(q, 0.1 * np.sin(np.pi * 0.5), rtol=0, atol=1e-15)
    for got, exp in zip((q, qd, qdd), _full(ref, 0.5), strict=True):
        assert got.tobytes() == exp.tobytes()
