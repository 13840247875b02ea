"""Variance-scheduled closed loop (issue 4, section 4), short version of `dynlearn-ros report vgain`.

The iiwa in lockstep sim carries an unmodelled 5 kg payload and joint friction
(config/scenario_vgain.yaml) and follows pick-and-place moves. Compared here:
(a) fixed high gains K_max + the URDF model, against (c) gains scheduled by the predictive std of
the shipped SVDKL model models/svdkl_iiwa_sim and (d) gains scheduled by the variance head of the
shipped ac-RKN inverse model models/acrkn_iiwa_sim (both trained offline on that plant). Each
runs as three real processes (sim_bridge, computed_torque, scenario_recorder) on this test's
ROS domain.
"""

from __future__ import annotations

import numpy as np
import pytest

from dynlearn_ros.paths import models_dir
from dynlearn_ros.scenarios.vgain import kp_cut, run_configuration, summarize
from dynlearn_ros.scenarios.vgain_config import load_config

pytestmark = [pytest.mark.ros, pytest.mark.sim, pytest.mark.slow]

DURATION_S = 4.0  # first pick move (1.5 s), dwell, most of the second move; settle 0.5 s excluded


@pytest.fixture(scope="module")
def rows(ros_env, tmp_path_factory):
    for name in ("svdkl_iiwa_sim", "acrkn_iiwa_sim"):
        model = models_dir() / name
        assert (model / "model.onnx").is_file(), f"shipped model missing: {model}"
    cfg = load_config()
    tmp = tmp_path_factory.mktemp("vgain")
    return {key: summarize(cfg, run_configuration(cfg, key, ros_env, tmp, duration_s=DURATION_S, timeout_s=120.0))
            for key in ("a", "c", "d")}


def _ran_cleanly(r: dict, kind: str) -> None:
    # the model really ran: loaded, no tick fell back to the analytic model + K_max
    assert r["model_kind"] == kind and not r["model_load_error"], r["model_load_error"]
    assert r["counters"]["model_fallback"] == 0 and r["counters"]["nonfinite_torque"] == 0
    assert abs(r["sim_time_s"] - DURATION_S) < 0.01
    # ~/status at 100 Hz for 4 s: 400 rows; best effort on localhost may lose a few, and the
    # first messages can precede discovery: at least half must arrive for the EE statistic
    assert r["status_rows"] >= 200, r["status_rows"]


def test_scheduled_svdkl_cuts_gains_without_losing_tracking(rows):
    a, c = rows["a"], rows["c"]
    _ran_cleanly(a, "analytic")
    _ran_cleanly(c, "svdkl")

    # Gains. K_P = K_min + (1 - z)(K_max - K_min) with K_max = 16 K_min, so the per-joint ratio
    # K_P(c)/K_P(a) lies in [1/16, 1]. On the pick-and-place region it was trained on, the
    # model's std stays near its noise std sigma_n (validation RMSE 0.16 N*m; sigma_f is only
    # ~2.5 sigma_n for this distance-aware model with its novelty term, so the std does move z:
    # the 20 s report measures K_P ~ 3 K_min, an 81 % cut). The goal - at least a 40 %
    # cut - is asserted as is; falling short would mean the schedule no longer trusts the model
    # on its own region.
    cut = kp_cut(rows, "c")
    assert cut >= 0.40, (cut, a["mean_kp"], c["mean_kp"])

    # Tracking. (a) cannot compensate the payload: ~25 N*m of unmodelled gravity on the shoulder
    # and elbow against K_max ~ 4100 / 860 N*m/rad, and ~4 N*m on the wrist joint 6 against
    # K_max ~ 14 N*m/rad (a sag of ~0.1-0.2 rad, see test_closed_loop.py). (c) feeds the learned
    # torque forward, whose error on this region (validation RMSE 0.16 N*m, metadata) against
    # K_min ~ 50-260 N*m/rad gives a few mrad on the big joints. The goal "RMSE no worse than (a)"
    # is therefore asserted without tolerance on the overall RMSE, on the end-effector position,
    # and on the joints that carry the payload (2, 4, 6), where a factor of 2 is left as margin.
    assert c["rmse_rad_all"] <= a["rmse_rad_all"], (a["rmse_rad_all"], c["rmse_rad_all"])
    assert c["ee_rmse_m"] <= a["ee_rmse_m"], (a["ee_rmse_m"], c["ee_rmse_m"])
    ja, jc = np.asarray(a["joint_rmse_rad"]), np.asarray(c["joint_rmse_rad"])
    assert np.all(jc[[1, 3, 5]] < 0.5 * ja[[1, 3, 5]]), (ja, jc)


def test_scheduled_acrkn_inverse_tracks_with_lower_gains(rows):
    """(d): the ac-RKN inverse model (exploration-torque data, trained on its own fed-back
    predictions; docs/results_closed_loop.md) in the node graph, gains from its variance head."""
    a, d = rows["a"], rows["d"]
    _ran_cleanly(d, "acrkn")
    # Tracking: its torque error on this plant (~1-3 N*m on the big joints, ~0.1-0.3 N*m on the
    # wrist; metadata metrics) against the scheduled K_P (hundreds of N*m/rad on joints 1-4,
    # ~10 on joints 5-6) gives mrad-level errors, where (a) sags by the payload's ~25 mrad
    # (joint 4) and ~140 mrad (joint 6). Asserted: overall, end-effector and payload-joint RMSE
    # at most half of (a)'s (the in-process run of the same 4 s measures ~1/20).
    assert d["rmse_rad_all"] <= 0.5 * a["rmse_rad_all"], (a["rmse_rad_all"], d["rmse_rad_all"])
    assert d["ee_rmse_m"] <= 0.5 * a["ee_rmse_m"], (a["ee_rmse_m"], d["ee_rmse_m"])
    ja, jd = np.asarray(a["joint_rmse_rad"]), np.asarray(d["joint_rmse_rad"])
    assert np.all(jd[[3, 5]] < 0.5 * ja[[3, 5]]), (ja, jd)
    # Gains: its std lies inside [sigma_n, sigma_f] = the 5th..95th percentile of its own test
    # std, so K_P sits strictly between K_min and K_max on every joint and the mean is cut. The
    # 20 s report measures a 52 % cut; asserted: some cut (>= 20 %), none of the joints at K_max.
    kd, ka = np.asarray(d["mean_kp"]), np.asarray(a["mean_kp"])
    assert np.all(kd < 0.95 * ka), (kd, ka)
    assert kp_cut(rows, "d") >= 0.20, (kd, ka)
