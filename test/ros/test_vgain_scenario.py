"""Variance-scheduled closed loop (issue 4, section 4), short version of `dynlearn-ros report vgain`.

The iiwa in lockstep sim carries an unmodelled 5 kg payload and joint friction
(config/scenario_vgain.yaml) and follows pick-and-place moves. Compared here:
(a) fixed high gains K_max + the URDF model, against (c) gains scheduled by the predictive std of
the shipped SVDKL model models/svdkl_iiwa_sim (trained offline on that plant). Each runs as three
real processes (sim_bridge, computed_torque, scenario_recorder) on this test's ROS domain.
"""

from __future__ import annotations

import numpy as np
import pytest

from dynlearn_ros.paths import models_dir
from dynlearn_ros.scenarios.vgain import kp_cut, run_configuration, summarize
from dynlearn_ros.scenarios.vgain_config import load_config

pytestmark = [pytest.mark.ros, pytest.mark.sim, pytest.mark.slow]

DURATION_S = 4.0  # first pick move (1.5 s), dwell, most of the second move; settle 0.5 s excluded


def test_scheduled_svdkl_cuts_gains_without_losing_tracking(ros_env, tmp_path):
    model = models_dir() / "svdkl_iiwa_sim"
    assert (model / "model.onnx").is_file(), f"shipped model missing: {model}"
    cfg = load_config()
    rows = {}
    for key in ("a", "c"):
        res = run_configuration(cfg, key, ros_env, tmp_path, duration_s=DURATION_S, timeout_s=120.0)
        rows[key] = summarize(cfg, res)
    a, c = rows["a"], rows["c"]
    # the learned model really ran: loaded, no tick fell back to the analytic model + K_max
    assert c["model_kind"] == "svdkl" and not c["model_load_error"], c["model_load_error"]
    for r in (a, c):
        assert r["counters"]["model_fallback"] == 0 and r["counters"]["nonfinite_torque"] == 0
        assert abs(r["sim_time_s"] - DURATION_S) < 0.01
        # ~/status at 100 Hz for 4 s: 400 rows; best effort on localhost may lose a few, and the
        # first messages can precede discovery: at least half must arrive for the EE statistic
        assert r["status_rows"] >= 200, r["status_rows"]

    # Gains. K_P = K_min + (1 - z)(K_max - K_min) with K_max = 16 K_min, so the per-joint ratio
    # K_P(c)/K_P(a) lies in [1/16, 1]. The model's std on the pick-and-place region it was trained
    # on stays within a small multiple of its noise std sigma_n (validation RMSE 0.23 N*m against
    # sigma_f of 0.35-7 N*m), which gives z close to 1. The goal - at least a 40 % cut -
    # is asserted as is; falling short would mean the schedule no longer trusts the model.
    cut = kp_cut(rows, "c")
    assert cut >= 0.40, (cut, a["mean_kp"], c["mean_kp"])

    # Tracking. (a) cannot compensate the payload: ~25 N*m of unmodelled gravity on the shoulder
    # and elbow against K_max ~ 4100 / 860 N*m/rad, and ~4 N*m on the wrist joint 6 against
    # K_max ~ 14 N*m/rad (a sag of ~0.1-0.2 rad, see test_closed_loop.py). (c) feeds the learned
    # torque forward, whose error on this region (~0.3-0.7 N*m, metadata of the model) against
    # K_min ~ 50-260 N*m/rad gives a few mrad on the big joints. The goal "RMSE no worse than (a)"
    # is therefore asserted without tolerance on the overall RMSE, on the end-effector position,
    # and on the joints that carry the payload (2, 4, 6), where a factor of 2 is left as margin.
    assert c["rmse_rad_all"] <= a["rmse_rad_all"], (a["rmse_rad_all"], c["rmse_rad_all"])
    assert c["ee_rmse_m"] <= a["ee_rmse_m"], (a["ee_rmse_m"], c["ee_rmse_m"])
    ja, jc = np.asarray(a["joint_rmse_rad"]), np.asarray(c["joint_rmse_rad"])
    assert np.all(jc[[1, 3, 5]] < 0.5 * ja[[1, 3, 5]]), (ja, jc)
