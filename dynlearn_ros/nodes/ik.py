"""ik: target poses in, a joint-space reference trajectory out (learned or Jacobian IK).

Subscribes ``joint_states`` (sensor_msgs/JointState: the current configuration, the first start
of the solver), ``ik/target`` (geometry_msgs/PoseStamped: end-effector pose in the chain's base
frame; the ``ee_mask`` parameter says which of its 9 components count) and ``ik/chain_target``
(std_msgs/Float64MultiArray, n x 9 row-major pose-chain targets, NaN = don't care: masks and
intermediate-joint targets). Publishes ``reference_trajectory`` (trajectory_msgs/JointTrajectory,
one point ``move_s`` ahead, zero velocity: the computed_torque node follows it) and
``/diagnostics``. A refused target (non-finite, outside the reach, not solved within tolerance,
wrong frame) is logged with its reason and counted; nothing is published, so the controller
keeps its last reference. Solving and refusing live in
:class:`dynlearn_ros.learning.ik.planner.IKPlanner`.

Layering: this is the one node besides a trainer that imports ``learning/`` (torch): the learned
solver needs gradients through the network, which onnxruntime cannot give; it is a planning
node (a solve per target, tens to hundreds of ms), never on the 1 kHz control path.
"""

from __future__ import annotations

if __name__ == "__main__":  # a signal during the imports below must end the process cleanly too
    from dynlearn_ros.nodes.runner import catch_signals_early

    catch_signals_early()

import time  # noqa: E402
from collections.abc import Mapping  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from builtin_interfaces.msg import Duration  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.node import Node  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint  # noqa: E402

from dynlearn_ros.core.config import ConfigError, ParamSpec, RobotContext, robot_context  # noqa: E402
from dynlearn_ros.core.robots import ROBOTS  # noqa: E402
from dynlearn_ros.core.safety import OK, JointStateMapper  # noqa: E402
from dynlearn_ros.nodes import qos  # noqa: E402
from dynlearn_ros.nodes.params import declare_spec, on_set_parameters, write_json_atomic  # noqa: E402
from dynlearn_ros.nodes.runner import run_node  # noqa: E402

SOLVERS = ("learned", "learned_gn", "dls")
LOG_THROTTLE_S = 2.0
POSE_FIELDS = 7  # demo_targets rows: x y z qx qy qz qw
EE_COMPONENTS = 9  # px py pz | x axis (3) | z axis (3)

_SOLVER = "the solver (and its model) is built once at start-up"
_IO = "the joint map, frames and subscriptions are built once at start-up"
_DEMO = "the demo timer is created at start-up"


def _base_frame(ctx: RobotContext) -> str:
    from dynlearn_ros.learning.ik.chain import chain

    return chain(ctx.spec.name).base_frame


#: the ik node's parameters; ``move_s`` and ``ee_mask`` may change at run time (validated)
IK_SPEC: tuple[ParamSpec, ...] = (
    ParamSpec("robot", "string", "iiwa", "robot whose kinematic chain is solved", choices=ROBOTS,
              dynamic=False, reason=_SOLVER),
    ParamSpec("joint_names", "string_array", lambda ctx: ctx.spec.joint_names, "joint names as they "
              "appear in joint_states and in the published trajectory, in URDF order", dynamic=False,
              reason=_IO),
    ParamSpec("solver", "string", "learned_gn", "learned: gradient descent through the pose-chain LSTM, "
              "target correction, then polish_iterations Levenberg-Marquardt steps with the LSTM's "
              "Jacobian on the true error; learned_gn: only those steps; dls: Pinocchio Jacobian, "
              "damped least squares", choices=SOLVERS, dynamic=False, reason=_SOLVER),
    ParamSpec("model_dir", "string", lambda ctx: f"ik_{ctx.spec.name}", "learned IK model directory "
              "(relative: under the package's models/)", dynamic=False, reason=_SOLVER),
    ParamSpec("correction_rounds", "int", 5, "target-correction rounds with Pinocchio FK (0: off)", lo=0,
              hi=50, dynamic=False, reason=_SOLVER),
    ParamSpec("max_iterations", "int", 300, "gradient / DLS iterations per solve", lo=1, hi=100000,
              dynamic=False, reason=_SOLVER),
    ParamSpec("polish_iterations", "int", 100, "learned solvers: Levenberg-Marquardt steps through the "
              "LSTM's Jacobian on the true (Pinocchio FK) error (0: off; learned_gn needs >= 1)", lo=0,
              hi=10000, dynamic=False, reason=_SOLVER),
    ParamSpec("starts", "int", 4, "starts per target: the current configuration, home, then seeded "
              "random ones; the best true result is kept", lo=1, hi=64, dynamic=False, reason=_SOLVER),
    ParamSpec("pos_tol_m", "double", 0.005, "position tolerance (m) on constrained components", lo=1e-5,
              hi=1.0, dynamic=False, reason=_SOLVER),
    ParamSpec("rot_tol_deg", "double", 2.0, "orientation tolerance (deg)", lo=0.01, hi=180.0,
              dynamic=False, reason=_SOLVER),
    ParamSpec("move_s", "double", 3.0, "duration of the move to a solved configuration (s)", lo=0.1,
              hi=600.0),
    ParamSpec("ee_mask", "double_array", [1.0] * EE_COMPONENTS, "which end-effector components an "
              "ik/target constrains, 9 values 0/1: px py pz | x axis (3) | z axis (3)", lo=0.0, hi=1.0),
    ParamSpec("base_frame", "string", _base_frame, "frame_id ik/target must use (empty frame_id is "
              "taken as this frame)", dynamic=False, reason=_IO),
    ParamSpec("demo_targets", "double_array", [0.0], "optional demo: end-effector poses, rows of "
              "x y z qx qy qz qw (m, quaternion), cycled every demo_period_s once joint states "
              "arrive; [0.0]: none", dynamic=False, reason=_DEMO),
    ParamSpec("demo_period_s", "double", 5.0, "seconds between demo targets", lo=0.5, hi=3600.0,
              dynamic=False, reason=_DEMO),
    ParamSpec("summary_path", "string", "", "write a JSON summary here at exit", dynamic=False,
              reason="fixed at start-up, like the other nodes' summaries"),
)


