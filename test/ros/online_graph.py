"""The learning graph the online ROS tests start: computed_torque (pick-and-place, realized-error
sigma on, lockstep stale timeout) and the trainer of the same model kind, each its own process,
plus a TestPeer recording the controller's status and the trainer's metrics."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from fakes import TestPeer

from dynlearn_ros.launch_graph import LOCKSTEP_STALE_TIMEOUT_MS


@dataclass
class OnlineGraph:
    ctl: object          # NodeProcess of computed_torque
    trainer: object      # NodeProcess of the trainer
    peer: TestPeer       # records /computed_torque/status rows
    metrics: list        # decoded /trainer/metrics messages, in arrival order
    ctl_json: Path       # the controller's summary
    tr_json: Path        # the trainer's summary
    out_dir: Path        # the trainer's model versions


def start_online_graph(start_node, tmp_path: Path, kind: str, model_dir: str, peer_name: str,
                       trainer_params: dict | None = None, **ctl_params) -> OnlineGraph:
    """Start controller and trainer (``kind`` / ``model_dir`` for both; ``ctl_params`` added to the
    controller's, ``trainer_params`` to the trainer's) and a peer subscribed to the trainer's
    metrics. The bridge is the caller's."""
    from std_msgs.msg import String

    ctl_json, tr_json, out_dir = tmp_path / "ctl.json", tmp_path / "trainer.json", tmp_path / "online"
    ctl = start_node("computed_torque", {"robot": "iiwa", "model_kind": kind, "model_dir": model_dir,
                                         "reference": "pick_place", "status_decimation": 10,
                                         "residual_window_s": 0.1,
                                         "stale_timeout_ms": LOCKSTEP_STALE_TIMEOUT_MS,
                                         "summary_path": str(ctl_json), **ctl_params})
    trainer = start_node("trainer", {"model_kind": kind, "model_dir": model_dir, "out_dir": str(out_dir),
                                     "cycle_period_s": 0.5, "summary_path": str(tr_json), **(trainer_params or {})})
    peer = TestPeer(peer_name).record_status()
    metrics: list[dict] = []
    peer.node.create_subscription(String, "/trainer/metrics", lambda m: metrics.append(json.loads(m.data)), 10)
    return OnlineGraph(ctl, trainer, peer, metrics, ctl_json, tr_json, out_dir)


@dataclass
class SwapGraph:
    ctl: object          # NodeProcess of computed_torque (the shipped SVDKL, sine reference)
    bridge: object       # NodeProcess of sim_bridge (lockstep)
    peer: TestPeer       # records /computed_torque/status rows (every tick)
    announce: object     # publisher on the model-updates topic
    ctl_json: Path       # the controller's summary
    br_json: Path        # the bridge's stats


def start_swap_graph(start_node, tmp_path: Path, peer_name: str, min_rows: int, ctl_params: dict | None = None,
                     bridge_params: dict | None = None) -> SwapGraph:
    """The hot-swap tests' graph: computed_torque with models/svdkl_iiwa_sim on the sine (a status
    row every tick), a peer recording them with a publisher of model announcements, and a lockstep
    sim_bridge started once both are matched; returns after ``min_rows`` rows (the loop runs). The
    peer is closed here if the start fails, by the caller (``graph.peer.close()``) otherwise.

    The bridge carries the shipped model's plant, the iiwa with 5 kg (config/scenario_vgain.yaml,
    the data it was trained on). On the bare arm the model's feed-forward is wrong by the missing
    payload's gravity torque (2.9 N*m on joint 6 at home, where K_P is 1.9 N*m/rad): the wrist fell
    to 3.38 rad/s in 33 ms, past its 3.14 rad/s limit, and the bridge's velocity stop braked (the
    session-6 finding, docs/safety.md "A start that trips it"); with 5 kg it stays below 0.85 rad/s.
    The bridge's lockstep timeout is the controller's lockstep stale timeout (2 s): in lockstep
    the plant waits for every command, so wall time between a state and its command is no plant
    lateness; a command that never comes (a tick lost to a swap) still shows as a timeout, while a
    controller process starved for 0.5 s by a loaded machine (load 20 on 2 cores: one timeout of
    529 ms wall in 2,520 ticks, on a run whose every tick had its command) does not."""
    from std_msgs.msg import String

    from dynlearn_ros.nodes import qos

    ctl_json, br_json = tmp_path / "ctl.json", tmp_path / "bridge.json"
    ctl = start_node("computed_torque", {"robot": "iiwa", "model_kind": "svdkl", "model_dir": "svdkl_iiwa_sim",
                                         "reference": "sine", "status_decimation": 1,
                                         "stale_timeout_ms": LOCKSTEP_STALE_TIMEOUT_MS,
                                         "summary_path": str(ctl_json), **(ctl_params or {})})
    peer = TestPeer(peer_name).record_status()
    try:
        announce = peer.node.create_publisher(String, qos.MODEL_UPDATES_TOPIC, qos.MODEL_UPDATES)
        assert peer.spin_until(lambda: peer.node.count_publishers("/computed_torque/status") > 0
                               and announce.get_subscription_count() > 0, 30.0), ctl.output()
        bridge = start_node("sim_bridge", {"robot": "iiwa", "stepping": "lockstep", "duration_s": 600.0,
                                           "payload_kg": 5.0, "lockstep_timeout_ms": LOCKSTEP_STALE_TIMEOUT_MS,
                                           "stats_path": str(br_json), **(bridge_params or {})})
        assert peer.spin_until(lambda: len(peer.rows) > min_rows, 60.0), f"no status rows\n{ctl.output()}"
    except BaseException:
        peer.close()
        raise
    return SwapGraph(ctl, bridge, peer, announce, ctl_json, br_json)
