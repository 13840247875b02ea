"""run_node's exit without interpreter finalization (``exit_without_finalization``, set by the
sim_bridge and by a computed_torque whose model load outlived shutdown) must not hide an error on
the way out: a summary that cannot be written still ends the process with Python's traceback and
exit code 1, not with a silent os._exit(0)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.ros

SCRIPT = """
from rclpy.node import Node
from dynlearn_ros.nodes.runner import run_node

class Failing(Node):
    exit_without_finalization = True

    def __init__(self):
        super().__init__("runner_exit_probe")

    def run(self, executor, stop):
        return 0

    def write_summary(self):
        raise OSError("summary disk full (probe)")

raise SystemExit(run_node(Failing, [], name="runner_exit_probe"))
"""


def test_an_error_while_writing_the_summary_is_not_swallowed(ros_env):
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=ros_env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    assert "OSError: summary disk full (probe)" in out.stderr, out.stderr


def test_a_clean_end_still_skips_finalization_with_exit_0(ros_env):
    script = SCRIPT.replace('raise OSError("summary disk full (probe)")', 'print("summary written")')
    out = subprocess.run([sys.executable, "-c", script], env=ros_env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, (out.returncode, out.stdout, out.stderr)
    assert "summary written" in out.stdout and "Traceback" not in out.stderr, (out.stdout, out.stderr)
