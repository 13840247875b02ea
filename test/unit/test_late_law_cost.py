"""The late law made cheaper (issue 12's loop: under load it acts on most ticks): M(q) v in one
RNEA pass on a gravity-free copy of the model instead of RNEA(q, 0, v) - g(q), and the analytic
model's constant gains restored from a copy after a late tick instead of running the schedule
again. The law itself must not change: the same torques to rounding, and on-time ticks bit for
bit the same gains as a controller that never went late."""

from __future__ import annotations

import numpy as np
import pytest

from dynlearn_ros.faults.late_commands import default_config

pytestmark = pytest.mark.sim


def test_mass_times_is_the_mass_matrix_product():
    from dynlearn_ros.core.assembly import build_analytic

    for robot in ("iiwa", "panda"):
        rbd = build_analytic(default_config(robot=robot)).rbd
        rng = np.random.default_rng(1)
        out, two_pass, g = np.zeros(rbd.n), np.zeros(rbd.n), np.zeros(rbd.n)
        for _ in range(50):
            q = rng.uniform(-2.0, 2.0, rbd.n)
            v = rng.normal(0.0, 100.0, rbd.n)
            rbd.mass_times(q, v, out)
            ref = rbd.mass_matrix(q) @ v
            # both are sums of ~n^2 products of O(|M| |v|) terms in float64: agreement to
            # ~1e-13 of the largest entry; 1e-11 leaves room, a wrong pass misses by O(1)
            scale = np.max(np.abs(ref))
            np.testing.assert_allclose(out, ref, rtol=0, atol=1e-11 * scale)
            rbd.rnea(q, np.zeros(rbd.n), v, two_pass)
            two_pass -= rbd.gravity(q, g)
            np.testing.assert_allclose(out, two_pass, rtol=0, atol=1e-11 * scale)
        # the model the feed-forward uses keeps its gravity
        np.testing.assert_array_equal(rbd.model.gravity.linear, [0.0, 0.0, -9.81])


def test_constant_gains_come_back_bit_for_bit_after_late_ticks():
    from dynlearn_ros.core.assembly import build_analytic, build_controller, builtin_reference
    from dynlearn_ros.core.config import robot_context

    c = default_config(reference="hold")
    ctx = robot_context("iiwa", "")
    analytic = build_analytic(c)
    q0 = ctx.spec.home.copy()
    rng = np.random.default_rng(0)
    states = [(q0 + rng.normal(0.0, 0.01, q0.size), rng.normal(0.0, 0.05, q0.size)) for _ in range(12)]
    # on, on, late x4 (omega varying), on x3, late, on x2: against a controller always on time
    omegas = [np.inf, np.inf, 30.0, 25.0, 20.0, 20.0, np.inf, np.inf, np.inf, 15.0, np.inf, np.inf]

    def run(schedule):
        ctl = build_controller(c, analytic, analytic, builtin_reference(c, q0))
        ctl.enable_late_law(ctx.inertia)
        out = []
        for k, ((q, qd), w) in enumerate(zip(states, schedule, strict=True)):
            ctl.set_late_bandwidth(w)
            ctl.step(q, qd, k * 1e-3, k * 1e-3)
            out.append((ctl.kp.copy(), ctl.kd.copy(), ctl.tau.copy()))
        return out

    mixed, on_time = run(omegas), run([np.inf] * len(omegas))
    k_const, d_const = on_time[0][0], on_time[0][1]
    for k, w in enumerate(omegas):
        kp, kd, tau = mixed[k]
        if np.isinf(w):
            # the designed law: the same gains (bit for bit) as the run that never went late
            assert np.array_equal(kp, on_time[k][0]) and np.array_equal(kd, on_time[k][1]), k
        else:
            # bounded from the constant gains, exactly as the law says: I min(K / I, w^2), I min(K_D / I, 2 w)
            i = ctx.inertia
            np.testing.assert_array_equal(kp, np.minimum(k_const, i * (w * w)))
            np.testing.assert_array_equal(kd, np.minimum(d_const, i * (2.0 * w)))
            assert not np.array_equal(kp, k_const)   # the bound acts at these omegas
        # the torques of on-time ticks after late ones differ only through the state history
        # (the rate limit's previous command), never through the gains
        assert np.all(np.isfinite(tau))
