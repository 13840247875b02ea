"""Closed loop over real DDS: sim_bridge (PyBullet) <-> computed_torque, lockstep, two processes.

Lockstep makes these runs deterministic and independent of machine load: the bridge advances
one 1 ms physics step per command.
"""

from __future__ import annotations

import numpy as np
import pytest
from closed_loop import run_closed_loop

pytestmark = [pytest.mark.ros, pytest.mark.sim]

SETTLE_S = 0.5  # exclude start-up from the statistics (the reference starts at rest anyway)


def rmse(summary):
    return np.asarray(summary["controller"]["joint_rmse_rad"])




def test_iiwa_tracks_sine_with_exact_model_and_payload_degrades_it(start_node, tmp_path):
    common = {"settle_s": SETTLE_S, "reference": "sine"}
    exact = run_closed_loop(start_node, tmp_path, controller=common)
    # analytic_std = sigma_n: the schedule trusts the (wrong) model fully -> K_P = K_min
    soft = run_closed_loop(start_node, tmp_path, controller={**common, "analytic_std": [0.1]},
                           bridge={"payload_kg": 5.0})
    stiff = run_closed_loop(start_node, tmp_path, controller={**common, "gain_mode": "fixed"},
                            bridge={"payload_kg": 5.0})
    e_exact, e_soft, e_stiff = rmse(exact), rmse(soft), rmse(stiff)
    print("rmse exact", e_exact, "payload K_min", e_soft, "payload K_max", e_stiff)
    c = exact["controller"]
    # every tick answered, none fallen back, nothing rejected or clamped
    assert exact["bridge"]["timeouts"] == 0 and exact["bridge"]["rejected_commands"] == 0
    # (stale holds are expected only after the bridge has exited, so they are not checked here)
    assert c["counters"]["model_fallback"] == 0 and c["counters"]["nonfinite_torque"] == 0
    assert abs(c["sim_time_s"] - 3.0) < 0.01
    assert c["counters"]["ticks"] >= 2999
    # With the URDF model exact (no payload, no friction) the only error source is the zero-order
    # hold of the torque over the 1 ms step: a residual acceleration error of order
    # dt * jerk_ref ~ 1e-3 * (0.25 rad * (2 pi 0.55 Hz)^3 ~ 9 rad/s^3) ~ 1e-2 rad/s^2 which the PD
    # loop (omega_n ~ 10-40 rad/s) turns into ~ 1e-2 / omega_n^2 ~ 1e-5 rad. DESIGN.md measured
    # 0.19 mrad for a perfect-model computed-torque loop: 1 mrad per joint leaves a 5x margin.
    assert np.all(e_exact < 1e-3), e_exact
    # A 5 kg payload the model does not know: tens of N*m of unmodelled gravity on the shoulder
    # and elbow against K ~ 250-4000 N*m/rad gives ~ 10-100 mrad: two orders of magnitude more.
    assert e_stiff.max() > 100 * e_exact.max()
    assert e_soft.max() > 100 * e_exact.max()
    # Raising the gains K_min -> K_max (16x) must reduce that error. A small steady sag scales
    # with 1/K_P; the wrist joints (K_max only ~14-20 N*m/rad: URDF wrist inertia ~0.01 kg*m^2)
    # still deflect by ~0.1-0.2 rad at K_max, where the payload's gravity torque changes with the
    # deflection itself, so the gain is far below 16x there. Asserted: every joint that visibly
    # sags (> 1 mrad) improves, and the error vector at least halves overall.
    sagging = e_soft > 1e-3
    assert sagging.sum() >= 3
    assert np.all(e_stiff[sagging] < e_soft[sagging]), (e_soft, e_stiff)
    assert np.linalg.norm(e_stiff) < 0.5 * np.linalg.norm(e_soft), (e_soft, e_stiff)
    # mean K_P reflects the schedule: K_min when the model is trusted, K_max in fixed mode
    kp_soft, kp_stiff = np.asarray(soft["controller"]["mean_kp"]), np.asarray(stiff["controller"]["mean_kp"])
    np.testing.assert_allclose(kp_stiff / kp_soft, 16.0, rtol=1e-6)


def test_panda_closed_loop_runs(start_node, tmp_path):
    out = run_closed_loop(start_node, tmp_path, robot="panda", duration_s=2.0,
                          controller={"settle_s": SETTLE_S})
    c = out["controller"]
    assert c["joint_names"] == [f"panda_joint{i}" for i in range(1, 8)]
    assert c["counters"]["ticks"] >= 1999 and out["bridge"]["timeouts"] == 0
    # same reasoning as the iiwa exact-model bound
    assert np.all(np.asarray(c["joint_rmse_rad"]) < 1e-3), c["joint_rmse_rad"]
