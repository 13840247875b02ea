"""computed_torque: learned feed-forward + variance-scheduled PD, for a 7-DoF arm.

Subscribes ``joint_states`` (sensor_msgs/JointState) and ``reference_trajectory``
(trajectory_msgs/JointTrajectory); publishes ``effort_controller/commands``
(std_msgs/Float64MultiArray, URDF joint order), ``~/status`` (std_msgs/Float64MultiArray, see
STATUS_FIELDS) and ``/diagnostics``. The control law and safety modes live in
:mod:`dynlearn_ros.core.control`; this node holds ROS handles and one controller object.
Each valid joint state triggers one tick; a watchdog timer sends the hold command when states
stop arriving.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.exceptions import ParameterException
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, MultiArrayDimension
from trajectory_msgs.msg import JointTrajectory

from dynlearn_ros.core.analytic import AnalyticInverseModel
from dynlearn_ros.core.control import ComputedTorqueController, Mode
from dynlearn_ros.core.inverse_model import InverseModel
from dynlearn_ros.core.robots import ROBOTS, robot_spec
from dynlearn_ros.core.safety import OK, JointStateMapper
from dynlearn_ros.core.schedule import GainSchedule
from dynlearn_ros.core.trajectories import (
    HoldReference,
    Reference,
    SineReference,
    SplineReference,
    WaypointReference,
    pick_place_waypoints,
)
from dynlearn_ros.nodes.computed_torque_params import declare_gain_parameters
from dynlearn_ros.nodes.params import (
    ParameterError,
    declare,
    make_executor,
    per_joint,
    spin_until_shutdown,
    write_json_atomic,
)
from dynlearn_ros.runtime.registry import ALL_KINDS, ModelLoadError, UnavailableModel, load_inverse_model

STATUS_FIELDS = ("q_des", "q", "error", "kp", "kd", "std", "tau_ff", "tau_cmd")
STATUS_TAIL = ("mode", "tick_us", "t_ref")
REFERENCES = ("sine", "pick_place", "hold")
LOG_THROTTLE_S = 2.0
RCLError = _rclpy.RCLError


class ComputedTorqueNode(Node):
    def __init__(self) -> None:
        super().__init__("computed_torque")
        self.fq_name = self.get_fully_qualified_name()
        self._configure()
        self._build_io()

    # -- configuration ------------------------------------------------------------------------
    def _configure(self) -> None:
        robot = declare(self, "robot", "iiwa", "robot whose URDF gives the analytic model and defaults",
                        choices=ROBOTS)
        spec = robot_spec(robot)
        n = spec.n
        urdf = declare(self, "urdf_path", "", "URDF for the analytic model; empty: the packaged one "
                       "for 'robot' (pybullet_data)") or str(spec.urdf_path)
        self.urdf_joints = spec.joint_names
        names = list(declare(self, "joint_names", list(spec.joint_names),
                             "joint names as they appear in joint_states, in URDF order (a real "
                             "driver's names, e.g. fr3_joint1..7 or lbr_A1..A7)"))
        if len(names) != n or len(set(names)) != n:
            raise ParameterError(f"parameter 'joint_names': need {n} unique names, got {names}")
        self.joint_names = names
        self.dt = declare(self, "control_period_s", 0.001, "nominal control period (s): the "
                          "reference is also sampled dt ahead for the inverse model", lo=1e-4, hi=0.1)
        self.stale_timeout_s = 1e-3 * declare(
            self, "stale_timeout_ms", 50.0, "a joint state older than this (ms, wall clock) is "
            "stale: the controller sends the gravity hold instead", lo=1.0, hi=10000.0)
        settle_s = declare(self, "settle_s", 0.0, "seconds after start excluded from the "
                           "tracking statistics in the summary", lo=0.0, hi=3600.0)

        self.analytic = AnalyticInverseModel(urdf, spec.joint_names, std=0.0)
        inertia = np.clip(np.diag(self.analytic.rbd.mass_matrix(spec.home)), 1e-4, None)
        analytic_std = per_joint("analytic_std", declare(
            self, "analytic_std", [10.0], "predictive std the analytic model reports (N*m); it "
            "sets the analytic model's gains through the schedule"), n)
        self.analytic.std[:] = analytic_std

        g = declare_gain_parameters(self, inertia, n)
        k_min, k_max, zeta, sigma_n, sigma_f, c = g.k_min, g.k_max, g.zeta, g.sigma_n, g.sigma_f, g.c
        max_err, sigma_release_s, gain_mode, use_model_bounds = (
            g.max_tracking_error, g.sigma_release_s, g.gain_mode, g.use_model_sigma_bounds)
        tau_max = per_joint("torque_limits", declare(self, "torque_limits", spec.effort_limits.tolist(),
                            "symmetric torque limits (N*m); default: the URDF effort limits"), n)

        kind = declare(self, "model_kind", "analytic", "feed-forward model", choices=ALL_KINDS)
        model_dir = declare(self, "model_dir", "", "learned model directory (model.onnx + "
                            "metadata.json); relative paths are under the package's models/")
        self.model_load_error = ""
        model: InverseModel = self.analytic
        if kind != "analytic":
            model = self._load_model(kind, model_dir)
            bounds = model.noise_and_signal_std()
            if use_model_bounds and bounds is not None:
                sigma_n, sigma_f = (np.asarray(b, dtype=np.float64).reshape(n) for b in bounds)
        try:
            schedule = GainSchedule(k_min=k_min, k_max=k_max, sigma_n=sigma_n, sigma_f=sigma_f, c=c,
                                    zeta=zeta, fixed=gain_mode == "fixed")
        except ValueError as exc:
            raise ParameterError(str(exc)) from exc

        self.reference_type = declare(self, "reference", "sine", "built-in reference (a message on "
                                      "reference_trajectory replaces it)", choices=REFERENCES)
        self.sine_amplitude = per_joint("sine_amplitude", declare(
            self, "sine_amplitude", [0.25], "sine amplitude per joint (rad)"), n)
        self.sine_freq = per_joint("sine_freq_hz", declare(
            self, "sine_freq_hz", np.linspace(0.25, 0.55, n).tolist(), "sine frequency per joint (Hz)"), n)
        self.ramp_s = declare(self, "ramp_s", 1.0, "sine amplitude fade-in (s)", lo=0.0, hi=60.0)
        waypoints = np.asarray(declare(self, "waypoints", pick_place_waypoints(spec.home, spec.lower, spec.upper).ravel().tolist(),
                                       "pick-and-place waypoints, row-major (rows of one value per "
                                       "joint, rad); visited from the start pose and looped"), float)
        if waypoints.size == 0 or waypoints.size % n or not np.all(np.isfinite(waypoints)):
            raise ParameterError(f"parameter 'waypoints': need a non-empty multiple of {n} finite values")
        self.waypoints = waypoints.reshape(-1, n)
        self.move_s = declare(self, "move_s", 2.0, "duration of one waypoint move (s)", lo=0.05, hi=600.0)
        self.dwell_s = declare(self, "dwell_s", 0.5, "rest at each waypoint (s)", lo=0.0, hi=600.0)

        self.status_decimation = declare(self, "status_decimation", 10, "publish ~/status every N "
                                         "ticks (0: never)", lo=0, hi=100000)
        self.summary_path = declare(self, "summary_path", "", "write a JSON summary here at exit")
        self.use_arrival_time = declare(
            self, "time_source", "stamp", "time base of the reference: the joint state's header "
            "stamp (sim time from the bridge, or a driver's clock) or its arrival time (for "
            "drivers that do not stamp)", choices=("stamp", "arrival")) == "arrival"
        self.state_qos = declare(self, "state_qos", "reliable", "QoS of the joint_states "
                                 "subscription", choices=("reliable", "sensor_data"))
        self.ctl = ComputedTorqueController(self.analytic, model, schedule, None, tau_max, dt=self.dt,
                                            stale_timeout_s=self.stale_timeout_s, settle_s=settle_s,
                                            sigma_release_s=sigma_release_s, max_error=max_err)
        self.mapper = JointStateMapper(self.joint_names)
        self.get_logger().info(
            f"robot={robot} model_kind={kind} gain_mode={gain_mode} reference={self.reference_type} "
            f"k_min={np.round(k_min, 3).tolist()} k_max={np.round(k_max, 3).tolist()} "
            f"sigma=[{np.round(sigma_n, 3).tolist()}, {np.round(sigma_f, 3).tolist()}]")

    def _load_model(self, kind: str, model_dir: str) -> InverseModel:
        from dynlearn_ros.paths import models_dir

        path = Path(model_dir) if model_dir else Path()
        if model_dir and not path.is_absolute():
            path = models_dir() / path
        try:
            if not model_dir:
                raise ModelLoadError(f"model_kind '{kind}' needs the model_dir parameter")
            model = load_inverse_model(kind, path, self.urdf_joints)
            self.get_logger().info(f"loaded {kind} model from {path}")
            return model
        except ModelLoadError as exc:
            self.model_load_error = str(exc)
            self.get_logger().error(f"no usable {kind} model ({exc}); running the analytic "
                                    "feed-forward with maximal gains until a valid model arrives")
            return UnavailableModel(self.urdf_joints)

    # -- ROS I/O --------------------------------------------------------------------------------
    def _build_io(self) -> None:
        n = self.ctl.n
        reliable1 = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
        state_qos = qos_profile_sensor_data if self.state_qos == "sensor_data" else reliable1
        self.cmd_pub = self.create_publisher(Float64MultiArray, "effort_controller/commands", reliable1)
        best_effort = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
        self.status_pub = self.create_publisher(Float64MultiArray, "~/status", best_effort)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(JointState, "joint_states", self._on_state, state_qos)
        self.create_subscription(JointTrajectory, "reference_trajectory", self._on_trajectory, reliable1)
        self.create_timer(self.stale_timeout_s / 2.0, self._watchdog)
        self.create_timer(1.0, self._publish_diagnostics)

        self.cmd_msg = Float64MultiArray()
        self.cmd_msg.layout.dim = [MultiArrayDimension(label="joint", size=n, stride=n)]
        self.cmd_msg.data = [0.0] * n
        self.status_msg = Float64MultiArray()
        self.status_msg.layout.dim = [
            MultiArrayDimension(label="field:" + ",".join(STATUS_FIELDS), size=len(STATUS_FIELDS),
                                stride=len(STATUS_FIELDS) * n),
            MultiArrayDimension(label="joint", size=n, stride=n),
        ]
        self.status_buf = np.zeros(len(STATUS_FIELDS) * n + len(STATUS_TAIL))
        self.tick_ns = np.zeros(1 << 18, dtype=np.int64)  # ring buffer of tick durations
        self.n_ticks = 0
        self.publish_errors = 0
        self.start_wall = time.monotonic()

    def _count_reject(self, reason: str) -> None:
        rej = self.ctl.counters.rejected
        rej[reason] = rej.get(reason, 0) + 1
        self.get_logger().warning(f"joint state rejected ({reason}); {rej[reason]} so far; keeping the "
                                  "last valid state", throttle_duration_sec=LOG_THROTTLE_S)

    def _on_state(self, msg: JointState) -> None:
        t_start = time.perf_counter_ns()
        status = self.mapper.update(msg.name, msg.position, msg.velocity)
        if status != OK:
            self._count_reject(status)
            return
        stamp = msg.header.stamp
        t_state = stamp.sec + 1e-9 * stamp.nanosec
        wall = time.monotonic()
        if self.use_arrival_time:
            t_state = wall
        if self.ctl.reference is None:
            self.ctl.reference = self._builtin_reference(self.mapper.q)
        mode = self.ctl.step(self.mapper.q, self.mapper.qd, t_state, wall)
        if mode is Mode.MODEL_FALLBACK:
            self.get_logger().warning(
                f"model prediction unusable: analytic feed-forward with maximal gains "
                f"({self.ctl.counters.model_fallback} ticks){'; ' + self.model_load_error if self.model_load_error else ''}",
                throttle_duration_sec=LOG_THROTTLE_S)
        elif mode is Mode.FAULT:
            self.get_logger().error(
                f"tracking error beyond max_tracking_error: holding at {np.round(self.ctl.q_fault, 3).tolist()} "
                "with the analytic model and K_max until a new reference_trajectory arrives "
                f"({self.ctl.counters.tracking_fault} faults)", throttle_duration_sec=LOG_THROTTLE_S)
        elif mode is Mode.HOLD:
            self.get_logger().error("non-finite torque computed: gravity hold sent "
                                    f"({self.ctl.counters.nonfinite_torque} times)",
                                    throttle_duration_sec=LOG_THROTTLE_S)
        self._publish_command()
        dt_ns = time.perf_counter_ns() - t_start
        self.tick_ns[self.n_ticks % self.tick_ns.size] = dt_ns
        self.n_ticks += 1
        if self.status_decimation and self.n_ticks % self.status_decimation == 0:
            self._publish_status(dt_ns)

    def _builtin_reference(self, q0: np.ndarray) -> Reference:
        if self.reference_type == "sine":
            return SineReference(q0, self.sine_amplitude, self.sine_freq, ramp_s=self.ramp_s)
        if self.reference_type == "pick_place":
            return WaypointReference(np.vstack([q0, self.waypoints]), self.move_s, self.dwell_s, loop=True)
        return HoldReference(q0)

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        """Replace the reference: the current desired state at t=0, then the message's points."""
        try:
            if not msg.points:
                raise ValueError("no points")
            order = [list(msg.joint_names).index(j) for j in self.joint_names]
            q_now, qd_now, qdd_now = (np.zeros(self.ctl.n) for _ in range(3))
            if self.ctl.reference is None or self.ctl.t0 is None:
                raise ValueError("no joint state received yet")
            self.ctl.desired_now(q_now, qd_now, qdd_now)   # the hold position after a fault
            times = [0.0] + [p.time_from_start.sec + 1e-9 * p.time_from_start.nanosec for p in msg.points]
            pos = [q_now] + [np.asarray(p.positions, dtype=float)[order] for p in msg.points]
            have_vel = all(len(p.velocities) == len(msg.joint_names) for p in msg.points)
            vel = [qd_now] + [np.asarray(p.velocities, dtype=float)[order] for p in msg.points] if have_vel else None
            ref = SplineReference(times, np.array(pos), None if vel is None else np.array(vel))
        except (ValueError, IndexError) as exc:
            self.ctl.counters.rejected["trajectory"] = self.ctl.counters.rejected.get("trajectory", 0) + 1
            self.get_logger().warning(f"reference trajectory rejected: {exc}; keeping the current "
                                      "reference", throttle_duration_sec=LOG_THROTTLE_S)
            return
        cleared = self.ctl.faulted
        self.ctl.set_reference(ref, t_start=self.ctl.t0 + self.ctl.t_ref)
        self.get_logger().info(f"new reference trajectory: {len(msg.points)} points over {ref.duration:.2f} s"
                               + ("; following-error fault cleared" if cleared else ""))

    def _watchdog(self) -> None:
        if self.ctl.is_stale(time.monotonic()):
            self.ctl.stale_hold()
            self.get_logger().warning(
                f"joint states stale (> {self.stale_timeout_s * 1e3:.0f} ms): gravity hold at the last "
                f"valid position ({self.ctl.counters.stale_hold} times)", throttle_duration_sec=LOG_THROTTLE_S)
            self._publish_command()

    def _publish(self, pub, msg) -> None:
        try:
            pub.publish(msg)
        except RCLError as exc:  # the context is shutting down (SIGINT during a tick)
            self.publish_errors += 1
            self.get_logger().warning(f"{pub.topic_name}: not published: {exc}",
                                      throttle_duration_sec=LOG_THROTTLE_S)

    def _publish_command(self) -> None:
        self.cmd_msg.data = self.ctl.tau.tolist()
        self._publish(self.cmd_pub, self.cmd_msg)

    def _publish_status(self, tick_ns: int) -> None:
        c, n, b = self.ctl, self.ctl.n, self.status_buf
        for i, arr in enumerate((c.query.q_des, c.query.q, c.err, c.kp, c.kd, c.std, c.tau_ff, c.tau)):
            b[i * n:(i + 1) * n] = arr
        b[-3:] = (float(c.mode), tick_ns * 1e-3, c.t_ref)
        self.status_msg.data = b.tolist()
        self._publish(self.status_pub, self.status_msg)

    def _publish_diagnostics(self) -> None:
        counters = self.ctl.counters.as_dict()
        level = DiagnosticStatus.OK
        if self.ctl.mode is not Mode.NORMAL or self.model_load_error:
            level = DiagnosticStatus.WARN
        if self.ctl.mode is Mode.FAULT:
            level = DiagnosticStatus.ERROR
        status = DiagnosticStatus(level=level, name=f"{self.get_name()}: computed torque",
                                  message=f"mode={self.ctl.mode.name}", hardware_id=self.get_namespace())
        status.values = [KeyValue(key=k, value=str(v)) for k, v in counters.items()]
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [status]
        self._publish(self.diag_pub, msg)

    # -- summary --------------------------------------------------------------------------------
    def summary(self) -> dict:
        ticks = self.tick_ns[: min(self.n_ticks, self.tick_ns.size)] * 1e-3
        out = {
            "node": self.fq_name,
            "joint_names": self.joint_names,
            "model_kind": self.ctl.model.kind,
            "model_load_error": self.model_load_error,
            "publish_errors": self.publish_errors,
            "sim_time_s": self.ctl.t_ref,
            "wall_time_s": time.monotonic() - self.start_wall,
            **self.ctl.summary(),
            "controller_tick_us": {"p50": float(np.percentile(ticks, 50)) if ticks.size else None,
                                   "p99": float(np.percentile(ticks, 99)) if ticks.size else None,
                                   "n": int(ticks.size)},
        }
        return out

    def write_summary(self) -> None:
        if self.summary_path:
            write_json_atomic(self.summary_path, self.summary())


def main(args=None) -> int:
    with rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO):
        try:
            node = ComputedTorqueNode()
        except (ParameterError, ParameterException, ValueError, FileNotFoundError) as exc:
            rclpy.logging.get_logger("computed_torque").fatal(f"start-up failed: {type(exc).__name__}: {exc}")
            return 2
        except KeyboardInterrupt:  # Ctrl-C during start-up
            return 0
        try:
            executor = make_executor()
            executor.add_node(node)
            spin_until_shutdown(executor)
        finally:
            node.write_summary()  # plain data only: valid even after the context shut down
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
