"""The trajectory parser process of the controller (nodes/trajectory_intake.py) does not outlive a
node that was killed with SIGKILL (no chance to send it the stop message)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); read its state
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_parser_process_ends_when_its_node_is_killed():
    node = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    try:
        parser_pid = int(node.stdout.readline())
        assert _alive(parser_pid)
        node.send_signal(signal.SIGKILL)
        node.wait(timeout=10)
        # ORPHAN_CHECK_S = 1 s between checks, plus the interpreter's exit: 10 s is ample
        deadline = time.monotonic() + 10.0
        while _alive(parser_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(parser_pid), "the parser outlived its killed node"
    finally:
        if node.poll() is None:
            node.kill()
