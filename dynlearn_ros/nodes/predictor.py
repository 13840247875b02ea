"""predictor: streams the ac-RKN forward model's prediction of the arm's next ``horizon`` states.

Subscribes ``joint_states`` (sensor_msgs/JointState: position, velocity and, with
``torque_source`` effort, the effort = the torque applied over the step that led to the state,
as the sim bridge and a torque-commanding driver report it), ``effort_controller/commands``
(std_msgs/Float64MultiArray, the model's joint order; the applied torque when ``torque_source``
is ``command``) and ``model_updates`` (std_msgs/String: a model directory; forward models are
loaded, checked and swapped in off the state path, other roles are ignored). Publishes

* ``~/prediction`` (trajectory_msgs/JointTrajectory): header.stamp = the time the horizon starts
  from (the last state's stamp, or later while states are missing), joint_names = the node's
  ``joint_names``, one point per step k = 1 .. horizon with positions (rad), velocities (rad/s)
  and time_from_start = k * step_dt;
* ``~/prediction_std`` (std_msgs/Float64MultiArray): the per-step std, layout dims
  [step (horizon), field (2: position rad, velocity rad/s), joint (n)], so
  data[k * 2n + f * n + j] is the std of point k+1, field f, joint j (row-major, strides in dim);
* ``~/status`` (std_msgs/Float64MultiArray, one row, the fields :data:`STATUS_FIELDS` in order,
  named in the layout's label) and ``/diagnostics`` (diagnostic_msgs) once a second.

The logic is :class:`dynlearn_ros.runtime.forward.ForwardStream` (ROS-free, documented there);
this node maps the messages, gates them, publishes and hot-swaps the model through
:class:`dynlearn_ros.runtime.slot.ModelSlot`. Two threads: the executor's runs the state
callback (one model step per state, then a capture of the belief) and the timers; a rollout
thread, paced at ``publish_rate_hz`` by itself, rolls the horizon out on the model's second
session (``rollout_twin``) from the last capture and publishes. A rollout (tens of model steps) therefore
never holds up the states: they are all observed, whatever the horizon and rate. Bad input never stops it: unknown or missing joints,
non-finite values, missing effort, stamps that go backwards or repeat (except after a stale
period: then the source restarted and the belief restarts from it) and wrongly sized commands
are dropped and counted per reason (``rejected`` in the status, diagnostics and summary)
with a log line at most every 2 s per reason.

Open-loop part of the horizon: the last applied torque held. The node does not know what the
controller will command (its reference, gains and model are the controller's); a held torque is
exact for the first step and the documented approximation after it (docs/predictor.md measures
what it costs against the applied torques).
"""

from __future__ import annotations

if __name__ == "__main__":  # a signal during the imports below must end the process cleanly too
    from dynlearn_ros.nodes.runner import catch_signals_early

    catch_signals_early()

import json  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from builtin_interfaces.msg import Duration  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue  # noqa: E402
from rclpy.clock import Clock, ClockType  # noqa: E402
from rclpy.event_handler import SubscriptionEventCallbacks  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray, MultiArrayDimension, String  # noqa: E402
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint  # noqa: E402

from dynlearn_ros.core.config import ConfigError, ParamSpec  # noqa: E402
from dynlearn_ros.core.robots import robot_names, robot_spec  # noqa: E402
from dynlearn_ros.core.safety import OK, JointStateMapper  # noqa: E402
from dynlearn_ros.nodes import qos  # noqa: E402
from dynlearn_ros.nodes.params import declare_spec, on_set_parameters, write_summary_or_exit  # noqa: E402
from dynlearn_ros.nodes.runner import run_node  # noqa: E402
from dynlearn_ros.paths import resolve_model_dir  # noqa: E402
from dynlearn_ros.runtime.acrkn import AcrknForwardPredictor  # noqa: E402
from dynlearn_ros.runtime.errors import ModelLoadError  # noqa: E402
from dynlearn_ros.runtime.forward import ForwardStream, check_forward_model  # noqa: E402
from dynlearn_ros.runtime.slot import ModelRefused, ModelSlot  # noqa: E402

