"""Issue 13 item 1, the launch side: a controller killed with ``kill -9`` under ``dynlearn-ros
launch`` is reported by the launcher (its own line, naming the signal), which stops the bridge
(SIGINT, exit 0) and ends with exit 1 and the codes in its summary: the controller's death is
visible, the simulated robot does not run on alone. (The bridge's own reaction, brakes and the
"left the graph" line, is the fault matrix's ``controller_killed_*`` rows.)

Event-driven: the kill follows the controller's first log line (it is past its start-up and
spinning); everything after it is waited on with time limits far above what it takes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import psutil
import pytest

from dynlearn_ros.procs import ros_domain, wait_until

pytestmark = pytest.mark.ros


def _controller_pid(launcher: subprocess.Popen) -> int | None:
    for child in psutil.Process(launcher.pid).children():
        try:
            if any("computed_torque" in part for part in child.cmdline()):
                return child.pid
        except psutil.NoSuchProcess:
            pass
    return None


def test_a_killed_controller_ends_the_launch_and_is_named(tmp_path):
    with ros_domain(tmp_path / "ros_log"):
        # sim_duration_s far beyond the test: only the kill may end this launch
        cmd = [sys.executable, "-m", "dynlearn_ros.cli", "launch", "vgain_control", "sim_duration_s:=600",
               "--runs-root", str(tmp_path), "--quiet"]
        launcher = subprocess.Popen(cmd, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
        try:
            # start-up under load takes up to ~30 s (imports, PyBullet, the model); 120 s is a hang
            assert wait_until(lambda: _controller_pid(launcher) is not None, 120.0), "no controller process"
            runs = lambda: [p for p in tmp_path.iterdir() if p.name.endswith("-vgain_control")]  # noqa: E731
            assert wait_until(lambda: bool(runs()), 60.0)
            log = runs()[0] / "computed_torque.log"
            assert wait_until(lambda: log.is_file() and "robot=" in log.read_text(errors="replace"), 120.0), \
                "the controller never logged its start"
            os.kill(_controller_pid(launcher), signal.SIGKILL)
            # the launcher polls every 10 ms and gives the bridge 15 s after SIGINT: 60 s is a hang
            out, err = launcher.communicate(timeout=60.0)
        finally:
            if launcher.poll() is None:  # a failed wait above: SIGINT, so the launcher stops its nodes
                launcher.send_signal(signal.SIGINT)
                try:
                    launcher.communicate(timeout=30.0)
                except subprocess.TimeoutExpired:
                    launcher.kill()
                    launcher.communicate()
    assert launcher.returncode == 1, out + err
    assert "required node computed_torque was killed by signal 9: shutting down the launch" in out, out
    summary = json.loads((runs()[0] / "summary.json").read_text())
    assert summary["exit_codes"] == {"sim_bridge": 0, "computed_torque": -9}, summary["exit_codes"]
