"""trainer: learns the arm's inverse dynamics while the controller runs (issue 10, section 1).

Subscribes ``joint_states`` (sensor_msgs/JointState; ``effort`` = the torque applied over the
step that led to the state, as the sim bridge and a torque-commanding driver report it) and
``effort_controller/commands`` (std_msgs/Float64MultiArray, URDF order; used as the applied
torque when ``torque_source`` is ``command``, for drivers whose effort is a measurement).
Publishes ``model_updates`` (std_msgs/String: the directory of a newly accepted model version;
reliable, transient-local, depth 1, as the computed_torque node subscribes it) and
``~/metrics`` (std_msgs/String, JSON, one message per cycle: samples_seen, skipped states by
reason, cycles, accepted, rejected, model_version, model_dir, and the last cycle's train /
held-out RMSE (standardized units) and seconds per stage).

The learning is :class:`dynlearn_ros.learning.online.OnlineLearner` (ROS-free; see there for the
model, the gate and the export); ``model_kind`` svdkl or acrkn (the ac-RKN inverse model, whose
belief the trainer carries over contiguous samples). The callbacks only difference the states and push samples into
the learner's ring; a worker thread runs a cycle every ``cycle_period_s`` when enough samples
are new, so neither the subscriptions nor the controller (another process) wait for training.
Bad input never stops the node: states with unknown / missing joints or non-finite values and
stale states are skipped and counted. This is the one node that imports ``learning``.
"""

from __future__ import annotations

if __name__ == "__main__":  # a signal during the imports below must end the process cleanly too
    from dynlearn_ros.nodes.runner import catch_signals_early

    catch_signals_early()

import array  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from rclpy.node import Node  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray, String  # noqa: E402

from dynlearn_ros.core.config import ConfigError, ParamSpec  # noqa: E402
from dynlearn_ros.core.safety import OK, JointStateMapper  # noqa: E402
from dynlearn_ros.nodes import qos  # noqa: E402
from dynlearn_ros.nodes.params import declare_spec, write_json_atomic  # noqa: E402
from dynlearn_ros.nodes.runner import run_node  # noqa: E402

_RESTART = "the learner is built once at start-up"

#: the trainer's parameters (all read at start-up)
TRAINER_SPEC: tuple[ParamSpec, ...] = (
    ParamSpec("model_kind", "string", "svdkl", "kind of the model the controller runs and the trainer "
              "corrects (svdkl, acrkn: its inverse model); model_dir must hold that kind",
              choices=("svdkl", "acrkn"), dynamic=False, reason=_RESTART),
    ParamSpec("model_dir", "string", "svdkl_iiwa_sim", "the model the controller starts from (relative: "
              "under the package's models/)", dynamic=False, reason=_RESTART),
    ParamSpec("out_dir", "string", "", "where accepted versions are written (v0002, v0003, ...); empty: "
              "a new temporary directory", dynamic=False, reason=_RESTART),
    ParamSpec("batch", "int", 100, "new samples per cycle (at least)", lo=10, hi=100000, dynamic=False,
              reason=_RESTART),
    ParamSpec("holdout", "int", 200, "newest samples held out to gate a candidate", lo=10, hi=100000,
              dynamic=False, reason=_RESTART),
    ParamSpec("forget_samples", "double", 4000.0, "time constant of the learner's statistics (samples)",
              lo=10.0, hi=1e9, dynamic=False, reason=_RESTART),
    ParamSpec("cycle_period_s", "double", 0.5, "seconds between cycles (a cycle also needs `batch` new "
              "samples)", lo=0.01, hi=3600.0, dynamic=False, reason=_RESTART),
    ParamSpec("max_gap_ms", "double", 20.0, "a state more than this after the previous one is stale "
              "(its acceleration is not used)", lo=0.1, hi=10000.0, dynamic=False, reason=_RESTART),
    ParamSpec("torque_source", "string", "effort", "applied torque: joint_states effort, or the last "
              "effort_controller/commands", choices=("effort", "command"), dynamic=False, reason=_RESTART),
    ParamSpec("base", "string", "auto", "what the correction is added to: the model's own mean, the URDF's "
              "RNEA (svdkl models; the version declares it and the controller adds its URDF's RNEA), or "
              "auto: both fitted, the lower held-out error exported (learning/online.py)",
              choices=("auto", "model", "analytic"), dynamic=False, reason=_RESTART),
    ParamSpec("urdf_path", "string", "", "URDF of the analytic base (its RNEA is what a version on that base "
              "corrects); must be the controller's urdf_path, or the controller refuses every such version "
              "(URDF mismatch, runtime/analytic_base.py); empty: the packaged URDF of the model's robot",
              dynamic=False, reason=_RESTART),
    ParamSpec("analytic_var", "string", "auto", "variance of a version on the analytic base: the base "
              "model's (base) or the correction's own, with gain-schedule bounds from this plant "
              "(correction); auto: base for svdkl, correction for acrkn (learning/online.py "
              "AUTO_ANALYTIC_VAR)", choices=("auto", "base", "correction"), dynamic=False,
              reason=_RESTART),
    ParamSpec("controller_node", "string", "computed_torque", "the controller whose K_P ceiling (its k_max "
              "raised by its payload_margin_kg floor, read from its parameters and followed when they change) "
              "sets the arm term of the bounds of a correction-variance version (learning/online.py "
              "_correction_sigma_bounds); relative to the trainer's namespace; empty: that term off (higher gains)",
              dynamic=False, reason=_RESTART),
    ParamSpec("seed", "int", 0, "draw of the random features", lo=0, hi=2**31 - 1, dynamic=False,
              reason=_RESTART),
    ParamSpec("summary_path", "string", "", "write a JSON summary here at exit", dynamic=False,
              reason=_RESTART),
    ParamSpec("initial_bag", "string", "", "a rosbag2 (docs/bags.md: folder, .mcap or .db3) whose aligned "
              "rows (torque per torque_source) are the learner's first samples; empty: none",
              dynamic=False, reason=_RESTART),
)


