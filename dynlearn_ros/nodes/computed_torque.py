"""computed_torque: learned feed-forward + variance-scheduled PD, for a 7-DoF arm.

Subscribes ``joint_states`` (sensor_msgs/JointState), ``reference_trajectory``
(trajectory_msgs/JointTrajectory) and ``model_updates`` (std_msgs/String: a model directory to
load and swap in; reliable, transient-local, depth 1); publishes ``effort_controller/commands``
(std_msgs/Float64MultiArray, URDF joint order), ``~/status`` (std_msgs/Float64MultiArray, layout
in :mod:`dynlearn_ros.core.status`) and ``/diagnostics``. The control law and safety modes live
in :mod:`dynlearn_ros.core.control`, the parameters in :data:`dynlearn_ros.core.config.COMPUTED_TORQUE_SPEC`,
the model hot swap in :class:`dynlearn_ros.runtime.slot.ModelSlot`; this node holds ROS handles
and those objects. Each valid joint state triggers one tick; a watchdog timer sends the hold
command when states stop arriving.

Run-time parameters: every parameter is either settable (validated as a whole set through the
spec, built off the tick and handed to the next tick as one reference, logged old -> new) or
refused with the reason a restart is needed. ``model_kind`` / ``model_dir``: a set is checked
at once (kind, directory with model.onnx and metadata.json) and accepted; the model then loads
and is checked in the slot's worker thread; if it fails, the running model stays, the failure is
logged and the two parameters are set back to the running model's.
"""

from __future__ import annotations

if __name__ == "__main__":  # a signal during the imports below must end the process cleanly too
    from dynlearn_ros.nodes.runner import catch_signals_early

    catch_signals_early()

import array  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue  # noqa: E402
from rclpy.clock import Clock, ClockType  # noqa: E402
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray, MultiArrayDimension, String  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from dynlearn_ros.core.assembly import build_analytic, build_controller, build_tuning, builtin_reference  # noqa: E402
from dynlearn_ros.core.config import (  # noqa: E402
    COMPUTED_TORQUE_SPEC,
    ConfigError,
    robot_context,
    validate,
)
from dynlearn_ros.core.control import Mode  # noqa: E402
from dynlearn_ros.core.inverse_model import InverseModel  # noqa: E402
from dynlearn_ros.core.joint_state_cdr import JointStateCdr  # noqa: E402
from dynlearn_ros.core.robots import robot_spec  # noqa: E402
from dynlearn_ros.core.safety import (  # noqa: E402
    JUMP,
    OK,
    OUT_OF_RANGE,
    SECOND_SOURCE,
    STAMP_REPEATED,
    TOO_FAST,
    AppliedCommandMatch,
    JointStateMapper,
    LatenessScale,
    SourceLock,
    StateGate,
    held_delay,
    unfollowed_time,
)
from dynlearn_ros.core.status import STATUS_FIELDS, fill_status, status_label, status_width  # noqa: E402
from dynlearn_ros.core.trajectories import PrefixedSpline, fit_to_limits  # noqa: E402
from dynlearn_ros.nodes import qos  # noqa: E402
from dynlearn_ros.nodes.params import (  # noqa: E402
    declare_spec,
    on_set_parameters,
    publisher_nodes,
    single_threaded_executor,
    write_summary_or_exit,
)
from dynlearn_ros.nodes.runner import run_node  # noqa: E402
from dynlearn_ros.nodes.trajectory_intake import TrajectoryIntake  # noqa: E402
from dynlearn_ros.paths import resolve_model_dir  # noqa: E402
from dynlearn_ros.runtime.loader import ProcessLoader  # noqa: E402
from dynlearn_ros.runtime.memory import heap_stats  # noqa: E402
from dynlearn_ros.runtime.registry import ModelLoadError, UnavailableModel, load_inverse_model  # noqa: E402
from dynlearn_ros.runtime.slot import (  # noqa: E402
    CONTROL_SWITCH_INTERVAL_S,
    PLANT_FIT_FACTOR,
    PLANT_FIT_ROWS,
    ModelSlot,
    check_model,
    check_plant_fit,
)

LOG_THROTTLE_S = 2.0
SLOT_POLL_S = 0.02   # how often finished model loads are logged and the parameters synced
#: at shutdown, how long a running model load is waited for: a load takes 0.2-1 s here (SVDKL,
#: ac-RKN; longer under load); the whole shutdown must stay well inside ros2 launch's 5 s
#: before its SIGTERM and NodeProcess.stop's 10 s before its SIGKILL
SLOT_JOIN_S = 2.0
RCLError = _rclpy.RCLError
#: the tick's stages (controller_stage_us in the summary): the state's decoding (and the source
#: lock), the mapper, gate and late-law bookkeeping, the control law (ctl.step), the logs and
#: slot bookkeeping up to the command's publish (timed apart: controller_publish_us)
STAGES = ("decode", "checks", "step", "after_step")
#: a joint state neither the numpy decoder nor rclpy could read (counted like the mapper's reasons)
UNDECODABLE = "undecodable"
ROS_OWN_PARAMS = ("use_sim_time", "start_type_description_service")
REPEAT_ANSWER_S = 0.05   # a re-sent state (same stamp) is answered with the last command at most this often
GRAPH_CHECK_S = 0.25     # how often the publishers on joint_states are counted
TRAJECTORY_POLL_S = 0.01  # how often parsed trajectories are looked for (swapped in between ticks)
#: gate rejections that mean "the arm is moving where it should not": while the last states were
#: rejected for one of these, a stale state gets no hold command (ComputedTorqueController.withhold_hold)
MOTION_REJECTS = frozenset((OUT_OF_RANGE, TOO_FAST, JUMP))


