"""The soak's graph is its own (docs/safety.md, "The two publishers"): its nodes end when the soak
process is killed, and a soak refuses, before starting any node, a claimed domain on which
nodes of another process already run (the 24-minute soak whose controller saw two joint_states
publishers for the whole run). Real processes and a real ROS graph; no timing in the checks."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from dynlearn_ros.procs import ros_domain

pytestmark = pytest.mark.ros
ROOT = Path(__file__).resolve().parents[2]


def _node_children(proc: psutil.Process) -> list[psutil.Process]:
    out = []
    for c in proc.children(recursive=True):
        try:
            if any("dynlearn_ros.nodes." in a for a in c.cmdline()):
                out.append(c)
        except psutil.Error:
            pass
    return out


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="util-linux setpriv missing: nodes cannot follow the soak")
def test_nodes_end_when_the_soak_is_killed(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    soak = subprocess.Popen([sys.executable, "-m", "dynlearn_ros.cli", "bench", "soak", "--minutes", "5",
                             "--workdir", str(tmp_path)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nodes: list[psutil.Process] = []
    try:
        parent = psutil.Process(soak.pid)
        end = time.monotonic() + 120.0   # the domain check (3 s) and two node starts, under load
        while time.monotonic() < end and len(nodes) < 2 and soak.poll() is None:
            nodes = _node_children(parent)
            time.sleep(0.2)
        assert len(nodes) == 2, f"soak did not start its two nodes (exit {soak.poll()})"
        soak.send_signal(signal.SIGKILL)   # what a harness's timeout does: no cleanup runs
        soak.wait(timeout=30)
        # SIGTERM from the kernel at the parent's death; each node stops cleanly (a few seconds)
        _, alive = psutil.wait_procs(nodes, timeout=60.0)
        assert not alive, f"nodes still running after the soak was killed: {[p.pid for p in alive]}"
    finally:
        if soak.poll() is None:
            soak.kill()
        for p in nodes:
            with contextlib.suppress(psutil.Error):
                p.kill()


ORPHAN = textwrap.dedent("""
    import rclpy, sys
    rclpy.init()
    node = rclpy.create_node("orphan_bridge")
    from sensor_msgs.msg import JointState
    node.create_publisher(JointState, "joint_states", 10)
    print("up", flush=True)
    try:
        rclpy.spin(node)
    except BaseException:
        pass
""")

# run_soak on the domain the test holds (its claim is the test's, so no other process takes it)
SOAK_ON_HELD_DOMAIN = textwrap.dedent("""
    import contextlib, os, sys
    from pathlib import Path
    import dynlearn_ros.faults.soak as soak

    @contextlib.contextmanager
    def held_domain(log_dir):
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        yield dict(os.environ)

    soak.ros_domain = held_domain
    try:
        soak.run_soak(0.05, Path(sys.argv[1]))
    except RuntimeError as e:
        print("REFUSED", e, flush=True)
        sys.exit(3)
""")


def test_a_domain_with_another_process_s_nodes_is_refused_before_any_node_starts(tmp_path):
    with ros_domain(tmp_path / "ros_log") as env:
        env = {**env, "PYTHONPATH": str(ROOT)}
        orphan = subprocess.Popen([sys.executable, "-c", ORPHAN], env=env, stdout=subprocess.PIPE, text=True)
        try:
            assert orphan.stdout.readline().strip() == "up"
            work = tmp_path / "soak"
            r = subprocess.run([sys.executable, "-c", SOAK_ON_HELD_DOMAIN, str(work)], env=env, cwd=ROOT,
                               capture_output=True, text=True, timeout=180)
        finally:
            orphan.send_signal(signal.SIGINT)
            try:
                orphan.wait(timeout=20)
            except subprocess.TimeoutExpired:
                orphan.kill()
    assert r.returncode == 3, r.stdout + r.stderr
    assert "/orphan_bridge" in r.stdout and f"ROS_DOMAIN_ID {env['ROS_DOMAIN_ID']}" in r.stdout, r.stdout
    assert not (work / "controller.log").exists() and not (work / "bridge.log").exists()
