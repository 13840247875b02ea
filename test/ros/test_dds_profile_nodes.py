"""The package's Fast DDS profile takes effect in its nodes: their participant runs no TypeLookup
service (the thread whose answers crashed nodes stopped under load, dynlearn_ros/dds_profile.py),
while a participant with Fast DDS's defaults does (so the check can fail)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from dynlearn_ros.dds_profile import ENV

TYPE_LOOKUP_THREAD = "dds.tls.request"   # Fast DDS 3 names its threads; this one answers type requests


def _thread_names(pid: int) -> set[str]:
    names = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as fh:
                names.add(fh.read().strip())
        except OSError:
            pass
    return names


PLAIN = textwrap.dedent("""
    import os, time, rclpy
    rclpy.init()
    node = rclpy.create_node("defaults_probe")
    end = time.monotonic() + 10.0
    while True:   # the participant's threads start with it; a loaded machine may lag
        names = set()
        for tid in os.listdir("/proc/self/task"):
            names.add(open(f"/proc/self/task/{tid}/comm").read().strip())
        if "dds.tls.request" in names or time.monotonic() > end:
            break
        time.sleep(0.1)
    print(sorted(names))
    node.destroy_node()
    rclpy.shutdown()
""")


def test_nodes_run_without_the_type_lookup_service(start_node, ros_env):
    bridge = start_node("sim_bridge", {})
    assert bridge.wait_for_output("publishing", 300.0), bridge.output()
    names = _thread_names(bridge.pid)
    assert any(n.startswith("dds.") for n in names), names   # Fast DDS's threads are visible here
    assert TYPE_LOOKUP_THREAD not in names, names

    defaults = {k: v for k, v in ros_env.items() if k != ENV}
    out = subprocess.run([sys.executable, "-c", PLAIN], env=defaults, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert TYPE_LOOKUP_THREAD in out.stdout, out.stdout   # the control: Fast DDS's defaults start it