class ComputedTorqueNode(Node):
    #: False: joint states are ignored (nothing ticks, nothing is commanded); the managed
    #: variant (computed_torque_managed) opens it at its first activation
    ticking = True
    #: appended to the /diagnostics message (the managed variant: its lifecycle state)
    state_note = ""
    #: set by destroy_node when a model load outlived the shutdown: run_node then ends the
    #: process with os._exit after its cleanup (nodes/runner.py)
    exit_without_finalization = False

    def __init__(self) -> None:
        super().__init__("computed_torque")
        self.fq_name = self.get_fully_qualified_name()
        self._configure()
        self._build_io()
        # everything built so far lives as long as the node: move it out of the cyclic
        # collector's generations, so a full collection (triggered by the tick's few small
        # allocations, every few seconds) scans only what was made since - a pause of ~10 us
        # instead of several ms with onnxruntime, pinocchio and rclpy loaded (the tick's p99)
        gc.collect()
        gc.freeze()

    # -- configuration ------------------------------------------------------------------------
    def _configure(self) -> None:
        # robot and urdf_path first (the table lists them first): the other defaults depend on them
        first, rest = COMPUTED_TORQUE_SPEC[:2], COMPUTED_TORQUE_SPEC[2:]
        values = declare_spec(self, first, None)
        self.ctx = robot_context(values["robot"], values["urdf_path"])
        values.update(declare_spec(self, rest, self.ctx))
        self.config = config = validate(values, self.ctx)
        spec = robot_spec(config.robot)
        self.urdf_joints = spec.joint_names
        self.joint_names = list(config.joint_names)
        self.analytic = build_analytic(config)
        self.model_load_error = ""
        self.loader = self._start_loader(config)
        model: InverseModel = self.analytic
        if config.model_kind != "analytic":
            model = self._load_initial_model(config.model_kind, config.model_dir)
        self.ctl = build_controller(config, model, self.analytic)

        def check(m: InverseModel) -> None:
            # the analytic model is the live fallback the tick uses: trusted, never run here
            if m is not self.analytic:
                check_model(m, self.urdf_joints, spec.home, config.control_period_s)
                # a hand-over the loader process already put through the plant check (on the
                # recent steps the request carried): not run again here, in the worker
                if self.loader is None or not self.loader.plant_checked(m):
                    self._check_plant_fit(m)

        # deferred: the swap's release and warm-up run after a tick's command (slot.after_tick)
        self.slot = ModelSlot(model, config.model_kind, config.model_dir, self._load_model, check,
                              prepare=lambda m: build_tuning(self.config, m), deferred=True,
                              on_close=None if self.loader is None else self.loader.close,
                              trim_before_load=self._trim_due)
        # the tick takes the interpreter's lock back from the slot's loading worker within this
        sys.setswitchinterval(CONTROL_SWITCH_INTERVAL_S)
        self._syncing = False
        self.mapper = JointStateMapper(self.joint_names)
        self._build_gates(spec, config)
        on_set_parameters(self, COMPUTED_TORQUE_SPEC, self._apply_parameters)
        self.get_logger().info(
            f"robot={config.robot} model_kind={config.model_kind} gain_mode={config.gain_mode} "
            f"reference={config.reference} k_min={np.round(config.k_min, 3).tolist()} "
            f"k_max={np.round(config.k_max, 3).tolist()} sigma=[{np.round(self.ctl.schedule.sigma_n, 3).tolist()}, "
            f"{np.round(self.ctl.schedule.sigma_f, 3).tolist()}]")

    def _build_gates(self, spec, config) -> None:
        """Plausibility / ordering gate, single-source lock, reference limits (docs/safety.md)."""
        self.gate = StateGate(spec.lower, spec.upper, spec.velocity_limits, 0.5 * config.control_period_s)
        self.source = SourceLock(silence_s=config.stale_timeout_s)
        self._source_names = "?"   # the publishers of joint_states while two or more are seen (for logs)
        self.ctl.set_position_limits(spec.lower, spec.upper)
        self.ctl.set_chatter_guard(spec.velocity_limits)   # K_D lowered while late commands make the arm chatter
        self.intake = TrajectoryIntake(self.joint_names, spec.lower, spec.upper)
        self.intake.start()
        self.limits = (spec.lower, spec.upper)
        self._last_cmd_wall = -np.inf
        self._reject_logged: dict[str, float] = {}
        self._log_next: dict[str, float] = {}   # _log_due: when each throttled log line may be logged again
        self._last_accept_wall = -np.inf
        self._blind_motion = False   # the last gate rejection since the last accepted state was a MOTION_REJECTS one
        self._holds_at_accept = 0
        # while the plant runs long on each command: the late law, bandwidth from the holds (docs/safety.md)
        self.ctl.enable_late_law(self.ctx.inertia)
        self.lateness = LatenessScale(config.control_period_s)
        # ... and while commands reach the plant a period late behind on-time stamps (the
        # state's effort is an older command than the newest: docs/safety.md)
        self.applied = AppliedCommandMatch()

    def _trim_due(self) -> bool:
        """(Worker) the slot's heap trim before a load: after a load in this process only (thread
        mode, or the loader's in-process loads); a version handed over by the loader process
        leaves the worker's arena flat (docs/results_closed_loop.md "Session 12")."""
        return self.loader is None or self.loader.last_inprocess

    def _plant_samples(self) -> tuple | None:
        """The plant check's inputs (runtime/loader.py ProcessLoader.load ``plant``): the
        controller's recent steps, sigma_n, the period and the factor; None without the
        realized-error sigma's record."""
        res = self.ctl.residual
        if res is None:
            return None
        samples = res.snapshot(PLANT_FIT_ROWS)
        if samples is None:
            return None
        return samples, self.ctl.schedule.sigma_n, self.config.control_period_s, PLANT_FIT_FACTOR

    def _check_plant_fit(self, m: InverseModel) -> None:
        """The slot's plant check (worker thread): the candidate on the controller's recent steps
        against the running model (runtime/slot.py check_plant_fit; needs the realized-error
        sigma's record, residual_window_s > 0, else nothing to score on)."""
        res = self.ctl.residual
        if res is not None:
            sched = self.ctl.schedule
            check_plant_fit(m, res.snapshot(PLANT_FIT_ROWS), sched.sigma_n, self.config.control_period_s)

    def _start_loader(self, config) -> ProcessLoader | None:
        """``model_loader`` 'process': the loader process (runtime/loader.py), spawned now, before
        the first tick, when a learned model is configured (a controller that starts analytic
        spawns it at its first model request: most never get one); 'thread': None."""
        if config.model_loader != "process":
            return None
        log = self.get_logger()
        levels = {"info": log.info, "warning": log.warning, "error": log.error}
        return ProcessLoader(self.urdf_joints, self._urdf(), start=config.model_kind != "analytic",
                             log=lambda level, msg: levels[level](msg))

    def _urdf(self) -> str:
        """The controller's URDF: a model with an analytic base adds its RNEA (and is refused if
        it was fitted against another robot or URDF, runtime/analytic_base.py)."""
        return self.config.urdf_path or str(robot_spec(self.config.robot).urdf_path)

    def _load_model(self, kind: str, model_dir: str, here: bool = False) -> InverseModel:
        """The slot's loader (worker thread): ``kind`` '' reads the kind from metadata.json.
        Through the loader process unless ``here`` (the start-up's model) or ``model_loader`` thread."""
        if kind == "analytic":
            return self.analytic
        if not model_dir:
            raise ModelLoadError(f"model_kind '{kind}' needs the model_dir parameter")
        path = resolve_model_dir(model_dir)
        if not kind:
            try:
                kind = json.loads((path / "metadata.json").read_text())["kind"]
            except (OSError, ValueError, KeyError) as exc:
                raise ModelLoadError(f"{path}: no model kind in metadata.json ({exc})") from exc
        if self.loader is not None and not here:
            return self.loader.load(kind, path, self._plant_samples())
        return load_inverse_model(kind, path, self.urdf_joints, urdf=self._urdf())

    def _load_initial_model(self, kind: str, model_dir: str) -> InverseModel:
        try:
            model = self._load_model(kind, model_dir, here=True)
            self.get_logger().info(f"loaded {kind} model from {resolve_model_dir(model_dir)}")
            return model
        except ModelLoadError as exc:
            self.model_load_error = str(exc)
            self.get_logger().error(f"no usable {kind} model ({exc}); running the analytic "
                                    "feed-forward with maximal gains until a valid model arrives")
            return UnavailableModel(self.urdf_joints)

    def _apply_parameters(self, changes: dict[str, Any]) -> None:
        """Validate the whole new parameter set; stage what changed (raises ConfigError).
        rclpy's own parameters pass: ``use_sim_time`` (its time source applies it) and the
        read-only ``qos_overrides.*`` (declared when a publisher or subscription is created)."""
        changes = {k: v for k, v in changes.items() if k not in ROS_OWN_PARAMS and not k.startswith("qos_overrides.")}
        if not changes:
            return
        old = self.config
        new = validate({**old.params, **changes}, self.ctx)
        model_change = (new.model_kind, new.model_dir) != (old.model_kind, old.model_dir)
        if model_change and not self._syncing and new.model_kind != "analytic":
            path = resolve_model_dir(new.model_dir)
            if not (path / "model.onnx").is_file() or not (path / "metadata.json").is_file():
                raise ConfigError(f"parameter 'model_dir' = {new.model_dir!r}: {path} has no model.onnx "
                                  "and metadata.json")
        try:
            tuning = build_tuning(new, self.ctl.model)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.config = new
        self.ctl.stage_tuning(tuning)
        self.slot.reprepare()
        if new.stale_timeout_s != old.stale_timeout_s:
            self.watchdog.cancel()
            self.destroy_timer(self.watchdog)
            self.watchdog = self.create_timer(new.stale_timeout_s / 2.0, self._watchdog, clock=self.steady)
        if model_change and not self._syncing:
            self.slot.request(new.model_kind, new.model_dir)
            self.get_logger().info(f"loading {new.model_kind} model {new.model_dir!r} off the control path; "
                                   "the running model stays until it passes its checks")

    def _poll_slot(self) -> None:
        """Log finished model loads; keep model_kind / model_dir naming the model that runs."""
        for ev in self.slot.poll():
            if ev.ok:
                self.model_load_error = ""
                self.get_logger().info(f"model {ev.kind} {ev.path!r} (version {ev.version}) "
                                       + (ev.reason if ev.rollback else "passed its checks")
                                       + ": swapping it in at the next tick")
                kind, path = ev.kind, ev.path
            else:
                self.get_logger().error(f"model {ev.kind or '?'} {ev.path!r} refused: {ev.reason}; "
                                        f"keeping {self.slot.active.kind} {self.slot.active.path!r}")
                kind, path = self.slot.active.kind, self.slot.active.path
            if (kind, path) != (self.config.model_kind, self.config.model_dir):
                self._syncing = True
                try:
                    self.set_parameters([Parameter("model_kind", value=kind), Parameter("model_dir", value=path)])
                finally:
                    self._syncing = False

    def _on_model_update(self, msg: String) -> None:
        path = msg.data.strip()
        if not path:
            self.ctl.count_rejected("model_update")
            self.get_logger().warning("empty model_updates message ignored")
            return
        self.slot.request("", path)
        self.get_logger().info(f"model announced: {path!r}; loading it off the control path")

    # -- ROS I/O --------------------------------------------------------------------------------
    def _build_io(self) -> None:
        n = self.ctl.n
        state_qos = qos.SENSOR_DATA if self.config.state_qos == "sensor_data" else qos.COMMANDS
        over = {"qos_overriding_options": qos.overridable()}   # qos_overrides.<topic>.* parameters
        self.cmd_pub = self.create_publisher(Float64MultiArray, "effort_controller/commands", qos.STREAM_PUBLISHER, **over)
        self.status_pub = self.create_publisher(Float64MultiArray, "~/status", qos.STATUS, **over)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
        # raw: the callback gets the CDR bytes and reads them with numpy (core/joint_state_cdr.py;
        # rclpy's message conversion cost ~21 us of CPU per state before the tick); what that
        # decoder does not read exactly is deserialized by rclpy, as before
        self.state_cdr = JointStateCdr()
        # the publisher gid for the source lock: rclpy passes a subscription's message info (the
        # gid) only to a two-argument callback, and the EventsExecutor (the default) fails on
        # one ("SystemError: null argument to internal routine", rclpy 9.1.2); so the gid is
        # read under the SingleThreadedExecutor only, the publisher count under both (docs/safety.md)
        on_state = self._on_state_raw_info if single_threaded_executor() else self._on_state_raw
        self.state_sub = self.create_subscription(JointState, "joint_states", on_state, state_qos,
                                                  raw=True, **over)
        self.create_subscription(JointTrajectory, "reference_trajectory", self._on_trajectory_raw, qos.COMMANDS,
                                 raw=True, **over)
        self.create_subscription(String, qos.MODEL_UPDATES_TOPIC, self._on_model_update, qos.MODEL_UPDATES, **over)
        # the timers run on the steady clock, also with use_sim_time: a simulator that stops
        # publishing /clock must not stop the stale-state watchdog nor the diagnostics
        self.steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.watchdog = self.create_timer(self.config.stale_timeout_s / 2.0, self._watchdog, clock=self.steady)
        heap_stats()   # resolves glibc's mallinfo2 now: the first call loads libc through ctypes (ms)
        self.create_timer(1.0, self._publish_diagnostics, clock=self.steady)
        self.create_timer(SLOT_POLL_S, self._poll_slot, clock=self.steady)
        self.create_timer(GRAPH_CHECK_S, self._check_sources, clock=self.steady)
        self.create_timer(TRAJECTORY_POLL_S, self._poll_trajectories, clock=self.steady)

        self.cmd_msg = Float64MultiArray()
        self.cmd_msg.layout.dim = [MultiArrayDimension(label="joint", size=n, stride=n)]
        # the messages' data are float64 array.arrays filled through numpy views: the generated
        # setter takes an array.array('d') as it is, a list is converted and range-checked
        # value by value (1.6 / 6 us per command / status row, the tick's largest single cost)
        self._cmd_data = array.array("d", bytes(8 * n))
        self._cmd_view = np.frombuffer(self._cmd_data, dtype=np.float64)
        self.cmd_msg.data = self._cmd_data
        # the command is published as its serialized bytes: the message's CDR prefix (the
        # layout, constant) + the n float64 values, the message's last field. rclpy's message
        # conversion walks the layout's fields on every publish (~15 us CPU per command against
        # ~5 us raw, measured in one process). Checked once here by serializing a probe
        # command: if its bytes do not end in the probe's (another encoding), the message is
        # published as before.
        self._cmd_prefix = _raw_prefix(self.cmd_msg, self._cmd_data, self._cmd_view)
        self._cmd_handle = self.cmd_pub.handle
        self.status_msg = Float64MultiArray()
        self.status_msg.layout.dim = [
            MultiArrayDimension(label=status_label(), size=len(STATUS_FIELDS), stride=len(STATUS_FIELDS) * n),
            MultiArrayDimension(label="joint", size=n, stride=n),
        ]
        self._status_data = array.array("d", bytes(8 * status_width(n)))
        self.status_buf = np.frombuffer(self._status_data, dtype=np.float64)   # a view: fill_status writes into it
        # rings of tick durations and of their command publish, filled at start: np.zeros' lazily
        # mapped pages made the RSS grow by 16 B per tick until full (docs/safety.md, soak memory)
        self.tick_ns = np.full(1 << 18, 0, dtype=np.int64)
        self.publish_ns = np.full(1 << 18, 0, dtype=np.int64)
        # per tick, the stages of STAGES (ns; int32 holds 2 s): where the tick's time goes
        self.stage_ns = np.full((1 << 18, len(STAGES)), 0, dtype=np.int32)
        self.n_ticks = 0
        self.publish_errors = 0
        self.start_wall = time.monotonic()

    def _log_due(self, key: str, now: float) -> bool:
        """True at most once per LOG_THROTTLE_S per ``key`` (``now``: time.monotonic()): the
        throttle of the tick's and the watchdog's log lines, checked before the message is
        built. rclpy's own (``throttle_duration_sec``) costs ~0.2 ms of CPU per suppressed call
        here (its Python logging inspects the caller's frame on every call): a p99 item on
        every tick of a degraded mode (chatter, fallback, fault), where it ran on each tick."""
        if now < self._log_next.get(key, -np.inf):
            return False
        self._log_next[key] = now + LOG_THROTTLE_S
        return True

    def _count_reject(self, reason: str) -> None:
        """Count a rejected joint state; log it at most every LOG_THROTTLE_S per reason."""
        count = self.ctl.count_rejected(reason)
        now = time.monotonic()
        if now - self._reject_logged.get(reason, -np.inf) >= LOG_THROTTLE_S:
            self._reject_logged[reason] = now
            self.get_logger().warning(f"joint state rejected ({reason}); {count} so far; keeping the "
                                      "last valid state")

    def _on_state_raw_info(self, raw: bytes, info: dict) -> None:
        """The callback under the SingleThreadedExecutor: ``info`` is rclpy's message info, its
        ``publisher_gid`` {"data": bytes, ...} names the sender for the source lock."""
        gid = info.get("publisher_gid") if isinstance(info, dict) else None
        data = gid.get("data") if isinstance(gid, dict) else None
        self._on_state_raw(raw, bytes(data) if data else None)

    def _on_state_raw(self, raw: bytes, gid: bytes | None = None) -> None:
        """The joint-state subscription's callback: ``raw`` is one JointState's CDR bytes;
        ``gid``: its publisher's gid when the executor gives it (else None)."""
        if not self.ticking:   # a managed node before its first activation (computed_torque_managed)
            return
        t_start = time.perf_counter_ns()
        cdr = self.state_cdr
        if cdr.decode(raw):
            self._tick(t_start, cdr.name, cdr.position, cdr.velocity, cdr.effort, cdr.sec, cdr.nanosec, gid)
            return
        from rclpy.serialization import deserialize_message  # the rare fallback: imported when needed

        try:   # not read by the numpy decoder: rclpy's own deserialization decides
            msg = deserialize_message(raw, JointState)
        except Exception:  # noqa: BLE001 - whatever rclpy cannot decode is a rejected state
            self._count_reject(UNDECODABLE)
            return
        self._on_state(msg, t_start, gid)

    def _on_state(self, msg: JointState, t_start: int | None = None, gid: bytes | None = None) -> None:
        """One tick from a deserialized JointState (``t_start``: perf_counter_ns at its arrival)."""
        if not self.ticking:
            return
        stamp = msg.header.stamp
        self._tick(time.perf_counter_ns() if t_start is None else t_start, msg.name, msg.position,
                   msg.velocity, msg.effort, stamp.sec, stamp.nanosec, gid)

    def _tick(self, t_start: int, name, position, velocity, effort, sec: int, nanosec: int,
              gid: bytes | None = None) -> None:
        """One control tick from a joint state's fields: name (list of str), position, velocity,
        effort ((m,) rad, rad/s, N*m: sequences or float64 arrays), the header stamp (sec,
        nanosec), the publisher's gid (None: not given; the publisher count decides alone)."""
        wall = time.monotonic()
        if not self.source.check(gid, wall):
            self._count_reject(SECOND_SOURCE)
            if self._log_due("second_source", wall):
                self.get_logger().error(
                    f"more than one publisher on {self.state_sub.topic_name} ({self.source.publishers} seen on the "
                    f"graph: {self._source_names}): refusing to control until one remains (no command from these "
                    "states; the hold follows when the state goes stale)")
            return
        t_checks = time.perf_counter_ns()
        status = self.mapper.update(name, position, velocity)
        if status != OK:
            self._count_reject(status)
            return
        config = self.config   # one parameter snapshot per tick
        if config.time_source == "arrival":
            t_state = wall
        else:
            t_state = sec + 1e-9 * nanosec
        gate = self.gate.check(self.mapper.q, self.mapper.qd, t_state)
        if gate != OK:
            self._count_reject(gate)
            if gate in MOTION_REJECTS:
                self._blind_motion = True
            if gate == STAMP_REPEATED and wall - self._last_cmd_wall > REPEAT_ANSWER_S and self.ctl.started:
                self._publish_command()   # a re-sent state (lockstep start) gets the last command again
            return
        t_prev = self.gate.t_last
        self.gate.accept(self.mapper.q, t_state)
        self._blind_motion = False
        ctl = self.ctl
        # a tick after the plant ran long on one command gets softer gains (docs/safety.md)
        holds = ctl.counters.stale_hold
        delay = config.control_period_s
        if t_prev is not None:
            dstamp, dwall = t_state - t_prev, wall - self._last_accept_wall
            delay = held_delay(dstamp, dwall, config.control_period_s, holds != self._holds_at_accept,
                               config.command_timeout_s)
            ctl.pause_reference(unfollowed_time(dstamp, dwall, config.command_timeout_s))
        late = self.applied.held_delay(effort, config.control_period_s)
        if late is not None and late > delay:
            delay = late
        self._last_accept_wall, self._holds_at_accept = wall, holds
        # on time (no hold of 2 periods or more lately: nearly every tick) the bound is inf: the law as designed
        ctl.set_late_bandwidth(self.lateness.update(delay))
        cand = self.slot.take_ready()
        if cand is not None:   # hot swap between two ticks: one reference
            self.slot.activated(cand, ctl.swap_model(cand.model, cand.prepared))
        if ctl.reference is None:
            ref, notes = fit_to_limits(builtin_reference(config, self.mapper.q), *self.limits)
            for note in notes:
                self.get_logger().warning(f"built-in reference clipped to the joint limits: {note}")
            ctl.set_reference(ref)
        t_step = time.perf_counter_ns()
        mode = ctl.step(self.mapper.q, self.mapper.qd, t_state, wall)
        t_stepped = time.perf_counter_ns()
        self.slot.note_tick(mode is not Mode.MODEL_FALLBACK)
        if ctl.damping_scale < 1.0 and self._log_due("chatter", wall):
            self.get_logger().warning(
                f"joint velocities chatter from tick to tick (late commands on a loaded machine?): K_D lowered "
                f"to {ctl.damping_scale:.2f} x while it lasts ({ctl.counters.chatter_ticks} ticks so far)")
        if mode is Mode.MODEL_FALLBACK:
            if self._log_due("fallback", wall):
                self.get_logger().warning(
                    f"model prediction unusable: analytic feed-forward with maximal gains "
                    f"({ctl.counters.model_fallback} ticks){'; ' + self.model_load_error if self.model_load_error else ''}")
        elif mode is Mode.FAULT:
            if self._log_due("fault", wall):
                self.get_logger().error(
                    f"tracking error beyond max_tracking_error: holding at {np.round(ctl.q_fault, 3).tolist()} "
                    "with the analytic model and K_max until a new reference_trajectory arrives "
                    f"({ctl.counters.tracking_fault} faults)")
        elif mode is Mode.HOLD:
            if self._log_due("nonfinite", wall):
                self.get_logger().error("non-finite torque computed: gravity hold sent "
                                        f"({ctl.counters.nonfinite_torque} times)")
        t_pub = time.perf_counter_ns()
        self._publish_command()
        t_end = time.perf_counter_ns()
        dt_ns = t_end - t_start
        k = self.n_ticks % self.tick_ns.size
        self.tick_ns[k] = dt_ns
        self.publish_ns[k] = t_end - t_pub
        self.stage_ns[k] = (t_checks - t_start, t_step - t_checks, t_stepped - t_step, t_pub - t_stepped)
        self.n_ticks += 1
        if config.status_decimation and self.n_ticks % config.status_decimation == 0:
            self._publish_status(dt_ns)
        self.slot.after_tick(ctl.query)   # a swap's release / warm-up, after the command is out

    def _on_trajectory_raw(self, raw: bytes) -> None:
        """Hand the CDR bytes to the parser process (docs/safety.md: off the control path)."""
        reason = self.intake.submit(raw)
        if reason is not None:
            self._reject_trajectory(reason)

    def _reject_trajectory(self, reason: str) -> None:
        self.ctl.count_rejected("trajectory")
        self.get_logger().warning(f"reference trajectory rejected: {reason}; keeping the current "
                                  "reference", throttle_duration_sec=LOG_THROTTLE_S)

    def _poll_trajectories(self) -> None:
        """Swap in parsed trajectories (between two ticks): the current desired state at t=0,
        then the message's points."""
        for result, error, size in self.intake.poll():
            if error is not None:
                self._reject_trajectory(error)
                continue
            if not self.ctl.started:
                self._reject_trajectory("no joint state received yet")
                continue
            body, estimated = result
            n = self.ctl.n
            q_now, qd_now, qdd_now = np.zeros(n), np.zeros(n), np.zeros(n)
            self.ctl.desired_now(q_now, qd_now, qdd_now)   # the hold position after a fault
            ref = PrefixedSpline(q_now, qd_now, body, estimated)
            cleared = self.ctl.faulted
            self.ctl.set_reference(ref)   # t=0 of the new reference: now
            self.get_logger().info(f"new reference trajectory: {body.t.size} points over {ref.duration:.2f} s "
                                   f"({size} bytes)" + ("; following-error fault cleared" if cleared else ""))

    def _publisher_names(self) -> str:
        """The nodes publishing joint_states as the graph shows them ("/ns/node, ..."), for the
        second-source log lines; "?" when the graph cannot be read."""
        try:
            return ", ".join(publisher_nodes(self, self.state_sub.topic_name)) or "none"
        except Exception:  # noqa: BLE001 - a log detail must never stop the check
            return "?"

    def _check_sources(self) -> None:
        """Count the publishers on joint_states; more than one: refuse to control (docs/safety.md)."""
        before = self.source.conflict
        count = self.count_publishers(self.state_sub.topic_name)
        self.source.note_publishers(count)
        if self.source.conflict:   # who they are, for the logs (a timer's work, never the tick's)
            self._source_names = self._publisher_names()
        if self.source.conflict and not before:
            self.get_logger().error(f"{count} publishers on {self.state_sub.topic_name} ({self._source_names}): "
                                    "refusing to control until one remains")
        elif before and not self.source.conflict:
            self.get_logger().warning(f"one publisher on {self.state_sub.topic_name} again: control resumes")

    def _watchdog(self) -> None:
        if not self.ticking:
            return
        if not self.ctl.started:
            self._log_waiting()
            return
        now = time.monotonic()
        if self.ctl.is_stale(now):
            if self._blind_motion:
                self.ctl.withhold_hold()
                if self._log_due("withheld", now):
                    self.get_logger().error(
                        f"no valid joint state for > {self.ctl.stale_timeout_s * 1e3:.0f} ms and the last ones "
                        "showed implausible motion (beyond the limits, too fast or jumping): no command sent, so "
                        f"the robot's command watchdog brakes ({self.ctl.counters.withheld_holds} times)")
                return
            self.ctl.stale_hold()
            if self._log_due("stale", now):
                self.get_logger().warning(
                    f"joint states stale (> {self.ctl.stale_timeout_s * 1e3:.0f} ms): gravity hold at the last "
                    f"valid position ({self.ctl.counters.stale_hold} times)")
            self._publish_command()

    def _log_waiting(self) -> None:
        """Before the first valid joint state: say what we wait for (throttled); command nothing."""
        rejected = sum(self.ctl.counters.rejected.values())
        self.get_logger().warning(
            f"waiting for {self.state_sub.topic_name} (sensor_msgs/JointState with joints "
            f"{', '.join(self.joint_names)}): nothing is commanded until the first valid state"
            + (f"; {rejected} messages rejected so far" if rejected else ""),
            throttle_duration_sec=LOG_THROTTLE_S)

    def _publish(self, pub, msg) -> None:
        try:
            pub.publish(msg)
        except RCLError as exc:  # the context is shutting down (SIGINT during a tick)
            self.publish_errors += 1
            self.get_logger().warning(f"{pub.topic_name}: not published: {exc}",
                                      throttle_duration_sec=LOG_THROTTLE_S)

    def _publish_command(self) -> None:
        self._last_cmd_wall = time.monotonic()
        if self._cmd_prefix is not None:
            values = self.ctl.tau.tobytes()
            self.applied.record_bytes(values)
            # the serialized command straight to rclpy's publisher handle, as Publisher.publish
            # does for bytes (the handle held while it writes), without its type dispatch
            handle = self._cmd_handle
            try:
                with handle:
                    handle.publish_raw(self._cmd_prefix + values)
            except RCLError as exc:  # the context is shutting down (SIGINT during a tick)
                self.publish_errors += 1
                self.get_logger().warning(f"{self.cmd_pub.topic_name}: not published: {exc}",
                                          throttle_duration_sec=LOG_THROTTLE_S)
            return
        np.copyto(self._cmd_view, self.ctl.tau)
        self.cmd_msg.data = self._cmd_data
        self.applied.record(self._cmd_data)
        self._publish(self.cmd_pub, self.cmd_msg)

    def _publish_status(self, tick_ns: int) -> None:
        fill_status(self.ctl, tick_ns * 1e-3, self.slot.active.version, self.slot.swaps, self.status_buf)
        self.status_msg.data = self._status_data
        self._publish(self.status_pub, self.status_msg)

    def _publish_diagnostics(self) -> None:
        counters = {**self.ctl.counters.as_dict(), **self.slot.counters(),
                    **({} if self.loader is None else self.loader.counters())}
        level = DiagnosticStatus.OK
        if self.ctl.mode is not Mode.NORMAL or self.model_load_error:
            level = DiagnosticStatus.WARN
        if self.ctl.mode is Mode.FAULT or self.source.conflict:
            level = DiagnosticStatus.ERROR
        message = f"mode={self.ctl.mode.name} model={self.slot.active.kind} v{self.slot.active.version}"
        if self.ctl.mode is Mode.WAITING:
            message += f": waiting for {self.state_sub.topic_name}, nothing commanded"
        message += self.state_note
        status = DiagnosticStatus(level=level, name=f"{self.get_name()}: computed torque",
                                  message=message + (" SOURCE CONFLICT: refusing to control" if self.source.conflict else ""),
                                  hardware_id=self.get_namespace())
        status.values = [KeyValue(key=k, value=str(v)) for k, v in counters.items()]
        heap = heap_stats()   # the C allocator's live and kept-free MB: a leak vs an arena's reuse
        if heap is not None:
            status.values += [KeyValue(key="heap_in_use_mb", value=f"{heap['in_use']:.3f}"),
                              KeyValue(key="heap_free_mb", value=f"{heap['free']:.3f}")]
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [status]
        self._publish(self.diag_pub, msg)

    # -- summary --------------------------------------------------------------------------------
    def summary(self) -> dict:
        ticks = self.tick_ns[: min(self.n_ticks, self.tick_ns.size)] * 1e-3
        return {
            "node": self.fq_name,
            "joint_names": self.joint_names,
            "model_kind": self.ctl.model.kind,
            "model_load_error": self.model_load_error,
            "model_slot": self.slot.counters(),
            "model_loader": None if self.loader is None else self.loader.counters(),
            "publish_errors": self.publish_errors,
            # states whose effort showed the plant ran an older command than the newest
            "commands_applied_late": self.applied.late,
            "sim_time_s": self.ctl.state_time_s,    # state time since the first valid state
            "reference_time_s": self.ctl.t_ref,     # since the current reference started
            "wall_time_s": time.monotonic() - self.start_wall,
            **self.ctl.summary(),
            # the command's publish alone (rclpy + the DDS write, which wakes the receiver)
            "controller_publish_us": _percentiles(self.publish_ns[: ticks.size] * 1e-3),
            # the tick's stages before the publish (STAGES), each {p50, p99, n} us
            "controller_stage_us": {name: _percentiles(self.stage_ns[: ticks.size, i] * 1e-3)
                                    for i, name in enumerate(STAGES)},
            "controller_tick_us": {"p50": float(np.percentile(ticks, 50)) if ticks.size else None,
                                   "p99": float(np.percentile(ticks, 99)) if ticks.size else None,
                                   "n": int(ticks.size)},
        }

    def write_summary(self) -> None:
        """Write the summary to ``summary_path``; a failure (the directory vanished, a full
        disk) is one log line and exit code 1, not a traceback."""
        if self.config.summary_path:
            write_summary_or_exit(self, self.config.summary_path, self.summary())

    def destroy_node(self) -> None:
        slot = getattr(self, "slot", None)
        if slot is not None and not slot.close(SLOT_JOIN_S):
            # a model load still running (onnxruntime inside a session build, or a stalled
            # disk): the interpreter's finalization with it alive can abort or hang the process
            # (the 20-minute soak's SIGKILL), so run_node ends it without finalization
            self.exit_without_finalization = True
            self.get_logger().error(f"a model load was still running {SLOT_JOIN_S:.0f} s after shutdown began: "
                                    "ending the process without waiting for it (summary written)")
        intake = getattr(self, "intake", None)
        if intake is not None:
            intake.close()
        super().destroy_node()


