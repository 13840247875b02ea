"""scenario_recorder: record a std_msgs/Float64MultiArray topic (the computed_torque node's
``~/status``) into an .npy file for the scenario reports.

Subscribes ``status`` (remap it, e.g. ``-r status:=/computed_torque/status``), best effort
(matching the controller's publisher), and keeps every message's data as one row. At exit
(SIGINT) it writes ``out_path`` (.npy, float64 array (rows, width)) and ``out_path`` + ``.json``
({"rows", "width", "labels"}: the first layout dimension's label, e.g.
``field:q_des,q,error,...``). The rows are the controller's STATUS_FIELDS, each n values, then
its STATUS_TAIL (layout in :mod:`dynlearn_ros.core.status`).
"""

from __future__ import annotations

if __name__ == "__main__":  # a signal during the imports below must end the process cleanly too
    from dynlearn_ros.nodes.runner import catch_signals_early

    catch_signals_early()

import json  # noqa: E402
import os  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402

from dynlearn_ros.core.config import ConfigError, ParamSpec  # noqa: E402
from dynlearn_ros.nodes.params import declare_spec, on_set_parameters  # noqa: E402
from dynlearn_ros.nodes.runner import run_node  # noqa: E402

_FIXED = "the recording buffer and its file are set up at start-up"
RECORDER_SPEC = (
    ParamSpec("out_path", "string", "", "write the recorded rows here (.npy) at exit (required)",
              dynamic=False, reason=_FIXED),
    ParamSpec("max_rows", "int", 200000, "rows kept at most (later messages are counted, not stored)",
              lo=1, hi=10_000_000, dynamic=False, reason=_FIXED),
)


class ScenarioRecorderNode(Node):
    def __init__(self) -> None:
        super().__init__("scenario_recorder")
        values = declare_spec(self, RECORDER_SPEC, None)
        self.out_path = RECORDER_SPEC[0].check(values["out_path"], 0)
        if not self.out_path:
            raise ConfigError("parameter 'out_path' is required")
        cap = RECORDER_SPEC[1].check(values["max_rows"], 0)
        on_set_parameters(self, RECORDER_SPEC, lambda changes: None)
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

    def write_summary(self) -> None:
        path = Path(self.out_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = self.rows[: self.n] if self.rows is not None else np.empty((0, 0))
        tmp = path.with_name(path.name + ".tmp.npy")
        np.save(tmp, rows)
        os.replace(tmp, path)
        info = {"rows": int(self.n), "width": int(rows.shape[1]) if rows.ndim == 2 else 0,
                "labels": self.label, "dropped": self.dropped}
        Path(str(path) + ".json").write_text(json.dumps(info))


def main(args: list[str] | None = None) -> int:
    """Entry point: records until SIGINT / SIGTERM, then writes out_path; exit 0 (2 without out_path)."""
    return run_node(ScenarioRecorderNode, args, name="scenario_recorder")


if __name__ == "__main__":
    raise SystemExit(main())
