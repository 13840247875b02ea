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


STUCK = """
import sys, threading
from rclpy.node import Node
from dynlearn_ros.nodes.runner import run_node

HOW = sys.argv[1]

class Stuck(Node):
    def __init__(self):
        super().__init__("runner_stuck_probe")

    def run(self, executor, stop):
        return 0

    def write_summary(self):
        print("summary written", flush=True)

    def destroy_node(self):
        if HOW == "python":      # waits in Python for something that never comes
            threading.Event().wait()
        elif HOW == "native":    # blocks in native code holding the GIL (a PyDLL call keeps it)
            import ctypes
            ctypes.PyDLL("libc.so.6").sleep(120)
        elif HOW == "thread":    # a non-daemon thread the interpreter's exit waits for
            threading.Thread(target=threading.Event().wait, name="never-ends").start()
        super().destroy_node()

raise SystemExit(run_node(Stuck, [], name="runner_stuck_probe"))
"""


@pytest.mark.parametrize(("how", "stage", "code"), [
    ("python", "destroy_node", 0),         # the Python watchdog: the node's own exit code
    ("thread", "interpreter exit", 0),
    ("native", None, 0),                   # GIL held: faulthandler's dump, then libc's _exit(code)
])
def test_a_shutdown_stuck_after_the_summary_ends_the_process_and_says_where(ros_env, how, stage, code):
    """A teardown that never ends (a wait in Python, a non-daemon thread, native code holding the
    GIL) must not leave a process that only SIGKILL ends: the summary is written, then the
    watchdog names the stage and dumps every thread's stack and ends the process with the node's
    own exit code (0 here; with the GIL held the Python watchdog cannot run, so the exit comes
    from a libc timer: exit 1 would say the node failed, which the probe did not). The bound of
    60 s is far above the watchdog's 7 / 9 s and far below the probe's endless wait."""
    from dynlearn_ros.nodes.runner import ShutdownWatchdog

    out = subprocess.run([sys.executable, "-c", STUCK, how], env=ros_env, capture_output=True, text=True,
                         timeout=60 + ShutdownWatchdog.HARD_S)
    assert out.returncode == code, (out.returncode, out.stdout, out.stderr)
    assert "summary written" in out.stdout, out.stdout
    if stage is not None:
        assert f"shutdown stuck in '{stage}'" in out.stderr, out.stderr
    else:   # faulthandler's dump, which runs without the GIL
        assert f"Timeout (0:00:{ShutdownWatchdog.DUMP_S:02.0f})!" in out.stderr, out.stderr
    # the stacks show where it hung: the probe's destroy_node, or the interpreter's thread join
    assert ("destroy_node" if how != "thread" else "_shutdown") in out.stderr, out.stderr
