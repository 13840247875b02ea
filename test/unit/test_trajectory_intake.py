"""The trajectory parser process of the controller (nodes/trajectory_intake.py) does not outlive a
node that was killed with SIGKILL (no chance to send it the stop message)."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from dynlearn_ros.procs import pid_alive, wait_until

pytest.importorskip("rclpy")

CHILD = r"""
import sys, time
import numpy as np
from dynlearn_ros.nodes.trajectory_intake import TrajectoryIntake
t = TrajectoryIntake(["j1", "j2"], np.array([-1.0, -1.0]), np.array([1.0, 1.0]))
t.start()
print(t._proc.pid, flush=True)
time.sleep(60)
"""


def test_parser_process_ends_when_its_node_is_killed():
    node = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    try:
        parser_pid = int(node.stdout.readline())
        assert pid_alive(parser_pid)
        node.send_signal(signal.SIGKILL)
        node.wait(timeout=10)
        # ORPHAN_CHECK_S = 1 s between checks, plus the interpreter's exit: 10 s is ample
        assert wait_until(lambda: not pid_alive(parser_pid), 10.0, 0.1), "the parser outlived its killed node"
    finally:
        if node.poll() is None:
            node.kill()
