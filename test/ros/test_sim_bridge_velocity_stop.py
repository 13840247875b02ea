"""The sim bridge's velocity stop (docs/safety.md, "Velocity stop") through a real graph.

The mechanism it pins (the CPU-hog fault row's run-away, traced with the bridge's
``trace_path``): a command that is wrong for the arm's present state by a fraction of a N*m,
held by the robot for less than its 20 ms command watchdog, accelerates a light wrist joint by
70 rad/s^2 (1.4 rad/s in 20 ms), so a few such holds take it past its velocity limit while the
watchdog never fires. Here a test peer plays that controller in lockstep (deterministic: one
answer per state, no timing): every command is the gravity compensation of the state it answers
plus 0.1 N*m on joint 7 (about 100 rad/s^2: 1 N*m gives 1045 rad/s^2 in the plant, the flange's
inertia about its axis being ~1e-3 kg m^2). Without the velocity stop (``velocity_stop_fraction:=0``) joint 7 runs past its
3.14 rad/s limit within the run; with the default (0.9) the bridge brakes and every joint stays
below its limit.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_sim_bridge import Peer

pytestmark = pytest.mark.ros

N_TICKS = 400  # 0.4 s: at ~100 rad/s^2 joint 7 passes 3.14 rad/s after ~31 ms (0.05 rad travelled)


def _run(start_node, spin_until, tmp_path, fraction: float | None) -> tuple[dict, str]:
    stats_path = tmp_path / f"stats-{fraction}.json"
    params = {"robot": "iiwa", "stepping": "lockstep", "lockstep_timeout_ms": 2000.0,
              "duration_s": N_TICKS * 1e-3, "stats_path": str(stats_path)}
    if fraction is not None:
        params["velocity_stop_fraction"] = fraction
    bridge = start_node("sim_bridge", params)
    peer = Peer("iiwa")

    def wrong_by_a_tenth_newton_metre(k, q):
        cmd = peer.gravity(q)
        cmd[6] += 0.1
        return cmd

    peer.policy = wrong_by_a_tenth_newton_metre
    try:
        assert spin_until(peer.executor, lambda: bridge.poll() is not None, 60.0), "bridge did not finish"
    finally:
        peer.close()
    assert bridge.wait(timeout=10.0) == 0
    return json.loads(stats_path.read_text()), bridge.output()


def test_velocity_stop_keeps_every_joint_below_its_limit(ros_context, start_node, spin_until, tmp_path):
    from dynlearn_ros.core.robots import robot_spec

    vmax = robot_spec("iiwa").velocity_limits
    off, _ = _run(start_node, spin_until, tmp_path, 0.0)
    on, log = _run(start_node, spin_until, tmp_path, None)
    qd_off = np.asarray(off["max_abs_qd_per_joint"])
    qd_on = np.asarray(on["max_abs_qd_per_joint"])
    # the control run: the same wrong command does drive joint 7 past its limit
    assert off["velocity_stops"] == 0 and qd_off[6] > vmax[6], qd_off.tolist()
    assert off["ticks"] == on["ticks"] == N_TICKS
    # with the stop: every joint below its limit (the monitor trips at 0.9 of it, or one step
    # before at the present acceleration, and one brake step brings the joint to rest)
    assert np.all(qd_on < vmax), (qd_on / vmax).tolist()
    assert on["velocity_stops"] >= 1 and on["velocity_stops_per_joint"][6] >= 1, on
    assert "velocity stop at t =" in log and "lbr_iiwa_joint_7" in log
    # a velocity stop is not a loss of commands (lockstep: every state was answered in time)
    assert on["command_losses"] == 0 and on["timeouts"] == 0
    assert on["brake_steps"] >= on["velocity_stops"]
