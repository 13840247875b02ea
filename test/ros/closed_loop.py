"""Run the sim_bridge and computed_torque nodes as two processes in lockstep and return the
controller's summary (shared by the closed-loop ROS tests)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from dynlearn_ros.launch_graph import LOCKSTEP_STALE_TIMEOUT_MS


def run_closed_loop(start_node, tmp_path: Path, *, robot: str = "iiwa", duration_s: float = 3.0,
                    bridge: dict | None = None, controller: dict | None = None,
                    timeout_s: float = 120.0) -> dict:
    """Bridge (lockstep, exits after ``duration_s`` sim seconds) + controller; returns
    {"controller": summary dict, "bridge": stats dict}."""
    tag = f"{robot}-{len(list(tmp_path.glob('ctl-*.json')))}"
    ctl_json, bridge_json = tmp_path / f"ctl-{tag}.json", tmp_path / f"bridge-{tag}.json"
    ctl = start_node("computed_torque", {"robot": robot, "summary_path": str(ctl_json),
                                         "stale_timeout_ms": LOCKSTEP_STALE_TIMEOUT_MS, **(controller or {})})
    # the bridge waits for each command as long as the controller waits for each state before
    # its stale hold: a lost command still counts a timeout, a process starved by a loaded
    # machine (0.35-0.6 s seen at load 11, main and this tree alike) does not
    br = start_node("sim_bridge", {"robot": robot, "stepping": "lockstep", "duration_s": duration_s,
                                   "lockstep_timeout_ms": LOCKSTEP_STALE_TIMEOUT_MS,
                                   "stats_path": str(bridge_json), **(bridge or {})})
    try:
        rc = br.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"bridge did not finish {duration_s} s of sim time in {timeout_s} s") from exc
    assert rc == 0, f"bridge exit code {rc}"
    assert ctl.poll() is None, f"controller died (exit {ctl.poll()})"
    assert ctl.stop() == 0
    return {"controller": json.loads(ctl_json.read_text()), "bridge": json.loads(bridge_json.read_text())}
