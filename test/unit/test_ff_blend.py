"""The learned feed-forward's blend-in (core/ff_blend.py) and the start it was made for.

The start: the shipped SVDKL (trained on the iiwa with 5 kg at the flange) on the bare iiwa, the
sine reference from rest, lockstep in process (PyBullet, the controller the node builds). Its
feed-forward is 2.9 N*m off on joint 6 at home; stepped in at the second tick it takes joint 6
past its velocity limit (3.38 rad/s measured, limit 3.14). Blended in over 0.5 s, the derived
peak is the offset's quasi-static 1.875 D / (K T) = 1.875 * 0.22 rad / 0.5 s = 0.82 rad/s plus
the sine's own 0.79 rad/s (the analytic default's peak on this reference): ~1.6 rad/s. The test
asserts the peak stays under the bridge's velocity stop trigger (0.9 of the limit, 2.83 rad/s),
the property the blend exists for, and that the run without it does trip that (the finding).
"""

from __future__ import annotations

import numpy as np
import pytest

from dynlearn_ros.core.ff_blend import FeedForwardBlend
from dynlearn_ros.core.robots import robot_spec

DT = 1e-3


class _Const:
    """An analytic stand-in with a known constant prediction (the blend only calls predict)."""

    def __init__(self, value: np.ndarray) -> None:
        self.value = value

    def predict(self, query, mean, std) -> bool:
        mean[:] = self.value
        std[:] = 0.0
        return True


def test_blend_moves_from_the_analytic_to_the_learned_torque_on_the_min_jerk_curve():
    n = 3
    blend = FeedForwardBlend(n, 0.5)
    ta, tl = np.array([1.0, -2.0, 0.5]), np.array([4.0, 2.0, 0.5])
    assert not blend.active and blend.weight(0.0) == 1.0        # not armed: nothing to do
    blend.start()
    out = []
    for k, t in enumerate(np.arange(0.0, 0.7, 0.05) + 10.0):    # the clock starts at the first weight()
        s = blend.weight(t)
        tau = tl.copy()
        if s < 1.0:
            blend.mix(s, _Const(ta), None, tau)
        out.append((t - 10.0, s, tau))
        if k == 0:
            assert s == 0.0
            np.testing.assert_allclose(tau, ta)                   # starts at the analytic torque
    for t, s, tau in out:
        x = min(t / 0.5, 1.0)
        assert s == pytest.approx(10 * x**3 - 15 * x**4 + 6 * x**5, abs=1e-12)
        np.testing.assert_allclose(tau, ta + s * (tl - ta), atol=1e-12)
    assert not blend.active                                        # ended at T
    np.testing.assert_array_equal(out[-1][2], tl)                  # past T: the learned torque, bit for bit
    with pytest.raises(ValueError):
        FeedForwardBlend(n, 0.0)


def _start_run(kind: str, ff_blend_s: float, payload_kg: float, ticks: int):
    from dynlearn_ros.core.assembly import build_analytic, build_controller, builtin_reference
    from dynlearn_ros.core.config import robot_context, validate
    from dynlearn_ros.paths import models_dir
    from dynlearn_ros.runtime.registry import load_inverse_model
    from dynlearn_ros.sim.plant import SimPlant

    spec = robot_spec("iiwa")
    config = validate({"robot": "iiwa", "model_kind": kind, "model_dir": "svdkl_iiwa_sim", "reference": "sine",
                       "ff_blend_s": ff_blend_s}, robot_context("iiwa"))
    analytic = build_analytic(config)
    model = analytic if kind == "analytic" else load_inverse_model(kind, models_dir() / "svdkl_iiwa_sim",
                                                                    spec.joint_names)
    ctl = build_controller(config, model, analytic, builtin_reference(config, spec.home))
    plant = SimPlant("iiwa", dt=DT, payload_kg=payload_kg)
    q, qd = np.zeros(spec.n), np.zeros(spec.n)
    peak, taus = np.zeros(spec.n), []
    try:
        plant.reset(spec.home, np.zeros(spec.n))
        for k in range(ticks):
            plant.state_into(q, qd)
            np.maximum(peak, np.abs(qd), out=peak)
            ctl.step(q, qd, k * DT, 0.0)
            taus.append(ctl.tau.copy())
            plant.step(ctl.tau)
    finally:
        plant.close()
    return ctl, peak, np.array(taus), spec


@pytest.mark.sim
def test_blend_keeps_a_mismatched_learned_start_under_the_velocity_stop():
    ctl0, peak0, _, spec = _start_run("svdkl", 0.0, 0.0, 700)
    stop = 0.9 * spec.velocity_limits                     # sim_bridge's default velocity_stop_fraction
    assert peak0[5] > stop[5], peak0                       # the finding: stepped in, joint 6 overspeeds
    ctl, peak, _, _ = _start_run("svdkl", 0.5, 0.0, 700)
    assert np.all(peak < stop), (peak, stop)               # blended: no joint near its stop
    assert peak[5] < 0.5 * peak0[5], (peak[5], peak0[5])   # derived ~1.6 rad/s against 3.4
    assert not ctl.ff_blend.active and ctl.ff_blend.ticks == 500   # 0.5 s at 1 kHz, then the model alone
    assert ctl.counters.model_fallback == 0


@pytest.mark.sim
def test_blend_leaves_the_analytic_model_bit_for_bit():
    _, _, tau0, _ = _start_run("analytic", 0.0, 0.0, 300)
    ctl, _, tau, _ = _start_run("analytic", 0.5, 0.0, 300)
    np.testing.assert_array_equal(tau, tau0)
    assert ctl.ff_blend.ticks == 0
