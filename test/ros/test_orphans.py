"""A node started through procs.NodeProcess stops when the process that started it dies, however
it died: a SIGKILLed test run, script or soak must not leave nodes on a domain whose claim died
with it (procs.die_with_parent_prefix)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from dynlearn_ros.procs import die_with_parent_prefix, pid_alive, wait_until

PARENT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from dynlearn_ros.procs import NodeProcess
    p = NodeProcess("sim_bridge", {"stats_path": sys.argv[2]}, None, Path(sys.argv[1]),
                    follow_parent=sys.argv[3] == "1")
    print(p.pid, flush=True)
    time.sleep(600)
""")


def _start(tmp_path, ros_env, follow: bool):
    log, stats = tmp_path / f"bridge-{follow}.log", tmp_path / f"stats-{follow}.json"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(log), str(stats), "1" if follow else "0"],
                              env=ros_env, stdout=subprocess.PIPE, text=True)
    pid = int(parent.stdout.readline())
    end = time.monotonic() + 120.0
    while "publishing" not in (log.read_text(errors="replace") if log.exists() else ""):
        assert time.monotonic() < end and pid_alive(pid), log.read_text(errors="replace") if log.exists() else "no log"
        time.sleep(0.05)
    parent.kill()   # SIGKILL: nothing of the parent runs any more
    parent.wait()
    return pid, log, stats


@pytest.mark.skipif(not die_with_parent_prefix(), reason="util-linux setpriv missing: nodes cannot follow their parent")
def test_a_node_stops_cleanly_when_its_parent_is_killed(ros_env, tmp_path):
    """Without the prefix (follow_parent=False) this bridge ran on: checked by hand, 2026-12-02."""
    pid, log, stats = _start(tmp_path, ros_env, follow=True)
    # a clean stop takes < 2 s; the rest is for a loaded machine
    alive = not wait_until(lambda: not pid_alive(pid), 30.0)
    if alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive, f"the bridge outlived its killed parent\n{log.read_text(errors='replace')}"
    assert json.loads(stats.read_text())   # SIGTERM is a clean stop: its summary is written

