"""scenario_recorder: record a std_msgs/Float64MultiArray topic (the computed_torque node's
``~/status``) into an .npy file for the scenario reports.

Subscribes ``status`` (remap it, e.g. ``-r status:=/computed_torque/status``), best effort
(matching the controller's publisher), and keeps every message's data as one row. At exit
(SIGINT) it writes ``out_path`` (.npy, float64 array (rows, width)) and ``out_path`` + ``.json``
({"rows", "width", "labels"}: the first layout dimension's label, e.g.
``field:q_des,q,error,...``). The rows are the controller's STATUS_FIELDS, each n values, then
its STATUS_TAIL (mode, tick_us, t_ref s).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import Float64MultiArray

from dynlearn_ros.nodes.params import ParameterError, declare, spin_until_shutdown


class ScenarioRecorderNode(Node):
    def __init__(self) -> None:
        super().__init__("scenario_recorder")
        self.out_path = declare(self, "out_path", "", "write the recorded rows here (.npy) at exit")
        if not self.out_path:
            raise ParameterError("parameter 'out_path' is required")
        cap = declare(self, "max_rows", 200000, "rows kept at most (later messages are counted, "
                      "not stored)", lo=1, hi=10_000_000)
        self.rows: np.ndarray | None = None
        self.cap = int(cap)
        self.n = 0
        self.dropped = 0
        self.label = ""
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)
        self.create_subscription(Float64MultiArray, "status", self._on_msg, qos)

    def _on_msg(self, msg: Float64MultiArray) -> None:
        data = msg.data
        if self.rows is None:
            self.rows = np.empty((self.cap, len(data)))
            self.label = msg.layout.dim[0].label if msg.layout.dim else ""
        if self.n >= self.cap or len(data) != self.rows.shape[1]:
            self.dropped += 1
            return
        self.rows[self.n] = data
        self.n += 1

    def write(self) -> None:
        path = Path(self.out_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = self.rows[: self.n] if self.rows is not None else np.empty((0, 0))
        tmp = path.with_name(path.name + ".tmp.npy")
        np.save(tmp, rows)
        os.replace(tmp, path)
        info = {"rows": int(self.n), "width": int(rows.shape[1]) if rows.ndim == 2 else 0,
                "labels": self.label, "dropped": self.dropped}
        Path(str(path) + ".json").write_text(json.dumps(info))


def main(args=None) -> int:
    node = None
    try:
        with rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO):
            try:
                node = ScenarioRecorderNode()
            except ParameterError as exc:
                rclpy.logging.get_logger("scenario_recorder").fatal(f"start-up failed: {exc}")
                return 2
            from rclpy.experimental import EventsExecutor

            executor = EventsExecutor()
            executor.add_node(node)
            spin_until_shutdown(executor)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.write()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