class Trainer(Node):
    def __init__(self) -> None:
        super().__init__("trainer")
        from dynlearn_ros.learning.online import OnlineConfig, OnlineLearner, StateDifferencer
        from dynlearn_ros.paths import resolve_model_dir

        raw = declare_spec(self, TRAINER_SPEC, None)
        self.p = p = {s.name: s.check(raw[s.name], 0) for s in TRAINER_SPEC}   # ConfigError: exit 2
        out = p["out_dir"] or tempfile.mkdtemp(prefix="dynlearn-trainer-")
        self.learner = OnlineLearner(resolve_model_dir(p["model_dir"]), out, OnlineConfig(
            batch=p["batch"], holdout=p["holdout"], forget_samples=p["forget_samples"], seed=p["seed"],
            base=p["base"], urdf=self._urdf(p["urdf_path"]), analytic_var=p["analytic_var"]))
        if self.learner.kind != p["model_kind"]:
            raise ConfigError(f"model_dir {p['model_dir']} holds a {self.learner.kind} model, model_kind is "
                              f"{p['model_kind']}")
        names = self.learner.meta.joint_names   # the model's order; joint_states are mapped by name
        self.n = len(names)
        self.diff = StateDifferencer(self.n, 1e-3 * p["max_gap_ms"])
        self.mapper = JointStateMapper(names)
        self.rejected: dict[str, int] = {}
        self.bag_rows = self._seed_from_bag(p["initial_bag"], names) if p["initial_bag"] else 0
        self._effort = np.zeros(self.n)
        self._cmd = np.full(self.n, np.nan)
        self.update_pub = self.create_publisher(String, qos.MODEL_UPDATES_TOPIC, qos.MODEL_UPDATES)
        self.metrics_pub = self.create_publisher(String, "~/metrics", 10)
        self.create_subscription(JointState, "joint_states", self._on_state, 50)
        self.create_subscription(Float64MultiArray, "effort_controller/commands", self._on_command, qos.COMMANDS)
        self._stop = threading.Event()
        self._ceiling = None
        if self.learner.cfg.analytic_var == "correction" and p["controller_node"]:
            self._ceiling = ControllerCeiling(self, p["controller_node"], names)
        self._worker = threading.Thread(target=self._work, name="trainer-cycles", daemon=True)
        self._worker.start()
        self.get_logger().info(f"learning {p['model_kind']} from {self.learner.base_dir} (version "
                               f"{self.learner.version}); new versions under {out}"
                               + (f"; analytic base {self.learner.urdf}" if self.learner.urdf else ""))

    @staticmethod
    def _urdf(path: str) -> str:
        """The urdf_path parameter checked at start-up: empty, or a readable file (FileNotFoundError:
        start-up refused with the path)."""
        if path:
            from pathlib import Path

            if not Path(path).expanduser().is_file():
                raise FileNotFoundError(f"urdf_path {path}: no such file")
            return str(Path(path).expanduser())
        return ""

    def _seed_from_bag(self, path: str, names) -> int:
        """Push the bag's rows ([q, qd, qdd], tau in the model's joint order) into the learner;
        ValueError (start-up refused) when the bag cannot be read or lacks a joint."""
        from dynlearn_ros.bags.convert import bag_to_data

        data = bag_to_data(path, torque_source=self.p["torque_source"])
        missing = [j for j in names if j not in data.joint_names]
        if missing:
            raise ValueError(f"initial_bag {path}: joints {missing} of the model are not in its joint states "
                             f"{list(data.joint_names)}")
        idx = [data.joint_names.index(j) for j in names]
        x = np.hstack([data.q[:, idx], data.qd[:, idx], data.qdd[:, idx]])
        for xi, yi in zip(x, data.tau[:, idx], strict=True):
            self.learner.add(xi, yi)
        self.get_logger().info(f"initial_bag {path}: {len(data)} samples added "
                               f"({'complete' if data.meta['bag']['complete'] else 'partial'} bag)")
        from dynlearn_ros.bags.excitation import warning_line

        warn = warning_line(data.meta["excitation"])
        if warn:  # the online updates may still excite those joints: said, not refused
            self.get_logger().warning(f"initial_bag {path}: {warn}")
        return len(data)

    def _count(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        self.get_logger().warning(f"joint state skipped ({reason}); {self.rejected[reason]} so far",
                                  throttle_duration_sec=5.0)

    def _on_command(self, msg: Float64MultiArray) -> None:
        if len(msg.data) != self.n:
            self._count("command_size")
            return
        self._cmd[:] = msg.data

    def _on_state(self, msg: JointState) -> None:
        status = self.mapper.update(msg.name, msg.position, msg.velocity)
        if status != OK:
            self._count(status)
            return
        if self.p["torque_source"] == "effort":
            if len(msg.effort) != len(msg.name):
                self._count("no_effort")
                return
            idx = {nm: i for i, nm in enumerate(msg.name)}
            self._effort[:] = [msg.effort[idx[j]] for j in self.mapper.joint_names]
            tau = self._effort
        else:
            tau = self._cmd
        t = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
        sample = self.diff.push(self.mapper.q, self.mapper.qd, t, tau)
        if sample is not None:
            self.learner.add(*sample, contiguous=self.diff.contiguous)

    def _work(self) -> None:
        period = self.p["cycle_period_s"]
        while not self._stop.wait(period):
            if not self.learner.ready():
                continue
            if self._ceiling is not None:
                self._ceiling.sync(self.learner)
            try:
                res = self.learner.cycle()
            except Exception as exc:   # never let a numerical failure end the node
                self.get_logger().error(f"training cycle failed: {type(exc).__name__}: {exc}")
                continue
            if res is None:
                continue
            if res.accepted:
                self.update_pub.publish(String(data=res.path))
                self.get_logger().info(f"model version {res.version} accepted (held-out "
                                       f"{res.heldout_candidate:.4f} vs {res.heldout_running:.4f}): {res.path}")
            else:
                self.get_logger().warning(f"candidate rejected: {res.reason}", throttle_duration_sec=5.0)
            self.metrics_pub.publish(String(data=json.dumps(self.summary(), default=float)))

    def summary(self) -> dict:
        return {**self.learner.metrics(), "states": dict(self.diff.counts), "rejected_states": dict(self.rejected),
                "initial_bag_rows": self.bag_rows,
                "k_max": None if self.learner.k_max is None else self.learner.k_max.tolist(),
                "wall_time": time.time()}

    def write_summary(self) -> None:
        if self.p["summary_path"]:
            write_json_atomic(self.p["summary_path"], self.summary())

    def destroy_node(self) -> None:
        self._stop.set()
        if self._worker.is_alive():
            self._worker.join(timeout=10.0)
        super().destroy_node()


#: the controller's parameters its K_P ceiling depends on (core/assembly.py build_schedule), and
#: those its validation needs to accept them (core/config.py validate)
CEILING_PARAMS = ("robot", "urdf_path", "joint_names", "k_min", "k_max", "sigma_n", "sigma_f",
                  "payload_margin_kg", "max_tracking_error", "torque_limits")


def controller_ceiling(values: dict, joint_names) -> np.ndarray:
    """The K_P ceiling (n,) N*m/rad the controller with parameters ``values`` (a subset of its
    parameters; the rest take their defaults) schedules up to: its k_max raised by the payload
    floor, as its own schedule is built (core/assembly.py build_schedule), in the order
    ``joint_names``. ConfigError / ValueError when they do not form a valid configuration or
    lack a joint."""
    import dataclasses

    from dynlearn_ros.core.assembly import build_schedule
    from dynlearn_ros.core.config import robot_context, validate

    cfg = validate(values, robot_context(values.get("robot", "iiwa"), values.get("urdf_path", "")))
    k_max = build_schedule(dataclasses.replace(cfg, use_model_sigma_bounds=False), None).k_max
    missing = [j for j in joint_names if j not in cfg.joint_names]
    if missing:
        raise ValueError(f"joints {missing} of the model are not the controller's {list(cfg.joint_names)}")
    return np.array([k_max[cfg.joint_names.index(j)] for j in joint_names])


class ControllerCeiling:
    """Keeps the learner's ``k_max`` the controller's K_P ceiling: reads ``CEILING_PARAMS`` from
    the controller node's parameter service and reads them again when its /parameter_events
    name one of them. Until they are read (the controller not up yet, or a refused set) the arm
    term is off: the versions' bounds are the per-joint ones (higher gains), said in the log."""

    def __init__(self, node: Node, controller: str, joint_names) -> None:
        from rcl_interfaces.msg import ParameterEvent
        from rclpy.parameter_client import AsyncParameterClient

        ns = node.get_namespace().rstrip("/")
        self.name = controller if controller.startswith("/") else f"{ns}/{controller}"
        self.node, self.joint_names = node, tuple(joint_names)
        self.client = AsyncParameterClient(node, self.name)
        self.stale, self.pending, self.reads = True, None, 0
        node.create_subscription(ParameterEvent, "/parameter_events", self._on_event, 10)

    def _on_event(self, msg) -> None:
        if msg.node == self.name and any(p.name in CEILING_PARAMS for p in (*msg.new_parameters,
                                                                             *msg.changed_parameters)):
            self.stale = True

    def sync(self, learner) -> None:
        """From the worker, before a cycle: ask again when stale; apply an answer that came."""
        log = self.node.get_logger()
        if self.pending is not None and self.pending.done():
            fut, self.pending = self.pending, None
            try:
                from rclpy.parameter import parameter_value_to_python

                got = [parameter_value_to_python(v) for v in fut.result().values]
                values = {n: list(v) if isinstance(v, list | tuple | array.array) else v
                          for n, v in zip(CEILING_PARAMS, got, strict=True) if v is not None}
                k_max = controller_ceiling(values, self.joint_names)
                learner.set_k_max(k_max)
                self.reads += 1
                log.info(f"{self.name}'s K_P ceiling {np.round(k_max, 3).tolist()}: the arm term of the "
                         "versions' bounds from now on")
            except Exception as exc:   # a refused set: the per-joint bounds alone
                learner.set_k_max(None)
                self.stale = True
                log.warning(f"{self.name}'s K_P ceiling not read ({type(exc).__name__}: {exc}); versions "
                            "use the per-joint bounds (arm term off)", throttle_duration_sec=10.0)
        if self.stale and self.pending is None:
            if not self.client.services_are_ready():
                if learner.k_max is None:
                    log.warning(f"{self.name}'s parameters not available yet: versions use the per-joint "
                                "bounds (arm term off)", throttle_duration_sec=10.0)
                return
            self.stale = False
            self.pending = self.client.get_parameters(list(CEILING_PARAMS))


def main(args: list[str] | None = None) -> int:
    """Entry point (``trainer`` console script, ``python -m``): exit 0 after SIGINT / SIGTERM,
    2 when the configuration is refused."""
    return run_node(Trainer, args, name="trainer")


if __name__ == "__main__":
    raise SystemExit(main())