LOG_THROTTLE_S = 2.0
SLOT_POLL_S = 0.02
_SIZED = "the prediction buffers and messages are sized once at start-up"
_START = "read once at start-up"

#: the predictor's parameters (the dynamic ones are applied at the next state or publication)
PREDICTOR_SPEC: tuple[ParamSpec, ...] = (
    ParamSpec("robot", "string", "iiwa", "robot table entry: its home position is where a new model is "
              "checked", choices=robot_names(), dynamic=False, reason=_START),
    ParamSpec("model_dir", "string", "acrkn_iiwa_fwd", "ac-RKN forward model directory (relative: under the "
              "package's models/); a new value is loaded and checked off the state path, then swapped in",
              ),
    ParamSpec("joint_names", "string_array", None, "names in joint_states / published, in the model's joint "
              "order (a rename, e.g. lbr_A1..A7); empty: the model's joint_names", optional=True,
              dynamic_typing=True, dynamic=False, reason=_START),
    ParamSpec("horizon", "int", 100, "points per prediction (steps of step_dt_ms)", lo=1, hi=2000,
              dynamic=False, reason=_SIZED),
    ParamSpec("step_dt_ms", "double", 1.0, "time between two predicted points, ms: a whole multiple of the "
              "model's dt", lo=0.01, hi=1000.0, dynamic=False, reason=_SIZED),
    ParamSpec("publish_rate_hz", "double", 10.0, "predictions published per second (wall clock)", lo=0.1,
              hi=1000.0),
    ParamSpec("torque_source", "string", "effort", "applied torque: the joint_states effort (the torque over "
              "the step that led to the state) or the last effort_controller/commands message",
              choices=("effort", "command"), dynamic=False, reason=_START),
    ParamSpec("stale_timeout_ms", "double", 100.0, "no accepted state for this long (wall clock): flagged "
              "stale in ~/status and /diagnostics; predictions go on from the belief", lo=1.0, hi=600000.0),
    ParamSpec("max_gap_ms", "double", 200.0, "a gap between states up to this is bridged open loop, a longer "
              "one restarts the belief; while stale, predictions go on this far past the last state, then "
              "stop until states return", lo=1.0, hi=10000.0, dynamic=False, reason=_SIZED),
    ParamSpec("rollout_thread", "bool", True, "true: rollouts run on their own thread and session, off the state "
              "path; false: inside the publish timer on the executor's thread (the first design, kept as the "
              "bench's same-run baseline)", dynamic=False, reason=_START),
    ParamSpec("summary_path", "string", "", "write a JSON summary here at exit (empty: none)", dynamic=False,
              reason=_START),
)

#: the ~/status row, in order
STATUS_FIELDS = ("stale", "model_version", "states_observed", "states_rejected", "predictions_published",
                 "belief_resets", "steps_past_last_state", "state_cost_us", "rollout_cost_us")

#: reasons a message is dropped (besides JointStateMapper's short_message / unknown_names / non_finite_state)
NO_EFFORT = "no_effort"
NONFINITE_EFFORT = "non_finite_effort"
STAMP_BACKWARDS = "stamp_backwards"
STAMP_REPEATED = "stamp_repeated"
NO_COMMAND = "no_command_yet"
COMMAND_SIZE = "command_size"
COMMAND_NONFINITE = "command_non_finite"


def validate_params(values: dict[str, Any]) -> dict[str, Any]:
    """The parameters checked one by one (ConfigError naming the parameter); ``max_gap_ms`` must
    be at least ``step_dt_ms``."""
    table = {s.name: s for s in PREDICTOR_SPEC}
    out = {name: table[name].check(values[name], 0) for name in table}
    if out["max_gap_ms"] < out["step_dt_ms"]:
        raise ConfigError(f"parameter 'max_gap_ms' = {out['max_gap_ms']}: must be >= step_dt_ms ({out['step_dt_ms']})")
    if not out["model_dir"]:
        raise ConfigError("parameter 'model_dir' is empty: the predictor needs a forward model")
    return out


