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

import time
from pathlib import Path

import numpy as np
import rclpy
from builtin_interfaces.msg import Duration
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from dynlearn_ros.core.robots import ROBOTS
from dynlearn_ros.core.safety import OK, JointStateMapper
from dynlearn_ros.nodes.params import (
    ParameterError,
    declare,
    make_executor,
    spin_until_shutdown,
    write_json_atomic,
)

SOLVERS = ("learned", "dls")
LOG_THROTTLE_S = 2.0
POSE_FIELDS = 7  # demo_targets rows: x y z qx qy qz qw


class IKNode(Node):
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
        robot = declare(self, "robot", "iiwa", "robot whose kinematic chain is solved", choices=ROBOTS,
                        read_only=True)
        c = chain(robot)
        names = list(declare(self, "joint_names", list(c.joint_names), "joint names as they appear "
                             "in joint_states and in the published trajectory, in URDF order", read_only=True))
        if len(names) != c.n or len(set(names)) != c.n:
            raise ParameterError(f"parameter 'joint_names': need {c.n} unique names, got {names}")
        self.joint_names = names
        solver_kind = declare(self, "solver", "learned", "learned: gradient descent through the "
                              "pose-chain LSTM; dls: Pinocchio Jacobian, damped least squares",
                              choices=SOLVERS, read_only=True)
        model_dir = declare(self, "model_dir", f"ik_{robot}", "learned IK model directory "
                            "(relative: under the package's models/)", read_only=True)
        rounds = declare(self, "correction_rounds", 5, "target-correction rounds with Pinocchio FK "
                         "(0: off)", lo=0, hi=50, read_only=True)
        max_iter = declare(self, "max_iterations", 300, "gradient / DLS iterations per solve", lo=1,
                           hi=100000, read_only=True)
        pos_tol = declare(self, "pos_tol_m", 0.005, "position tolerance (m) on constrained "
                          "components", lo=1e-5, hi=1.0, read_only=True)
        rot_tol = declare(self, "rot_tol_deg", 2.0, "orientation tolerance (deg)", lo=0.01, hi=180.0,
                          read_only=True)
        self.move_s = declare(self, "move_s", 3.0, "duration of the move to a solved configuration (s)",
                              lo=0.1, hi=600.0)
        self.ee_mask = self._mask(declare(self, "ee_mask", [1.0] * 9, "which end-effector components "
                                          "an ik/target constrains, 9 values 0/1: px py pz | x axis "
                                          "(3) | z axis (3)"))
        self.base_frame = declare(self, "base_frame", c.base_frame, "frame_id ik/target must use "
                                  "(empty frame_id is taken as this frame)", read_only=True)
        demo = np.asarray(declare(self, "demo_targets", [0.0], "optional demo: end-effector "
                                  "poses, rows of x y z qx qy qz qw (m, quaternion), cycled every "
                                  "demo_period_s once joint states arrive; [0.0]: none",
                                  read_only=True), dtype=float)
        if demo.size > 1 and (demo.size % POSE_FIELDS or not np.all(np.isfinite(demo))):
            raise ParameterError(f"parameter 'demo_targets': need finite rows of {POSE_FIELDS} values")
        self.demo = demo.reshape(-1, POSE_FIELDS) if demo.size > 1 else np.zeros((0, POSE_FIELDS))
        self.demo_period_s = declare(self, "demo_period_s", 5.0, "seconds between demo targets",
                                     lo=0.5, hi=3600.0, read_only=True)
        self.summary_path = declare(self, "summary_path", "", "write a JSON summary here at exit",
                                    read_only=True)

        if solver_kind == "learned":
            path = Path(model_dir)
            if not path.is_absolute():
                path = models_dir() / path
            try:
                model, _, _ = load(path, expect_chain=robot)
            except IKModelError as exc:
                raise ParameterError(f"parameter 'model_dir': {exc}") from exc
            solver = LearnedIK(model, c, max_iter=max_iter, corrections=rounds)
        else:
            solver = DLSIK(c, max_iter=max_iter)
        self.chain = c
        self.planner = IKPlanner(c, solver, pos_tol, rot_tol)
        self.mapper = JointStateMapper(self.joint_names)
        self.have_state = False
        self.counters = {"targets": 0, "solved": 0, "refused": 0, "rejected_states": 0, "demo_sent": 0,
                         "errors": 0}
        self.last_reason = ""
        self.solve_ms: list[float] = []
        self.last_q: list[float] | None = None
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.get_logger().info(f"robot={robot} solver={solver_kind} model_dir={model_dir if solver_kind == 'learned' else '-'} "
                               f"correction_rounds={rounds} tolerance={pos_tol * 1e3:.1f} mm / {rot_tol:.2f} deg "
                               f"demo_targets={len(self.demo)}")

    @staticmethod
    def _mask(values) -> np.ndarray:
        m = np.asarray(list(values), dtype=np.float64)
        if m.shape != (9,) or not np.all(np.isin(m, (0.0, 1.0))) or not m.any():
            raise ParameterError(f"parameter 'ee_mask': need 9 values, each 0 or 1, not all 0; got {m.tolist()}")
        return m

    def _on_set_parameters(self, params) -> SetParametersResult:
        """Runtime changes: ee_mask and move_s, validated; everything else is read-only."""
        staged = {}
        for p in params:
            try:
                if p.name == "ee_mask":
                    staged["ee_mask"] = self._mask(p.value)
                elif p.name == "move_s":
                    v = float(p.value)
                    if not 0.1 <= v <= 600.0:
                        raise ParameterError(f"move_s must be in [0.1, 600] s, got {v}")
                    staged["move_s"] = v
            except (ParameterError, TypeError, ValueError) as exc:
                return SetParametersResult(successful=False, reason=str(exc))
        for k, v in staged.items():
            setattr(self, k, v)
        return SetParametersResult(successful=True)

    # -- ROS I/O --------------------------------------------------------------------------------
    def _build_io(self) -> None:
        reliable1 = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
        self.traj_pub = self.create_publisher(JointTrajectory, "reference_trajectory", reliable1)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(JointState, "joint_states", self._on_state, reliable1)
        self.create_subscription(PoseStamped, "ik/target", self._on_target, 10)
        self.create_subscription(Float64MultiArray, "ik/chain_target", self._on_chain_target, 10)
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


def main(args=None) -> int:
    with rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO):
        try:
            node = IKNode()
        except (ParameterError, ParameterException, ValueError, FileNotFoundError) as exc:
            rclpy.logging.get_logger("ik").fatal(f"start-up failed: {type(exc).__name__}: {exc}")
            return 2
        except KeyboardInterrupt:
            return 0
        try:
            executor = make_executor()
            executor.add_node(node)
            spin_until_shutdown(executor)
        finally:
            node.write_summary()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
