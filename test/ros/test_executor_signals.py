"""Which handler gets SIGINT / SIGTERM once the node's executor exists.

The runner (nodes/runner.py) initialises rclpy with its signal handling off and routes both
signals to a lock-free stop flag, then shuts the node down in order (summary, executor, node,
context). rclpy's EventsExecutor has signal handling of its own in its C++ code; had it taken the
signals, the context would shut down under the node (a spin that ends by ``rclpy.ok()`` being
false, before the runner's ordered shutdown) and the runner's handler would never run. This pins
what the package relies on, for both executors ``make_executor`` can build: while
``spin_until_stopped`` spins, a signal sets the runner's flag, the loop ends because of the flag,
and the context is still up for the runner's own shutdown. A child process each, so the signal
dispositions of the test process are untouched; the child inherits the test's ROS domain."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.ros

CHILD = r"""
import json, os, signal, sys, threading
from dynlearn_ros.nodes import runner
runner.catch_signals_early()
import rclpy
from rclpy.signals import SignalHandlerOptions
from dynlearn_ros.nodes.params import make_executor
rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
ctx = rclpy.get_default_context()
node = rclpy.create_node("executor_signals_probe")
ex = make_executor(ctx)
ex.add_node(node)
sig = getattr(signal, sys.argv[1])
fired = []
def shoot():
    fired.append(True)
    os.kill(os.getpid(), sig)
    timer.cancel()
timer = node.create_timer(0.2, shoot)      # sent from inside a spin, as a terminal's Ctrl-C lands
runner.spin_until_stopped(ex, ctx)
out = {"fired": bool(fired), "flag": runner.STOP.is_set(), "context_ok": rclpy.ok(context=ctx),
       "executor": type(ex).__name__}
ex.shutdown(timeout_sec=1.0)
node.destroy_node()
ctx.try_shutdown()
print("RESULT " + json.dumps(out), flush=True)
"""


@pytest.mark.parametrize("executor", ["events", "single"])
@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_signal_while_spinning_reaches_the_runners_flag_not_rclpy(executor, signame, ros_env):
    env = dict(ros_env, DYNLEARN_EXECUTOR=executor)
    proc = subprocess.run([sys.executable, "-c", CHILD, signame], env=env, capture_output=True,
                          text=True, timeout=60, cwd=os.getcwd())
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, (proc.returncode, proc.stdout, proc.stderr)
    got = json.loads(lines[-1][len("RESULT "):])
    expected_type = "EventsExecutor" if executor == "events" else "SingleThreadedExecutor"
    assert got["executor"] == expected_type, got
    assert got["fired"], got                 # the signal was sent while spinning
    assert got["flag"], got                  # ... and reached the runner's handler
    assert got["context_ok"], got            # ... and rclpy did not shut the context down itself
