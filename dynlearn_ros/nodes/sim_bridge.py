"""``sim_bridge``: the PyBullet plant (:class:`dynlearn_ros.sim.plant.SimPlant`) as a ROS 2 robot.

Publishes ``joint_states`` (sensor_msgs/JointState, reliable depth 10; header.stamp = sim time,
effort = the clamped command applied during the step that led to this state), ``/clock``
(rosgraph_msgs/Clock, sim time) and ``/diagnostics`` (1 Hz, counters). Subscribes
``effort_controller/commands`` (std_msgs/Float64MultiArray, n torques in N*m in URDF joint order,
reliable depth 1) and ``~/payload_kg`` (std_msgs/Float64, sets the ``payload_kg`` parameter).

Stepping (parameter ``stepping``):

* ``lockstep``: publish state k (stamp k*dt) -> wait for the next command -> apply it for one
  step -> publish state k+1. The first valid command is awaited without time limit (state 0 is
  re-sent every second until then, so a controller started later still gets it); afterwards, a
  command missing for ``lockstep_timeout_ms`` counts a timeout and the last valid command is held
  for that step. Deterministic: same commands, same trajectory.
* ``realtime``: after the first valid command, one step per 1/rate_hz on absolute wall-clock
  deadlines with the latest valid command; no new command since the last state = deadline miss.
  A loop more than STALL_PERIODS behind (the bridge starved of CPU) re-anchors its deadlines:
  the simulated physics pause with the bridge instead of catching up in a burst.

Command watchdog (like a real robot's: FRI and libfranka stop the arm when commands stop): in
realtime, no valid command for ``command_timeout_ms`` of plant time (the steps the plant ran on the
last command: wall-clock time while the bridge keeps up; a stall of the bridge itself pauses the
physics and so the watchdog, instead of braking a paused arm for the bridge's own lateness) engages the brakes
(:meth:`SimPlant.brake_step`: each joint's velocity driven to 0 with at most its effort limit)
until a valid command arrives; a short gap (a few missed deadlines) holds the last command. In
lockstep the same happens when ``lockstep_timeout_ms`` passes without a command. Each loss of
commands is logged (error) and counted (``command_losses``, ``brake_steps``); /diagnostics is
ERROR while braking, and says when the command publisher has left the graph (a dead controller).
More than one publisher on the command topic (two controllers on one graph) is treated the
same way: the brakes hold until one remains (counted in ``command_conflicts``, logged). The
count is the command subscription's matched-publisher count (``get_publisher_count``, ~1.5 us:
DDS matches a writer before any of its data is delivered), read when each command arrives and
before every step (also the first): a command that arrives while two publishers are matched is
never stored, no step applies a command while they are, and after the conflict the brakes stay
on until a command arrives from the one that remains.
``on_command_loss:=hold_last`` keeps the old behaviour (last torque for ever) for experiments.

Velocity stop (like a real arm's joint-velocity monitoring): after every step, a joint whose
velocity one step ahead at its present acceleration reaches ``velocity_stop_fraction`` (default
0.9) of its velocity limit (:class:`VelocityMonitor`), engages the brakes until a valid
command arrives after a braked step (counted in ``velocity_stops``, logged, /diagnostics ERROR). It
catches what the watchdog cannot: a command held for less than ``command_timeout_ms`` that is
wrong for the arm's present state (a light wrist joint gains 1.4 rad/s in 20 ms on 0.8 N*m).

A command of the wrong length or with a non-finite value is rejected (counter, throttled warning,
last valid command kept; in lockstep it still answers the pending state). Values beyond the
URDF effort limits are clamped (counter). Run ``python -m dynlearn_ros.nodes.sim_bridge --ros-args
-p robot:=panda`` or the ``sim_bridge`` console script; see docs/sim.md.
"""

from __future__ import annotations

if __name__ == "__main__":  # a signal during the imports below must end the process cleanly too
    from dynlearn_ros.nodes.runner import catch_signals_early

    catch_signals_early()

import os  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64, Float64MultiArray  # noqa: E402

