"""A required node's exit ends the launch: the package's own launcher (``dynlearn-ros launch``)
and the real ``ros2 launch`` with the launch file's OnProcessExit handlers.

The ``ros2 launch`` tests need the upstream launch / launch_ros / ros2cli sources (not in any
registry reachable here; ../shared/ros2-tools has wheels of them): point
``DYNLEARN_ROS2_TOOLS`` at a directory they are installed in, e.g.
``pip install --no-deps --target /tmp/ros2tools ../shared/ros2-tools/wheels/*.whl osrf-pycommon
catkin-pkg argcomplete importlib-resources``. Without it those tests skip and say so. They run
the package through a minimal ament prefix made here (the package index marker and
``lib/dynlearn_ros/<node>`` wrappers), which is what a colcon install provides.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.ros

REPO = Path(__file__).resolve().parents[2]


def launcher(tmp_path, ros_env, *args, timeout=120):
    cmd = [sys.executable, "-m", "dynlearn_ros.cli", "launch", "vgain_control", *args,
           "--runs-root", str(tmp_path), "--quiet"]
    t0 = time.monotonic()
    out = subprocess.run(cmd, env=ros_env, capture_output=True, text=True, timeout=timeout)
    return out, time.monotonic() - t0


def run_dir(tmp_path) -> Path:
    (d,) = [p for p in tmp_path.iterdir() if p.name.endswith("-vgain_control")]
    return d


def bad_gains(tmp_path) -> Path:
    path = tmp_path / "bad_gains.yaml"
    path.write_text("/**/computed_torque:\n  ros__parameters:\n    k_max: [-1.0]\n")
    return path


def test_bridge_end_stops_the_controller_and_the_launcher(tmp_path, ros_env):
    # the default realtime stepping: 3 simulated s take 3 wall s after start-up (a few s here)
    out, wall = launcher(tmp_path, ros_env, "sim_duration_s:=3")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "required node sim_bridge exited normally (code 0): shutting down the launch" in out.stdout
    s = json.loads((run_dir(tmp_path) / "summary.json").read_text())
    assert s["exit_codes"] == {"sim_bridge": 0, "computed_torque": 0}
    # the controller was stopped by the launcher (SIGINT) and wrote its summary
    assert s["safety_counters"]["ticks"] > 0
    # it did not hold on: the launcher ended well before its own 60 s start-up limit
    assert wall < 60.0


def test_a_failing_node_ends_the_launch_with_its_code(tmp_path, ros_env):
    out, _ = launcher(tmp_path, ros_env, f"gains_file:={bad_gains(tmp_path)}")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "required node computed_torque failed (exit code 2): shutting down the launch" in out.stdout
    assert "parameter 'k_max' = [-1.0]: must be >= 0.0" in out.stderr   # its log's last lines
    s = json.loads((run_dir(tmp_path) / "summary.json").read_text())
    assert s["exit_codes"]["computed_torque"] == 2
    assert s["exit_codes"]["sim_bridge"] == 0       # stopped cleanly by the launcher


def test_a_summary_dir_that_cannot_be_created_is_refused_before_any_node_starts(tmp_path, ros_env):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    out, _ = launcher(tmp_path, ros_env, f"summary_dir:={blocker / 'sub'}")
    assert out.returncode != 0
    assert f"launch argument summary_dir:={blocker / 'sub'}: cannot create it" in out.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.endswith("-vgain_control")]


# -- the real ros2 launch -----------------------------------------------------------------------

def _tools() -> Path:
    path = os.environ.get("DYNLEARN_ROS2_TOOLS", "")
    if not path or not (Path(path) / "launch_ros").is_dir() or not (Path(path) / "ros2cli").is_dir():
        pytest.skip("ros2 launch not available: set DYNLEARN_ROS2_TOOLS to a directory holding "
                    "launch, launch_ros and ros2cli (see this module's docstring)")
    return Path(path)


@pytest.fixture
def ros2_launch(tmp_path, ros_env):
    tools = _tools()
    prefix = tmp_path / "prefix"
    (prefix / "share/ament_index/resource_index/packages").mkdir(parents=True)
    (prefix / "share/ament_index/resource_index/packages/dynlearn_ros").write_text("")
    (prefix / "lib/dynlearn_ros").mkdir(parents=True)
    for node in ("computed_torque", "sim_bridge"):
        exe = prefix / "lib/dynlearn_ros" / node
        exe.write_text(f'#!/bin/sh\nexec {sys.executable} -m dynlearn_ros.nodes.{node} "$@"\n')
        exe.chmod(0o755)
    env = dict(ros_env, AMENT_PREFIX_PATH=str(prefix),
               PYTHONPATH=os.pathsep.join([str(tools), str(REPO), ros_env.get("PYTHONPATH", "")]))

    def run(*args, timeout=120):
        # ros2cli.cli has no __main__ guard: its main() through -c (what the ros2 script does)
        cmd = [sys.executable, "-c", "import sys; from ros2cli.cli import main; sys.argv[0] = 'ros2'; "
               "sys.exit(main())", "launch", str(REPO / "launch/vgain_control.launch.py"), *args]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)

    return run


def test_ros2_launch_ends_when_the_bridge_ends(ros2_launch, tmp_path):
    out = ros2_launch("sim_duration_s:=3", "stepping:=lockstep", f"summary_dir:={tmp_path / 'sum'}")
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert "required node sim_bridge exited normally (code 0): shutting down the launch" in text
    assert "sending signal 'SIGINT' to process[computed_torque" in text
    # summary_dir did not exist: the launch created it, both nodes wrote their summaries there
    ctl = json.loads((tmp_path / "sum" / "computed_torque.json").read_text())
    assert ctl["counters"]["ticks"] > 100
    assert (tmp_path / "sum" / "sim_bridge.json").is_file()


def test_ros2_launch_ends_when_a_node_fails(ros2_launch, tmp_path):
    out = ros2_launch(f"gains_file:={bad_gains(tmp_path)}")
    text = out.stdout + out.stderr
    assert "required node computed_torque failed (exit code 2): shutting down the launch" in text, text
    assert "sending signal 'SIGINT' to process[sim_bridge" in text
