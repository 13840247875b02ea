"""``dynlearn-ros launch vgain_control``: the package's own launcher starts the real graph."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import yaml

from dynlearn_ros.paths import share_dir

pytestmark = pytest.mark.ros


def launch(tmp_path, ros_env, *args, timeout=120):
    cmd = [sys.executable, "-m", "dynlearn_ros.cli", "launch", "vgain_control", *args,
           "--runs-root", str(tmp_path), "--quiet"]
    return subprocess.run(cmd, env=ros_env, capture_output=True, text=True, timeout=timeout)


def test_launcher_runs_graph_and_writes_summary(tmp_path, ros_env):
    # lockstep: the loop runs as fast as the two processes answer each other, so the ~1.5-2 s of
    # process start-up and DDS discovery inside the 3 s still leave a measurable run
    out = launch(tmp_path, ros_env, "stepping:=lockstep", "--duration", "3")
    assert out.returncode == 0, out.stdout + out.stderr
    (run_dir,) = [p for p in tmp_path.iterdir() if p.name.endswith("-vgain_control")]
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["robot"] == "iiwa" and s["exit_codes"] == {"sim_bridge": 0, "computed_torque": 0}
    assert {"sim_bridge.log", "computed_torque.log", "computed_torque.json", "sim_bridge.json"} <= {
        p.name for p in run_dir.iterdir()}
    # some control happened (lockstep runs ~1-2 sim s per wall s here; start-up takes most of 3 s)
    assert s["duration_s"] > 0.1, s
    assert s["safety_counters"]["ticks"] > 100
    assert len(s["joint_rmse_rad"]) == 7 and all(math.isfinite(x) for x in s["joint_rmse_rad"])
    # exact model, lockstep: the closed-loop tests' bound (1 mrad, reasoned there)
    assert max(s["joint_rmse_rad"]) < 1e-3, s["joint_rmse_rad"]
    # the gains come from config/computed_torque_iiwa.yaml through the schedule: analytic_std =
    # sigma_f -> K_P = K_min + (1 - e^-3)(K_max - K_min) on every tick
    cfg = yaml.safe_load((share_dir() / "config" / "computed_torque_iiwa.yaml").read_text())
    p = cfg["/**/computed_torque"]["ros__parameters"]
    expected = np.array(p["k_min"]) + (1 - math.exp(-3.0)) * (np.array(p["k_max"]) - np.array(p["k_min"]))
    np.testing.assert_allclose(s["mean_kp"], expected, rtol=1e-9)
    assert s["safety_counters"]["model_fallback"] == 0
    assert "lbr_iiwa_joint_1" in out.stdout  # the printed summary table


def test_launcher_rejects_bad_arguments(tmp_path, ros_env):
    out = launch(tmp_path, ros_env, "robot:=ur5")
    assert out.returncode != 0 and "must be one of ['iiwa', 'panda']" in out.stderr
    out = launch(tmp_path, ros_env, "colour:=red")
    assert out.returncode != 0 and "unknown launch argument(s) ['colour']" in out.stderr


def test_show_args_lists_every_argument(tmp_path, ros_env):
    from dynlearn_ros.launch_graph import VGAIN_ARGS

    out = launch(tmp_path, ros_env, "--show-args")
    assert out.returncode == 0
    for a in VGAIN_ARGS:
        assert f"{a.name}:=" in out.stdout


def test_launch_arguments_may_follow_options(tmp_path, ros_env):
    """scripts/dev run passes extra name:=value after --duration/--quiet."""
    from dynlearn_ros.cli import main

    with pytest.raises(SystemExit):  # unknown non-launch extras are still an error
        main(["launch", "vgain_control", "--duration", "1", "--bogus"])
    out = launch(tmp_path, ros_env, "--show-args", "robot:=panda")
    assert out.returncode == 0


def test_rt_priority_starts_nodes_under_sched_fifo(tmp_path, ros_env):
    out = launch(tmp_path, ros_env, "rt_priority:=10", "stepping:=lockstep", "--duration", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    (run_dir,) = [p for p in tmp_path.iterdir() if p.name.endswith("-vgain_control")]
    for node in ("sim_bridge", "computed_torque"):
        assert (run_dir / f"{node}.cmd").read_text().startswith("chrt -f 10 ")
    assert json.loads((run_dir / "summary.json").read_text())["exit_codes"] == {"sim_bridge": 0, "computed_torque": 0}