from dynlearn_ros.core.config import ConfigError  # noqa: E402
from dynlearn_ros.nodes import qos  # noqa: E402
from dynlearn_ros.nodes.params import declare_spec, on_set_parameters, write_json_atomic  # noqa: E402
from dynlearn_ros.nodes.runner import run_node  # noqa: E402
from dynlearn_ros.nodes.sim_bridge_params import BRIDGE_SPEC, validate_bridge  # noqa: E402
from dynlearn_ros.sim.plant import SimPlant  # noqa: E402
from dynlearn_ros.sim.stats import LatencyRecorder  # noqa: E402
from dynlearn_ros.sim.trace import BRAKE, FRESH, VSTOP, StepTrace  # noqa: E402
from dynlearn_ros.sim.velocity_monitor import VelocityMonitor  # noqa: E402

STALL_PERIODS = 2  # realtime: more than this many periods behind = a stall of the bridge (re-anchor)
FIRST_STATE_REPEAT_S = 0.1  # lockstep/realtime: re-send state 0 this often until the first command


class SimBridgeNode(Node):
    """Holds the ROS handles and one :class:`SimPlant`; :meth:`run` steps it until done."""

    #: run_node ends the process with os._exit once the stats are written, the plant
    #: disconnected and rclpy shut down: nothing is left for the interpreter's finalization, and
    #: under load that finalization sometimes spun for more than 20 s in the garbage collector
    #: (gdb: Py_FinalizeEx -> finalize_modules -> gc_collect_main, the EventsExecutor's thread
    #: still alive) after a SIGINT during start-up; docs/safety.md, "A signal during start-up"
    exit_without_finalization = True

    def __init__(self, **kwargs) -> None:
        super().__init__("sim_bridge", **kwargs)
        self.values = declare_spec(self, BRIDGE_SPEC, None)
        cfg = validate_bridge(self.values)
        self.cfg = cfg
        self.dt_ns = int(round(1e9 / cfg["rate_hz"]))
        try:
            self.plant = SimPlant(cfg["robot"], dt=self.dt_ns * 1e-9, friction_viscous=cfg["friction_viscous"],
                                  friction_coulomb=cfg["friction_coulomb"],
                                  coulomb_velocity_eps=cfg["coulomb_velocity_eps"], payload_kg=cfg["payload_kg"],
                                  initial_q=cfg["initial_positions"])
        except ValueError as exc:
            raise ConfigError(f"invalid plant parameters: {exc}") from exc
        n = self.n = self.plant.n
        # state shared between callbacks and the loop (single-threaded executor: no locks)
        self._cmd = np.zeros(n)  # last valid command (N*m), URDF order
        self._have_cmd = False  # a valid command has ever arrived
        self._fresh = False  # a command (valid or rejected) arrived since the last published state
        self._t_pub_ns = 0
        self._awaiting_reply = False
        self.k = 0  # index of the last published state
        self.timeouts = 0
        self.stalls = 0  # realtime: the loop fell > STALL_PERIODS behind and re-anchored
        self.command_losses = 0  # episodes: commands stopped and the brakes engaged
        self._last_valid_ns = 0  # perf_counter_ns of the last valid command
        self._steps_on_cmd = 0  # plant steps since the last valid command (the watchdog's time)
        self._cmd_publishers = 0
        self._cmd_conflict = False
        self._cmd_since_conflict = True  # a valid command arrived after the last conflict ended
        self.command_conflicts = 0
        self.rejected_in_conflict = 0  # commands refused because two publishers were matched
        self.first_conflict_tick: int | None = None  # state index at which a conflict was first seen
        self.deadline_misses = 0
        self.rejected = 0
        self.payload_msgs = 0
        self.max_abs_qd_joint = np.zeros(n)  # rad/s per joint, over the run: a flailing arm shows here
        self._abs_qd = np.zeros(n)
        self.round_trip = LatencyRecorder()
        self.trace = StepTrace(n) if cfg["trace_path"] else None  # per-step record (investigations)
        frac = cfg["velocity_stop_fraction"]
        self.vmon = VelocityMonitor(self.plant.spec.velocity_limits, frac) if frac > 0 else None
        self._vstop = False  # a velocity stop holds the brakes
        self._lost = False  # in a command-loss episode (the watchdog brakes)
        self._cmd_after_vstop = False  # a valid command arrived after the last velocity stop
        self.velocity_stops = 0  # episodes
        self.velocity_stops_per_joint = np.zeros(n, dtype=np.int64)  # the joint that tripped each one
        self._q = np.zeros(n)
        self._qd = np.zeros(n)
        self._wall0 = time.perf_counter()
        self._cpu0 = 0.0
        self._loop_t0 = None
        self._stop = threading.Event()

        self._js = JointState()
        self._js.name = list(cfg["joint_names"])
        self._clock_msg = Clock()
        self.pub_js = self.create_publisher(JointState, "joint_states", qos.STREAM_PUBLISHER)
        self.pub_clock = self.create_publisher(Clock, "/clock", QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.sub_cmd = self.create_subscription(Float64MultiArray, "effort_controller/commands", self._on_command,
                                                qos.COMMANDS)
        self.sub_payload = self.create_subscription(Float64, "~/payload_kg", self._on_payload_msg, 10)
        on_set_parameters(self, BRIDGE_SPEC, self._apply_parameters)
        self.create_timer(1.0, self._publish_diagnostics)
        self.create_timer(0.25, self._check_command_publishers)  # also while no step runs
        self.get_logger().info(
            f"{cfg['robot']} ({n} joints) at {cfg['rate_hz']:g} Hz, {cfg['stepping']}, payload {cfg['payload_kg']:g} kg, "
            f"friction b={self.plant.friction_viscous.tolist()} fc={self.plant.friction_coulomb.tolist()}; "
            f"publishing {self.pub_js.topic_name}, commands on {self.sub_cmd.topic_name}")

    def _apply_parameters(self, changes: dict[str, Any]) -> None:
        """Run-time changes (``payload_kg``, ``stats_path``; the others are refused with their
        reason): validated as a whole set, applied between two steps."""
        cfg = validate_bridge({**self.values, **changes})
        self.values = {**self.values, **changes}
        if cfg["payload_kg"] != self.cfg["payload_kg"]:
            self.plant.set_payload(cfg["payload_kg"])
            self.get_logger().info(f"payload set to {cfg['payload_kg']:g} kg at t = {self.k * self.dt_ns * 1e-9:.3f} s")
        self.cfg = cfg

    def _on_payload_msg(self, msg: Float64) -> None:
        self.payload_msgs += 1
        result = self.set_parameters([Parameter("payload_kg", Parameter.Type.DOUBLE, float(msg.data))])[0]
        if not result.successful:
            self.get_logger().warning(f"~/payload_kg {msg.data}: {result.reason}")

    # ------------------------------------------------------------------ callbacks
    def _on_command(self, msg: Float64MultiArray) -> None:
        if self._awaiting_reply:
            self.round_trip.add(time.perf_counter_ns() - self._t_pub_ns)
            self._awaiting_reply = False
        data = msg.data
        if len(data) != self.n:
            self.rejected += 1
            self.get_logger().warning(f"rejected command: {len(data)} values, expected {self.n}",
                                      throttle_duration_sec=1.0)
        else:
            vals = np.frombuffer(data, dtype=np.float64) if hasattr(data, "typecode") else np.asarray(data, dtype=np.float64)
            if not np.all(np.isfinite(vals)):
                self.rejected += 1
                self.get_logger().warning("rejected command: non-finite value", throttle_duration_sec=1.0)
            elif self._check_command_publishers():
                self.rejected_in_conflict += 1
            else:
                self._cmd[:] = vals
                self._have_cmd = True
                self._cmd_since_conflict = True
                self._last_valid_ns = time.perf_counter_ns()
                self._steps_on_cmd = 0
                self._cmd_after_vstop = True
        self._fresh = True

    def _check_command_publishers(self) -> bool:
        """Read the command subscription's matched-publisher count; True while more than one
        (a conflict: counted and logged once per episode, the brakes hold)."""
        count = self.sub_cmd.get_publisher_count()
        if count > 1:
            if not self._cmd_conflict:
                self.command_conflicts += 1
                if self.first_conflict_tick is None:
                    self.first_conflict_tick = self.k
                self.get_logger().error(f"{count} publishers on {self.sub_cmd.topic_name} (two controllers?): "
                                        "brakes on until one remains")
            self._cmd_conflict = True
            self._cmd_since_conflict = False
        elif self._cmd_conflict:
            self._cmd_conflict = False
            self.get_logger().warning(f"one publisher on {self.sub_cmd.topic_name} again: brakes on until "
                                      "its next command")
        return self._cmd_conflict

    def _publish_state(self) -> None:
        stamp_ns = self.k * self.dt_ns
        sec, nsec = divmod(stamp_ns, 1_000_000_000)
        self.plant.state_into(self._q, self._qd)
        np.abs(self._qd, out=self._abs_qd)
        np.maximum(self.max_abs_qd_joint, self._abs_qd, out=self.max_abs_qd_joint)
        js = self._js
        js.header.stamp.sec = sec
        js.header.stamp.nanosec = nsec
        js.position = self._q.tolist()
        js.velocity = self._qd.tolist()
        js.effort = self.plant.applied_torque.tolist()
        self._clock_msg.clock.sec = sec
        self._clock_msg.clock.nanosec = nsec
        self._fresh = False
        self._awaiting_reply = True
        self._t_pub_ns = time.perf_counter_ns()
        self.pub_js.publish(js)
        self.pub_clock.publish(self._clock_msg)

    def _publish_diagnostics(self) -> None:
        st = DiagnosticStatus()
        st.name = f"{self.get_name()}: sim plant"
        st.hardware_id = f"pybullet/{self.cfg['robot']}"
        problems = self.timeouts + self.deadline_misses + self.rejected
        st.level = DiagnosticStatus.OK if problems == 0 else DiagnosticStatus.WARN
        st.message = "running" if self._have_cmd else "waiting for the first command"
        count = self.count_publishers(self.sub_cmd.topic_name)
        if self._have_cmd and count == 0 and self._cmd_publishers > 0:
            self.get_logger().error(f"the command publisher on {self.sub_cmd.topic_name} left the graph "
                                    "(controller gone?)")
        self._cmd_publishers = count
        if self.plant.braking and self._vstop:
            st.level = DiagnosticStatus.ERROR
            st.message = f"velocity stop: brakes on until the next command ({self.velocity_stops} stops)"
        elif self.plant.braking:
            st.level = DiagnosticStatus.ERROR
            st.message = (f"commands lost: brakes on ({count} command publishers"
                          + ("; controller gone?)" if count == 0 else ")"))
        rt = self.round_trip.summary_us()
        st.values = [KeyValue(key=k, value=str(v)) for k, v in (
            ("ticks", self.k), ("sim_time_s", f"{self.k * self.dt_ns * 1e-9:.3f}"),
            ("clamps", self.plant.clamped_steps), ("timeouts", self.timeouts),
            ("deadline_misses", self.deadline_misses), ("rejected_commands", self.rejected),
            ("payload_kg", self.plant.payload_kg), ("round_trip_p99_us", rt["p99"]),
            ("command_losses", self.command_losses), ("brake_steps", self.plant.brake_steps),
            ("velocity_stops", self.velocity_stops),
            ("command_publishers", count))]
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status = [st]
        self.pub_diag.publish(arr)

    # ------------------------------------------------------------------ loop
    def _wait_first_command(self, executor) -> bool:
        """Publish state 0 (again every FIRST_STATE_REPEAT_S) until a valid command arrives, or
        a command refused because two publishers are matched (the steps then brake)."""
        self._publish_state()
        last = time.monotonic()
        while (rclpy.ok(context=self.context) and not (self._have_cmd or self._cmd_conflict)
               and not self._stop.is_set()):
            executor.spin_once(timeout_sec=0.05)
            if not (self._have_cmd or self._cmd_conflict) and time.monotonic() - last >= FIRST_STATE_REPEAT_S:
                self._publish_state()
                last = time.monotonic()
        return self._have_cmd or self._cmd_conflict

    def _done(self) -> bool:
        dur = self.cfg["duration_s"]
        return dur > 0 and self.k * self.dt_ns >= int(round(dur * 1e9))

    def run(self, executor, stop: threading.Event | None = None) -> int:
        """Step until duration_s of sim time has passed, ``stop`` is set (SIGINT / SIGTERM) or
        the context shuts down; returns the exit code 0."""
        if stop is not None:
            self._stop = stop
        import psutil

        proc = psutil.Process()
        cpu = proc.cpu_times()
        self._cpu0 = cpu.user + cpu.system
        self._wall0 = time.perf_counter()
        if self._done() or not self._wait_first_command(executor):
            return 0
        self._loop_t0 = time.perf_counter()
        if self.cfg["stepping"] == "lockstep":
            self._run_lockstep(executor)
        else:
            self._run_realtime(executor)
        return 0

    def _step_and_publish(self, commands_lost: bool = False) -> None:
        """One step with the last valid command, or with the brakes when ``commands_lost`` (and
        ``on_command_loss`` is brake), then publish the new state."""
        commands_lost = commands_lost or self._check_command_publishers() or not self._cmd_since_conflict
        steps_on_cmd = self._steps_on_cmd
        fresh = self._fresh
        if self._vstop and self._cmd_after_vstop and self.plant.braking:
            self._vstop = False  # a command sent after a braked state: the arm is at rest
            self.get_logger().warning(f"velocity stop released at t = {self.k * self.dt_ns * 1e-9:.3f} s "
                                      "(a command arrived after it)", throttle_duration_sec=1.0)
        lost = commands_lost and self.cfg["on_command_loss"] == "brake"
        if lost and not self._lost:  # an episode: counted and logged once (also under a velocity stop)
            self.command_losses += 1
            self.get_logger().error(
                f"no command for {self._steps_on_cmd * self.dt_ns * 1e-6:.0f} ms "
                f"({(time.perf_counter_ns() - self._last_valid_ns) * 1e-6:.0f} ms wall) at t = "
                f"{self.k * self.dt_ns * 1e-9:.3f} s: brakes on until commands return "
                f"({self.command_losses} losses; command publishers: {self._cmd_publishers})")
        self._lost = lost
        if self._vstop or lost:
            self.plant.brake_step()
            if self._vstop:
                self._cmd_after_vstop = False  # released by a command that answers a braked state
        else:
            if self.plant.braking:
                self.get_logger().warning(f"commands back at t = {self.k * self.dt_ns * 1e-9:.3f} s: brakes released "
                                          f"after {self.plant.brake_steps} braked steps in all",
                                          throttle_duration_sec=1.0)
            self.plant.step(self._cmd)
        self._steps_on_cmd += 1
        self.k += 1
        self._publish_state()
        vstop_now = self.vmon is not None and self.vmon.check(self._qd)
        if vstop_now and not self._vstop:
            self._vstop = True
            self._cmd_after_vstop = False
            self.velocity_stops += 1
            j = self.vmon.last_joint
            self.velocity_stops_per_joint[j] += 1
            self.get_logger().error(
                f"velocity stop at t = {self.k * self.dt_ns * 1e-9:.3f} s: joint {self._js.name[j]} at "
                f"{self._qd[j]:+.2f} rad/s (bound {self.vmon.bound[j]:.2f}, {self.cfg['velocity_stop_fraction']:g} "
                f"of its limit) or about to be: brakes on until the next command ({self.velocity_stops} stops; "
                f"{steps_on_cmd + 1} steps on the last command)", throttle_duration_sec=1.0)
        if self.trace is not None:
            self.trace.add(time.perf_counter_ns(), (FRESH if fresh else 0) | (BRAKE if self.plant.braking else 0)
                           | (VSTOP if vstop_now else 0), steps_on_cmd, self._qd, self.plant.applied_torque)

    def _run_lockstep(self, executor) -> None:
        timeout_ns = int(self.cfg["lockstep_timeout_ms"] * 1e6)
        ok = rclpy.ok
        ctx = self.context
        stop = self._stop
        while not self._done() and ok(context=ctx) and not stop.is_set():
            lost = False
            if not self._fresh:
                deadline = time.perf_counter_ns() + timeout_ns
                while not self._fresh:
                    remaining = deadline - time.perf_counter_ns()
                    if remaining <= 0:
                        self.timeouts += 1
                        lost = True
                        self.get_logger().warning(
                            "lockstep: no command in time, "
                            + ("brakes on" if self.cfg["on_command_loss"] == "brake" else "holding the last one"),
                            throttle_duration_sec=1.0)
                        break
                    executor.spin_once(timeout_sec=min(remaining * 1e-9, 0.1))
                    if not ok(context=ctx) or stop.is_set():
                        return
            self._step_and_publish(lost)

    def _run_realtime(self, executor) -> None:
        period_ns = self.dt_ns
        cmd_timeout_ns = int(self.cfg["command_timeout_ms"] * 1e6)
        clock = time.perf_counter_ns
        next_tick = clock() + period_ns
        ok = rclpy.ok
        ctx = self.context
        stop = self._stop
        while not self._done() and ok(context=ctx) and not stop.is_set():
            while True:
                remaining = next_tick - clock()
                if remaining <= 0:
                    break
                executor.spin_once(timeout_sec=min(remaining * 1e-9, 0.1))
                if stop.is_set():
                    return
            if not self._fresh:
                self.deadline_misses += 1
            self._step_and_publish(self._steps_on_cmd * period_ns >= cmd_timeout_ns)
            next_tick += period_ns
            late = clock() - next_tick
            if late > STALL_PERIODS * period_ns:
                # the bridge itself was stalled (CPU starved, suspended): the plant's physics
                # pause with it - re-anchor instead of bursting through the missed steps with
                # one stale command (a burst is physics a real arm would never see)
                self.stalls += 1
                if self.trace is not None:
                    self.trace.mark_stall()
                next_tick = clock() + period_ns

    # ------------------------------------------------------------------ exit
    def stats(self) -> dict:
        import psutil

        wall = time.perf_counter() - self._wall0
        cpu = psutil.Process().cpu_times()
        cpu_s = cpu.user + cpu.system - self._cpu0
        ticks = self.k
        return {
            "robot": self.cfg["robot"], "stepping": self.cfg["stepping"], "rate_hz": self.cfg["rate_hz"],
            "ticks": ticks, "sim_time_s": ticks * self.dt_ns * 1e-9,
            "wall_time_s": wall,
            "loop_wall_time_s": None if self._loop_t0 is None else time.perf_counter() - self._loop_t0,
            "clamps": int(self.plant.clamped_steps), "clamps_per_joint": self.plant.clamp_counts.tolist(),
            "timeouts": self.timeouts, "rejected_commands": self.rejected,
            "command_losses": self.command_losses, "brake_steps": int(self.plant.brake_steps),
            "command_conflicts": self.command_conflicts, "first_conflict_tick": self.first_conflict_tick,
            "commands_refused_in_conflict": self.rejected_in_conflict, "stalls": self.stalls,
            "velocity_stops": self.velocity_stops, "velocity_stops_per_joint": self.velocity_stops_per_joint.tolist(),
            "max_abs_qd": float(self.max_abs_qd_joint.max()),
            "max_abs_qd_per_joint": self.max_abs_qd_joint.tolist(),
            "deadline_misses": self.deadline_misses,
            "deadline_miss_ratio": (self.deadline_misses / ticks if ticks else 0.0)
            if self.cfg["stepping"] == "realtime" else None,
            "round_trip_us": self.round_trip.summary_us(),
            "cpu_percent": 100.0 * cpu_s / wall if wall > 0 else None,
            "payload_kg": self.plant.payload_kg, "pid": os.getpid(),
        }

    def write_summary(self) -> None:
        if self.cfg["stats_path"]:
            write_json_atomic(self.cfg["stats_path"], self.stats())
        if self.trace is not None:
            self.trace.save(self.cfg["trace_path"])

    def destroy_node(self) -> None:
        plant = getattr(self, "plant", None)
        if plant is not None:
            plant.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Entry point: ``sim_bridge --ros-args -p robot:=panda ...``; exit 0 when done or after
    SIGINT / SIGTERM (stats written), 2 on invalid parameters."""
    return run_node(SimBridgeNode, args, name="sim_bridge")


if __name__ == "__main__":
    raise SystemExit(main())
