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
                       **ctl_params) -> OnlineGraph:
    """Start controller and trainer (``kind`` / ``model_dir`` for both; ``ctl_params`` added to the
    controller's) and a peer subscribed to the trainer's metrics. The bridge is the caller's."""
    from std_msgs.msg import String

    ctl_json, tr_json, out_dir = tmp_path / "ctl.json", tmp_path / "trainer.json", tmp_path / "online"
    ctl = start_node("computed_torque", {"robot": "iiwa", "model_kind": kind, "model_dir": model_dir,
                                         "reference": "pick_place", "status_decimation": 10,
                                         "residual_window_s": 0.1,
                                         "stale_timeout_ms": LOCKSTEP_STALE_TIMEOUT_MS,
                                         "summary_path": str(ctl_json), **ctl_params})
    trainer = start_node("trainer", {"model_kind": kind, "model_dir": model_dir, "out_dir": str(out_dir),
                                     "cycle_period_s": 0.5, "summary_path": str(tr_json)})
    peer = TestPeer(peer_name).record_status()
    metrics: list[dict] = []
    peer.node.create_subscription(String, "/trainer/metrics", lambda m: metrics.append(json.loads(m.data)), 10)
    return OnlineGraph(ctl, trainer, peer, metrics, ctl_json, tr_json, out_dir)