class Predictor(Node):
    def __init__(self) -> None:
        super().__init__("predictor")
        self.fq_name = self.get_fully_qualified_name()
        self.p = p = validate_params(declare_spec(self, PREDICTOR_SPEC, None))
        spec = robot_spec(p["robot"])
        self.home = spec.home
        self.step_dt = 1e-3 * p["step_dt_ms"]
        try:   # the first model must load: without one there is nothing to predict with
            model = self._load("", p["model_dir"])
        except ModelLoadError as exc:
            raise ConfigError(f"parameter 'model_dir' = {p['model_dir']!r}: {exc}") from None
        self.model_names = tuple(model.metadata.joint_names)
        self.model_dt = model.metadata.dt
        try:
            self._check(model)
        except ModelRefused as exc:
            raise ConfigError(f"parameter 'model_dir' = {p['model_dir']!r} / 'step_dt_ms': {exc}") from None
        self.names = tuple(p["joint_names"] or self.model_names)
        if len(self.names) != len(self.model_names):
            raise ConfigError(f"parameter 'joint_names': {len(self.names)} names for the model's "
                              f"{len(self.model_names)} joints {list(self.model_names)}")
        self.n = n = len(self.names)
        self.stream = ForwardStream(model, p["horizon"], self.step_dt, 1e-3 * p["max_gap_ms"],
                                    limits=(spec.lower, spec.upper, spec.velocity_limits))
        self.slot = ModelSlot(model, "acrkn", p["model_dir"], self._load, self._check)
        self._syncing = False
        self.mapper = JointStateMapper(self.names)
        self.rejected: dict[str, int] = {}
        self._logged: dict[str, float] = {}
        self._effort = np.zeros(n)
        self._cmd = np.zeros(n)
        self._has_cmd = False
        self._effort_index: np.ndarray | None = None
        self._effort_names: list[str] | None = None
        self._t_last: float | None = None
        self._wall_last = -np.inf
        self.published = 0
        #: the last published horizon's start (stamp, s): a horizon starting earlier is withheld,
        #: so the stream's stamps never go back (reset when the source restarts with older stamps)
        self._base_floor = -np.inf
        self.withheld_behind = 0
        self.stale_episodes = 0
        self.recoveries = 0
        self._stale = False
        self.ignored_updates = 0
        self.state_ns = np.zeros(1 << 16, dtype=np.int64)    # ring buffers of per-state / per-rollout cost
        self.rollout_ns = np.zeros(1 << 12, dtype=np.int64)
        self.n_states = 0
        self.n_rollouts = 0
        self.start_wall = time.monotonic()
        self._flags = threading.Lock()                # stale flag and its counters (two threads)
        self._stop = threading.Event()
        self._rollout_thread = threading.Thread(target=self._rollout_loop, name="predictor-rollout", daemon=True)
        self._build_io()
        if p["rollout_thread"]:
            self._rollout_thread.start()
        on_set_parameters(self, PREDICTOR_SPEC, self._apply_parameters)
        self.get_logger().info(
            f"forward model {resolve_model_dir(p['model_dir'])} (version {model.version}, dt "
            f"{self.stream.dt * 1e3:g} ms): {p['horizon']} points every {p['step_dt_ms']:g} ms at "
            f"{p['publish_rate_hz']:g} Hz, applied torque from {p['torque_source']}")

    # -- model ------------------------------------------------------------------------------------
    def _load(self, kind: str, model_dir: str) -> AcrknForwardPredictor:   # noqa: ARG002 - slot signature
        """The model with its rollout twin (a second session for the rollout thread)."""
        model = AcrknForwardPredictor.from_directory(resolve_model_dir(model_dir))
        return model.with_twin() if self.p["rollout_thread"] else model

    def _check(self, model: AcrknForwardPredictor) -> None:
        names = getattr(self, "model_names", tuple(model.metadata.joint_names))
        dt = getattr(self, "model_dt", model.metadata.dt)
        if model.metadata.dt != dt:
            raise ModelRefused(f"dt {model.metadata.dt} s differs from the running model's {dt} s (the horizon's "
                               "buffers are sized for it: restart the node to change it)")
        check_forward_model(model, names, self.home, self.step_dt)

    def _on_model_update(self, msg: String) -> None:
        path = msg.data.strip()
        try:
            role = json.loads((resolve_model_dir(path) / "metadata.json").read_text()).get("role")
        except (OSError, ValueError, AttributeError):
            role = None   # unreadable: the slot's loader gives the reason
        if role is not None and role != "forward":
            self.ignored_updates += 1
            self.get_logger().info(f"model_updates: {path!r} is a {role} model, not for the predictor: ignored")
            return
        self.slot.request("acrkn", path)
        self.get_logger().info(f"forward model announced: {path!r}; loading it off the state path")

    def _poll_slot(self) -> None:
        for ev in self.slot.poll():
            if ev.ok:
                self.get_logger().info(f"forward model {ev.path!r} (version {ev.version}) passed its checks: "
                                       "swapping it in at the next state")
                path = ev.path
            else:
                self.get_logger().error(f"forward model {ev.path!r} refused: {ev.reason}; keeping "
                                        f"{self.slot.active.path!r}")
                path = self.slot.active.path
            if self.p["model_dir"] != path:   # model_dir names the model that runs (or is about to)
                self._syncing = True
                try:
                    self.set_parameters([Parameter("model_dir", value=path)])
                finally:
                    self._syncing = False

    def _apply_parameters(self, changes: dict[str, Any]) -> None:
        changes = {k: v for k, v in changes.items()
                   if k not in ("use_sim_time", "start_type_description_service") and not k.startswith("qos_overrides.")}
        if not changes:
            return
        new = validate_params({**self.p, **changes})
        old, self.p = self.p, new
        if new["publish_rate_hz"] != old["publish_rate_hz"]:
            self.destroy_timer(self.timer)
            self.timer = self.create_timer(1.0 / new["publish_rate_hz"], self._on_publish_timer, clock=self.steady)
        if new["model_dir"] != old["model_dir"] and not self._syncing:
            path = resolve_model_dir(new["model_dir"])
            if not (path / "model.onnx").is_file() or not (path / "metadata.json").is_file():
                self.p = old
                raise ConfigError(f"parameter 'model_dir' = {new['model_dir']!r}: {path} has no model.onnx and "
                                  "metadata.json")
            self.slot.request("acrkn", new["model_dir"])

    # -- ROS I/O ----------------------------------------------------------------------------------
    def _build_io(self) -> None:
        n, h = self.n, self.p["horizon"]
        over = {"qos_overriding_options": qos.overridable()}
        self.pred_pub = self.create_publisher(JointTrajectory, "~/prediction", qos.PREDICTIONS, **over)
        self.std_pub = self.create_publisher(Float64MultiArray, "~/prediction_std", qos.PREDICTIONS, **over)
        self.status_pub = self.create_publisher(Float64MultiArray, "~/status", qos.STATUS, **over)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
        # message_lost: states the middleware reports lost before they reached this node's queue (the
        # publisher no longer held them for a reader that fell behind); a full queue of this node
        # drops its oldest silently and shows only as gaps in the stamps (stream counters gaps)
        self.dds_lost = 0
        self.state_sub = self.create_subscription(
            JointState, "joint_states", self._on_state, qos.STATE_STREAM,
            event_callbacks=SubscriptionEventCallbacks(message_lost=self._on_message_lost), **over)
        if self.p["torque_source"] == "command":
            self.create_subscription(Float64MultiArray, "effort_controller/commands", self._on_command,
                                     qos.COMMANDS, **over)
        self.create_subscription(String, qos.MODEL_UPDATES_TOPIC, self._on_model_update, qos.MODEL_UPDATES, **over)
        self.steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.timer = self.create_timer(1.0 / self.p["publish_rate_hz"], self._on_publish_timer, clock=self.steady)
        self.create_timer(1.0, self._publish_diagnostics, clock=self.steady)
        self.create_timer(SLOT_POLL_S, self._poll_slot, clock=self.steady)

        self.traj = JointTrajectory()
        self.traj.joint_names = list(self.names)
        self.traj.points = []
        for k in range(1, h + 1):
            t = k * self.step_dt
            sec = int(t)
            self.traj.points.append(JointTrajectoryPoint(
                positions=[0.0] * n, velocities=[0.0] * n,
                time_from_start=Duration(sec=sec, nanosec=int(round((t - sec) * 1e9)))))
        self.std_msg = Float64MultiArray()
        self.std_msg.layout.dim = [MultiArrayDimension(label="step", size=h, stride=h * 2 * n),
                                   MultiArrayDimension(label="field:position,velocity", size=2, stride=2 * n),
                                   MultiArrayDimension(label="joint", size=n, stride=n)]
        self._std_buf = np.zeros((h, 2, n))
        self.status_msg = Float64MultiArray()
        self.status_msg.layout.dim = [MultiArrayDimension(label=",".join(STATUS_FIELDS), size=len(STATUS_FIELDS),
                                                          stride=len(STATUS_FIELDS))]
        self._status = np.zeros(len(STATUS_FIELDS))

    def _on_message_lost(self, info) -> None:
        self.dds_lost = int(info.total_count)

    def _reject(self, reason: str) -> None:
        count = self.rejected[reason] = self.rejected.get(reason, 0) + 1
        now = time.monotonic()
        if now - self._logged.get(reason, -np.inf) >= LOG_THROTTLE_S:
            self._logged[reason] = now
            self.get_logger().warning(f"message dropped ({reason}); {count} so far; predicting from the belief")

    def _on_command(self, msg: Float64MultiArray) -> None:
        if len(msg.data) != self.n:
            self._reject(COMMAND_SIZE)
            return
        cmd = np.asarray(msg.data, dtype=np.float64)
        if not np.isfinite(cmd).all():
            self._reject(COMMAND_NONFINITE)
            return
        self._cmd[:] = cmd
        self._has_cmd = True

    def _effort_of(self, msg: JointState) -> np.ndarray | None:
        """The message's effort in the node's joint order, or None (reason counted)."""
        if len(msg.effort) < len(msg.name):
            self._reject(NO_EFFORT)
            return None
        if self._effort_names != list(msg.name):   # mapper.update accepted the names: all present
            lookup = {nm: i for i, nm in enumerate(msg.name)}
            self._effort_index = np.array([lookup[j] for j in self.names], dtype=np.intp)
            self._effort_names = list(msg.name)
        np.take(np.asarray(msg.effort, dtype=np.float64), self._effort_index, out=self._effort)
        if not np.isfinite(self._effort).all():
            self._reject(NONFINITE_EFFORT)
            return None
        return self._effort

    def _on_state(self, msg: JointState) -> None:
        t0 = time.perf_counter_ns()
        status = self.mapper.update(msg.name, msg.position, msg.velocity)
        if status != OK:
            self._reject(status)
            return
        if self.p["torque_source"] == "effort":
            tau = self._effort_of(msg)
            if tau is None:
                return
        else:
            if not self._has_cmd:
                self._reject(NO_COMMAND)
                return
            tau = self._cmd
        t = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
        if self._t_last is not None and t <= self._t_last:
            if not (self._stale and t < self._t_last):
                self._reject(STAMP_REPEATED if t == self._t_last else STAMP_BACKWARDS)
                return
            # older stamps after a stale period: the source restarted (a new driver or simulator)
            self.stream.reset()
            self._base_floor = -np.inf   # its horizons start from its own, earlier clock
            self.get_logger().warning("joint states are back with older stamps (the source restarted): "
                                      "the belief restarts from them")
        cand = self.slot.take_ready()
        if cand is not None:   # hot swap between two states: the new model starts from its initial belief
            self.slot.activated(cand, self.stream.swap_model(cand.model))
        bad = self.stream.counters.nonfinite_model
        if not self.stream.observe(self.mapper.q, self.mapper.qd, tau, t):
            return
        self.slot.note_tick(self.stream.counters.nonfinite_model == bad)   # rollback after a bad swap
        self._t_last = t
        self._wall_last = time.monotonic()
        if self._stale:
            with self._flags:
                self._stale = False
                self.recoveries += 1
            self.get_logger().info("joint states are back: predicting from measured states again")
        self.state_ns[self.n_states % self.state_ns.size] = time.perf_counter_ns() - t0
        self.n_states += 1

    def _check_stale(self) -> float:
        """Seconds since the last accepted state (wall clock); flags the stale state once."""
        age = time.monotonic() - self._wall_last
        with self._flags:
            flag = age > 1e-3 * self.p["stale_timeout_ms"] and not self._stale and self.stream.t_last is not None
            if flag:
                self._stale = True
                self.stale_episodes += 1
        if flag:
            self.get_logger().warning(f"joint states stale ({age * 1e3:.0f} ms since the last): predicting on "
                                      "from the belief with the last torque held")
        return age

    def _on_publish_timer(self) -> None:
        if not self.p["rollout_thread"]:   # with the thread, it paces itself
            self._publish_prediction()

    def _rollout_loop(self) -> None:
        """The rollout thread: one prediction every 1 / publish_rate_hz s (steady clock, paced by
        this thread itself, so a busy executor does not hold it up; a late rollout is not caught
        up), until the node is destroyed."""
        next_t = time.monotonic()
        while not self._stop.is_set():
            period = 1.0 / self.p["publish_rate_hz"]
            next_t += period
            now = time.monotonic()
            if next_t < now - period:   # more than a period late: start again from now
                next_t = now
            if self._stop.wait(max(0.0, next_t - now)):
                break
            try:
                self._publish_prediction()
            except Exception as exc:   # noqa: BLE001 - the thread must survive and say why
                self.get_logger().error(f"rollout failed: {exc!r}", throttle_duration_sec=LOG_THROTTLE_S)

    def _publish_prediction(self) -> None:
        s = self.stream
        if s.t_last is None:
            return
        age = self._check_stale()
        skip = int(age / s.dt) if self._stale else 0
        if skip > s.max_gap_steps:
            self.get_logger().error(f"no joint state for {age * 1e3:.0f} ms (> max_gap_ms): no prediction "
                                    "published until states return", throttle_duration_sec=LOG_THROTTLE_S)
            self._status[6] = skip
            self._publish_status()
            return
        t0 = time.perf_counter_ns()
        ok = s.rollout(skip)
        self.rollout_ns[self.n_rollouts % self.rollout_ns.size] = time.perf_counter_ns() - t0
        self.n_rollouts += 1
        if not ok:
            self.get_logger().warning("prediction not finite or beyond the joint / velocity limits (the model "
                                      "diverged over the horizon): not published (belief kept)",
                                      throttle_duration_sec=LOG_THROTTLE_S)
            return
        t = s.t_base
        if t < self._base_floor:
            # while stale the horizons started past the last state by the wall time since it; a
            # plant whose clock stood still meanwhile (lockstep, a paused simulator) resumes from an
            # earlier stamp: its horizons are withheld until they pass the last published one
            self.withheld_behind += 1
            self.get_logger().warning(
                f"horizon from {t:.3f} s starts {1e3 * (self._base_floor - t):.0f} ms before the last published "
                "one (the plant's clock stood still while states were stale): withheld until it passes it",
                throttle_duration_sec=LOG_THROTTLE_S)
            return
        self._base_floor = t
        sec = int(np.floor(t))
        self.traj.header.stamp.sec = sec
        self.traj.header.stamp.nanosec = min(999_999_999, int(round((t - sec) * 1e9)))
        for k, pt in enumerate(self.traj.points):
            pt.positions = s.q_pred[k].tolist()
            pt.velocities = s.qd_pred[k].tolist()
        self._std_buf[:, 0] = s.q_std
        self._std_buf[:, 1] = s.qd_std
        self.std_msg.data = self._std_buf.ravel().tolist()
        self.pred_pub.publish(self.traj)
        self.std_pub.publish(self.std_msg)
        self.published += 1
        self._status[6] = skip
        self._publish_status()

    def _publish_status(self) -> None:
        st = self._status
        st[0] = 1.0 if self._stale else 0.0
        st[1] = self.slot.active.version
        st[2] = self.stream.counters.observed
        st[3] = sum(self.rejected.values())
        st[4] = self.published
        st[5] = self.stream.counters.resets
        st[7] = self.state_ns[(self.n_states - 1) % self.state_ns.size] * 1e-3 if self.n_states else 0.0
        st[8] = self.rollout_ns[(self.n_rollouts - 1) % self.rollout_ns.size] * 1e-3 if self.n_rollouts else 0.0
        self.status_msg.data = st.tolist()
        self.status_pub.publish(self.status_msg)

    def _publish_diagnostics(self) -> None:
        age = self._check_stale()
        level, message = DiagnosticStatus.OK, "predicting from measured states"
        if self.stream.t_last is None:
            level, message = DiagnosticStatus.WARN, f"waiting for {self.state_sub.topic_name}: nothing predicted yet"
        elif self._stale:
            if age * 1e3 > self.p["max_gap_ms"]:
                level, message = DiagnosticStatus.ERROR, (f"STALE: no joint state for {age * 1e3:.0f} ms (> max_gap_ms "
                                                          f"{self.p['max_gap_ms']:g}): predictions stopped")
            else:
                level, message = DiagnosticStatus.WARN, (f"STALE: no joint state for {age * 1e3:.0f} ms: predicting "
                                                         "open loop from the belief")
        values = {"model_dir": self.slot.active.path, "model_version": self.slot.active.version,
                  "published": self.published, "withheld_behind": self.withheld_behind,
                  "stale_episodes": self.stale_episodes, "recoveries": self.recoveries,
                  "rejected": json.dumps(self.rejected), **self.stream.counters.as_dict(), **self.slot.counters()}
        status = DiagnosticStatus(level=level, name=f"{self.get_name()}: forward prediction", message=message,
                                  hardware_id=self.get_namespace())
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [status]
        self.diag_pub.publish(msg)

    # -- summary ----------------------------------------------------------------------------------
    def summary(self) -> dict:
        def pct(ring: np.ndarray, count: int) -> dict:
            us = ring[: min(count, ring.size)] * 1e-3
            if not us.size:
                return {"p50": None, "p99": None, "n": 0}
            p50, p99 = np.percentile(us, [50.0, 99.0])
            return {"p50": float(p50), "p99": float(p99), "n": int(us.size)}

        return {
            "node": self.fq_name, "joint_names": list(self.names), "model_dir": self.slot.active.path,
            "model_version": self.slot.active.version, "horizon": self.p["horizon"], "step_dt_ms": self.p["step_dt_ms"],
            "torque_source": self.p["torque_source"], "published": self.published,
            "withheld_behind": self.withheld_behind,
            "stale_episodes": self.stale_episodes, "recoveries": self.recoveries, "rejected": dict(self.rejected),
            "states_lost_in_middleware": self.dds_lost,
            "ignored_model_updates": self.ignored_updates, "stream": self.stream.counters.as_dict(),
            "model_slot": self.slot.counters(), "online_score": self.stream.score.summary(),
            "state_us": pct(self.state_ns, self.n_states), "rollout_us": pct(self.rollout_ns, self.n_rollouts),
            "wall_time_s": time.monotonic() - self.start_wall,
        }

    def write_summary(self) -> None:
        if self.p["summary_path"]:
            write_summary_or_exit(self, self.p["summary_path"], self.summary())

    def destroy_node(self) -> None:
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()
            if self._rollout_thread.is_alive():
                self._rollout_thread.join(timeout=5.0)
        slot = getattr(self, "slot", None)
        if slot is not None:
            slot.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Entry point (``predictor`` console script, ``python -m``): exit 0 after SIGINT / SIGTERM
    (the summary written), 2 on invalid parameters or an unusable first model."""
    return run_node(Predictor, args, name="predictor")


if __name__ == "__main__":
    raise SystemExit(main())