def ee_mask(values: Any) -> np.ndarray:
    """``values`` as the (9,) float64 end-effector mask (each 0 or 1, not all 0);
    :class:`ConfigError` naming ``ee_mask`` otherwise."""
    try:
        m = np.asarray(list(values), dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"parameter 'ee_mask': need {EE_COMPONENTS} numbers, got {values!r}") from None
    if m.shape != (EE_COMPONENTS,) or not np.all(np.isin(m, (0.0, 1.0))) or not m.any():
        raise ConfigError(f"parameter 'ee_mask': need {EE_COMPONENTS} values, each 0 or 1, not all 0; "
                          f"got {m.tolist()}")
    return m


def validate_ik(values: Mapping[str, Any], ctx: RobotContext) -> dict[str, Any]:
    """The ik node's parameters checked against :data:`IK_SPEC` for robot ``ctx`` (missing ones
    take their defaults): plain values, ``ee_mask`` (9,), ``demo_targets`` (m, 7) (m = 0: no
    demo), ``joint_names`` a tuple; :class:`ConfigError` naming the first bad parameter."""
    table = {s.name: s for s in IK_SPEC}
    unknown = set(values) - set(table)
    if unknown:
        raise ConfigError(f"unknown parameters {sorted(unknown)}")
    raw = {s.name: s.default_value(ctx) for s in IK_SPEC} | dict(values)
    v = {name: spec.check(raw[name], ctx.n) for name, spec in table.items()}
    if v["robot"] != ctx.spec.name:
        raise ConfigError(f"parameter 'robot' = {v['robot']!r}: the configuration was built for {ctx.spec.name!r}")
    names = v["joint_names"]
    if len(names) != ctx.n or len(set(names)) != ctx.n:
        raise ConfigError(f"parameter 'joint_names': need {ctx.n} unique names, got {list(names)}")
    v["ee_mask"] = ee_mask(v["ee_mask"])
    demo = v["demo_targets"]
    if demo.size > 1 and demo.size % POSE_FIELDS:
        raise ConfigError(f"parameter 'demo_targets': need rows of {POSE_FIELDS} values "
                          f"(x y z qx qy qz qw), got {demo.size} values")
    v["demo_targets"] = demo.reshape(-1, POSE_FIELDS) if demo.size > 1 else np.zeros((0, POSE_FIELDS))
    return v