def _raw_prefix(msg: Float64MultiArray, data: array.array, view: np.ndarray) -> bytes | None:
    """The serialized ``msg`` without its data values (:func:`multiarray_prefix`, padding zero),
    when that prefix followed by the values' native float64 bytes is what rclpy makes of the
    message (checked once with distinct probe values: rclpy deserializes it to the same layout
    and values, and rclpy's own serialization has the same bytes except in the padding, which
    it leaves uninitialised); else None (publish the message). ``data`` / ``view``: the message's
    data array and a numpy view of it (n,)."""
    from rclpy.serialization import deserialize_message, serialize_message

    view[:] = np.arange(1.0, view.size + 1.0) * np.pi   # distinct, every byte pattern non-trivial
    msg.data = data
    try:
        dims = [(d.label, d.size, d.stride) for d in msg.layout.dim]
        prefix = multiarray_prefix(dims, msg.layout.data_offset, view.size)
        raw = prefix + view.astype("<f8").tobytes()
        theirs = serialize_message(msg)
        back = deserialize_message(raw, Float64MultiArray)
        ok = (len(theirs) == len(raw)
              and all(a == b or a == 0 for a, b in zip(raw[: len(prefix)], theirs[: len(prefix)], strict=True))
              and theirs[len(prefix):] == raw[len(prefix):]
              and [(d.label, d.size, d.stride) for d in back.layout.dim] == dims
              and back.layout.data_offset == msg.layout.data_offset
              and np.asarray(back.data).tobytes() == view.tobytes()
              and view.dtype.byteorder in ("=", "<") and np.little_endian)
    finally:
        view[:] = 0.0
        msg.data = data
    return prefix if ok else None


