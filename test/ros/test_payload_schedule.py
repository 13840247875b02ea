"""A payload schedule through the real graph (issue 10): sim_bridge (lockstep, 12 kg), the
computed_torque node (shipped SVDKL, realized-error sigma, the gain floor) and the trainer, each
its own process. Once the trainer's payload estimate has settled at the 12 kg phase, the bridge's
payload is set to 15 kg at run time (its ``~/payload_kg`` topic); the trainer must re-identify it.

Margins, with the reasons:

* settled at 12 kg: the shipped model was trained with the scenario's 5 kg, so the trainer's
  mass dm (relative to the base model) should approach +7 kg; in the lockstep in-process runs it
  reaches +7.0-7.1 within ~1 s (docs/results_closed_loop.md). Accept |dm - 7| < 1.5 kg: a kg is
  ~6 N*m on joint 2 of the iiwa, four times its sigma_f; a learner that mislearns by that much
  fails the in-process goal.
* after the step to 15 kg: dm must come within 1.5 kg of +10 kg within 8 s of sim time (in-process:
  within ~1 s, two learner cycles; the wall-clock cycle period of 0.5 s makes the number of sim
  seconds per cycle depend on the lockstep rate, so the bound leaves room for several cycles).
* the controller never enters the following-error FAULT hold (a 3 kg rise is far inside what the
  gain floor holds: 3 kg * 9.0 N*m/kg / 541 N*m/rad = 0.05 rad on joint 2).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from online_graph import start_online_graph

from dynlearn_ros.core.control import Mode
from dynlearn_ros.core.robots import robot_spec
from dynlearn_ros.core.status import split_status, status_width

pytestmark = [pytest.mark.ros, pytest.mark.sim, pytest.mark.slow]

SPEC = robot_spec("iiwa")
N = SPEC.n
#: the shipped SVDKL model's payload (config/scenario_vgain.yaml) and the schedule (kg)
BASE_KG, FIRST_KG, SECOND_KG = 5.0, 12.0, 15.0
TOL_KG = 1.5
MARGIN_KG = 15.0
#: sim seconds at the first payload before the step
SETTLE_S = 4.0
#: seconds a node gets to exit after SIGINT: the trainer first finishes a cycle in progress and
#: joins its worker (up to 10 s); on the loaded 2-core machine one of five runs took > 10 s
STOP_S = 30.0


def test_trainer_follows_a_payload_step_of_the_bridge(ros_context, start_node, tmp_path):
    from std_msgs.msg import Float64

    br_json = tmp_path / "bridge.json"
    g = start_online_graph(start_node, tmp_path, "svdkl", "svdkl_iiwa_sim", "payload_peer",
                           payload_margin_kg=MARGIN_KG)
    ctl, trainer, peer, metrics, tr_json = g.ctl, g.trainer, g.peer, g.metrics, g.tr_json
    node, rows, spin_until = peer.node, peer.rows, peer.spin_until
    payload_pub = node.create_publisher(Float64, "/sim_bridge/payload_kg", 10)
    width = status_width(N)

    def dm() -> float:
        """The running version's payload estimate relative to the shipped model's 5 kg (a version
        on the URDF's RNEA, learning/online.py base "analytic", estimates the whole payload)."""
        if not metrics:
            return float("nan")
        m = metrics[-1]
        return float(m["payload_kg_running"]) - (BASE_KG if m.get("base_running") == "analytic" else 0.0)

    def sim_t() -> float:
        return float(split_status(rows[-1], N)["t"][0]) if rows and rows[-1].size == width else 0.0

    trace = []
    try:
        assert spin_until(lambda: node.count_publishers("/computed_torque/status") > 0
                          and node.count_publishers("/trainer/metrics") > 0, 60.0), ctl.output() + trainer.output()
        bridge = start_node("sim_bridge", {"robot": "iiwa", "stepping": "lockstep", "duration_s": 600.0,
                                           "payload_kg": FIRST_KG, "stats_path": str(br_json)})
        settled = spin_until(lambda: abs(dm() - (FIRST_KG - BASE_KG)) < TOL_KG and sim_t() > SETTLE_S, 240.0)
        assert settled, f"dm {dm()} at 12 kg\n{trainer.output()[-3000:]}"
        spin_until(lambda: payload_pub.get_subscription_count() >= 1, 10.0)
        t_step = sim_t()
        trace.append(("step", t_step, dm()))
        payload_pub.publish(Float64(data=SECOND_KG))
        followed = spin_until(lambda: (trace.append((sim_t(), dm())) or True)
                              and abs(dm() - (SECOND_KG - BASE_KG)) < TOL_KG
                              and sim_t() > t_step, 240.0)
        t_done = sim_t()
        spin_until(lambda: False, 0.5)
        assert bridge.stop(STOP_S) == 0
    finally:
        peer.close()
    assert trainer.stop(STOP_S) == 0
    assert ctl.stop(STOP_S) == 0
    assert followed, f"dm after the step: {trace[-5:]}\n{trainer.output()[-3000:]}"
    assert t_done - t_step < 8.0, (t_step, t_done, trace[-3:])
    st = split_status(np.array([r for r in rows if r.size == width]), N)
    assert not np.any(st["mode"] == int(Mode.FAULT))
    tr = json.loads(tr_json.read_text())
    assert tr["accepted"] >= 2, tr