class IKNode(Node):
    """Target poses in (``ik/target``, ``ik/chain_target``), a one-point JointTrajectory out; the
    parameters are :data:`IK_SPEC`."""

    def __init__(self) -> None:
        super().__init__("ik")
        self._configure()
        self._build_io()

    # -- configuration ------------------------------------------------------------------------
    def _configure(self) -> None:
        import torch

        from dynlearn_ros.learning.ik.chain import chain
        from dynlearn_ros.learning.ik.dls import DLSIK
        from dynlearn_ros.learning.ik.planner import IKPlanner
        from dynlearn_ros.learning.ik.solver import LearnedIK
        from dynlearn_ros.learning.ik.store import IKModelError, load
        from dynlearn_ros.paths import models_dir

        torch.set_num_threads(1)
        # the robot first: the other defaults (joint names, model, base frame) are the robot's
        robot = IK_SPEC[0].check(declare_spec(self, IK_SPEC[:1], None)["robot"], 0)
        ctx = robot_context(robot)
        self.values = {"robot": robot, **declare_spec(self, IK_SPEC[1:], ctx)}
        self.ctx = ctx
        p = validate_ik(self.values, ctx)
        c = chain(robot)
        self.joint_names = list(p["joint_names"])
        self.move_s = p["move_s"]
        self.ee_mask = p["ee_mask"]
        self.base_frame = p["base_frame"]
        self.demo = p["demo_targets"]
        self.demo_period_s = p["demo_period_s"]
        self.summary_path = p["summary_path"]

        if p["solver"] == "learned_gn" and p["polish_iterations"] < 1:
            raise ConfigError("parameter 'polish_iterations': solver learned_gn needs at least 1")
        if p["solver"] != "dls":
            path = Path(p["model_dir"])
            if not path.is_absolute():
                path = models_dir() / path
            try:
                model, _, _ = load(path, expect_chain=robot)
            except IKModelError as exc:
                raise ConfigError(f"parameter 'model_dir': {exc}") from exc
            if p["solver"] == "learned":
                solver = LearnedIK(model, c, max_iter=p["max_iterations"], corrections=p["correction_rounds"],
                                   polish=p["polish_iterations"])
            else:
                solver = LearnedIK(model, c, max_iter=0, polish=p["polish_iterations"])
        else:
            solver = DLSIK(c, max_iter=p["max_iterations"])
        self.chain = c
        self.planner = IKPlanner(c, solver, p["pos_tol_m"], p["rot_tol_deg"], starts=p["starts"])
        self.mapper = JointStateMapper(self.joint_names)
        self.have_state = False
        self.counters = {"targets": 0, "solved": 0, "refused": 0, "rejected_states": 0, "demo_sent": 0,
                         "errors": 0}
        self.last_reason = ""
        self.solve_ms: list[float] = []
        self.last_q: list[float] | None = None
        on_set_parameters(self, IK_SPEC, self._apply_parameters)
        model_dir = p["model_dir"] if p["solver"] != "dls" else "-"
        self.get_logger().info(f"robot={robot} solver={p['solver']} model_dir={model_dir} "
                               f"correction_rounds={p['correction_rounds']} polish_iterations={p['polish_iterations']} "
                               f"starts={p['starts']} tolerance={p['pos_tol_m'] * 1e3:.1f} mm "
                               f"/ {p['rot_tol_deg']:.2f} deg demo_targets={len(self.demo)}")

    @staticmethod
    def _mask(values: Any) -> np.ndarray:
        """:func:`ee_mask`: (9,) 0/1 mask or :class:`ConfigError`."""
        return ee_mask(values)

    def _apply_parameters(self, changes: dict[str, Any]) -> None:
        """Run-time changes (``ee_mask``, ``move_s``; the others are refused with their reason by
        :func:`on_set_parameters`): the whole new set validated, then applied together (the
        single-threaded executor runs this between two solves)."""
        values = {**self.values, **{k: v for k, v in changes.items() if k in self.values}}
        p = validate_ik(values, self.ctx)
        self.values = values
        self.move_s, self.ee_mask = p["move_s"], p["ee_mask"]

    # -- ROS I/O --------------------------------------------------------------------------------
    def _build_io(self) -> None:
        self.traj_pub = self.create_publisher(JointTrajectory, "reference_trajectory", qos.COMMANDS)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
        self.create_subscription(JointState, "joint_states", self._on_state, qos.COMMANDS)
        self.create_subscription(PoseStamped, "ik/target", self._on_target, qos.IK_TARGETS)
        self.create_subscription(Float64MultiArray, "ik/chain_target", self._on_chain_target, qos.IK_TARGETS)
        self.create_timer(1.0, self._publish_diagnostics)
        self.demo_index = 0
        if len(self.demo):
            self.create_timer(self.demo_period_s, self._next_demo)

    def _on_state(self, msg: JointState) -> None:
        status = self.mapper.update(msg.name, msg.position, msg.velocity)
        if status != OK:
            self.counters["rejected_states"] += 1
            self.get_logger().warning(f"joint state rejected ({status}); keeping the last valid one",
                                      throttle_duration_sec=LOG_THROTTLE_S)
            return
        self.have_state = True

    def _on_target(self, msg: PoseStamped) -> None:
        from dynlearn_ros.learning.ik.planner import Refused

        p, o = msg.pose.position, msg.pose.orientation
        self._handle(lambda: self._check_frame(msg.header.frame_id) or self.planner.ee_problem(
            (p.x, p.y, p.z), (o.x, o.y, o.z, o.w), self.ee_mask), "pose target", Refused)

    def _on_chain_target(self, msg: Float64MultiArray) -> None:
        from dynlearn_ros.learning.ik.planner import Refused

        self._handle(lambda: self.planner.chain_problem(np.asarray(msg.data, dtype=float).reshape(-1, 9)
                                                        if len(msg.data) % 9 == 0 else np.asarray(msg.data)),
                     "chain target", Refused)

    def _check_frame(self, frame_id: str) -> None:
        from dynlearn_ros.learning.ik.planner import Refused

        if frame_id and frame_id != self.base_frame:
            raise Refused(f"frame_id '{frame_id}' is not the base frame '{self.base_frame}' (no tf here)")

    def _handle(self, build, what: str, refused_type) -> None:
        """Build the problem, solve it and publish; refusals are logged and counted."""
        self.counters["targets"] += 1
        t0 = time.perf_counter()
        try:
            problem = build()
            plan = self.planner.solve(problem, self.mapper.q.copy() if self.have_state else None)
        except refused_type as exc:
            self.counters["refused"] += 1
            self.last_reason = str(exc)
            self.get_logger().warning(f"{what} refused: {exc}; keeping the last reference")
            return
        except Exception as exc:  # noqa: BLE001 - a solver bug must not take the node down
            self.counters["errors"] += 1
            self.last_reason = f"internal error: {type(exc).__name__}: {exc}"
            self.get_logger().error(f"{what} failed ({self.last_reason}); keeping the last reference")
            return
        ms = 1e3 * (time.perf_counter() - t0)
        self.solve_ms.append(ms)
        self.counters["solved"] += 1
        self.last_q = plan.q.tolist()
        self._publish_trajectory(plan.q)
        r = plan.result
        self.get_logger().info(f"{what} solved in {ms:.0f} ms from {plan.start} ({r.iterations} iterations, "
                               f"{r.corrections} corrections): {1e3 * r.pos_err_m:.2f} mm, {r.rot_err_deg:.2f} deg")

    def _publish_trajectory(self, q: np.ndarray) -> None:
        msg = JointTrajectory()
        msg.joint_names = list(self.joint_names)
        pt = JointTrajectoryPoint()
        pt.positions = [float(v) for v in q]
        pt.velocities = [0.0] * len(q)
        sec = int(self.move_s)
        pt.time_from_start = Duration(sec=sec, nanosec=int(round((self.move_s - sec) * 1e9)))
        msg.points = [pt]
        self.traj_pub.publish(msg)

    def _next_demo(self) -> None:
        if not self.have_state:
            return
        row = self.demo[self.demo_index % len(self.demo)]
        self.demo_index += 1
        self.counters["demo_sent"] += 1
        from dynlearn_ros.learning.ik.planner import Refused

        self._handle(lambda: self.planner.ee_problem(row[:3], row[3:], self.ee_mask), "demo target", Refused)

    def _publish_diagnostics(self) -> None:
        level = DiagnosticStatus.WARN if self.counters["refused"] else DiagnosticStatus.OK
        status = DiagnosticStatus(level=level, name=f"{self.get_name()}: inverse kinematics",
                                  message=self.last_reason or "ok", hardware_id=self.get_namespace())
        status.values = [KeyValue(key=k, value=str(v)) for k, v in self.counters.items()]
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [status]
        try:
            self.diag_pub.publish(msg)
        except Exception as exc:  # noqa: BLE001 - the context may be shutting down
            self.get_logger().warning(f"/diagnostics not published: {exc}", throttle_duration_sec=LOG_THROTTLE_S)

    def summary(self) -> dict:
        ms = np.asarray(self.solve_ms)
        return {"node": self.get_fully_qualified_name(), "counters": dict(self.counters),
                "last_refusal": self.last_reason, "last_solution_rad": self.last_q,
                "solve_ms": {"p50": float(np.median(ms)) if ms.size else None,
                             "max": float(ms.max()) if ms.size else None, "n": int(ms.size)}}

    def write_summary(self) -> None:
        if self.summary_path:
            write_json_atomic(self.summary_path, self.summary())


def main(args: list[str] | None = None) -> int:
    """Entry point (``ik`` console script, ``python -m``): exit 0 after SIGINT / SIGTERM, 2 with
    one line when the configuration is refused (a bad value, a missing or mismatched model)."""
    return run_node(IKNode, args, name="ik")


if __name__ == "__main__":
    raise SystemExit(main())