def multiarray_prefix(dims: list[tuple[str, int, int]], data_offset: int, n: int) -> bytes:
    """The CDR bytes (XCDR1, little-endian, padding zero) of a std_msgs Float64MultiArray with
    layout ``dims`` [(label, size, stride)], ``data_offset`` and ``n`` values, up to the first
    value: the serialized message is this prefix + the n values as little-endian float64.
    Fields are aligned to their size counted from the end of the 4-byte encapsulation header."""
    out = bytearray(b"\x00\x01\x00\x00")

    def align(size: int) -> None:
        out.extend(bytes(-(len(out) - 4) % size))

    out += struct.pack("<I", len(dims))
    for label, size, stride in dims:
        text = label.encode("utf-8") + b"\x00"
        align(4)
        out += struct.pack("<I", len(text)) + text
        align(4)
        out += struct.pack("<II", size, stride)
    align(4)
    out += struct.pack("<II", data_offset, n)
    if n:
        align(8)
    return bytes(out)


def _percentiles(us: np.ndarray) -> dict:
    """{p50, p99, n} of durations ``us`` (us); None when empty."""
    if not us.size:
        return {"p50": None, "p99": None, "n": 0}
    p50, p99 = np.percentile(us, [50.0, 99.0])
    return {"p50": float(p50), "p99": float(p99), "n": int(us.size)}


def main(args: list[str] | None = None) -> int:
    """Entry point (``computed_torque`` console script, ``python -m``): exit 0 after SIGINT /
    SIGTERM (the summary written), 2 on invalid parameters."""
    return run_node(ComputedTorqueNode, args, name="computed_torque")


if __name__ == "__main__":
    raise SystemExit(main())
