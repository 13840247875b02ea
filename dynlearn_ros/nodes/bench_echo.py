"""The bare rclpy echo baseline of ``bench loop``: the middleware's floor at 1 kHz (a node: it
imports rclpy; the benchmark that starts it is ``dynlearn_ros.benchmarks.loop``).

Two processes, the same message types, QoS and executors as the benchmarked pair, and no work:

* ``ping`` plays the bridge: on absolute 1 ms deadlines (the sim_bridge's realtime loop, its
  EventsExecutor) it publishes a 7-joint sensor_msgs/JointState (names, position, velocity,
  effort from ``tolist()``) on ``joint_states`` (reliable, depth 10) and waits for the reply on
  ``effort_controller/commands`` (std_msgs/Float64MultiArray, ``nodes.qos.COMMANDS``). Round
  trip and deadline misses are defined as the bridge defines them: publish -> first reply
  received; a tick whose reply has not arrived by the next deadline is a miss.
* ``echo`` plays the controller: the controller's executor (``DYNLEARN_EXECUTOR``), its
  joint-state QoS (``nodes.qos.COMMANDS``), and for every state it publishes a preallocated
  7-value Float64MultiArray. No mapping, no model, no control law. Its callback's duration
  (entry to the publish's return: the publish, an empty tick) is written to ``out`` at exit as
  ``callback_us`` {p50, p99, max, n}, the counterpart of the controller's ``controller_tick_us``.

The gap between this pair and the real one is the package's own cost per tick.

    python -m dynlearn_ros.nodes.bench_echo --ros-args -p role:=echo -p out:=echo.json
    python -m dynlearn_ros.nodes.bench_echo --ros-args -p role:=ping -p seconds:=10.0 -p out:=stats.json
"""

from __future__ import annotations

if __name__ == "__main__":  # a signal during the imports below must end the process cleanly too
    from dynlearn_ros.nodes.runner import catch_signals_early

    catch_signals_early()

import threading  # noqa: E402
import time  # noqa: E402

from rclpy.node import Node  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray, MultiArrayDimension  # noqa: E402

from dynlearn_ros.nodes import qos  # noqa: E402
from dynlearn_ros.nodes.params import write_json_atomic  # noqa: E402
from dynlearn_ros.nodes.runner import run_node, spin_until_stopped  # noqa: E402
from dynlearn_ros.sim.stats import LatencyRecorder  # noqa: E402

N_JOINTS = 7
RATE_HZ = 1000.0


class RclpyEchoNode(Node):
    """``role`` echo: replies to every joint state with a preallocated 7-value command.
    ``role`` ping: the bridge's realtime loop without the plant for ``seconds``, its statistics
    written to ``out`` at exit."""

    def __init__(self) -> None:
        super().__init__("rclpy_echo")
        self.role = self.declare_parameter("role", "echo").value
        if self.role not in ("echo", "ping"):
            raise ValueError(f"parameter 'role' = {self.role!r}: must be echo or ping")
        self.out = self.declare_parameter("out", "").value
        if self.role == "echo":
            self.callback = LatencyRecorder(1 << 18)
            self.msg = Float64MultiArray()
            self.msg.layout.dim = [MultiArrayDimension(label="joint", size=N_JOINTS, stride=N_JOINTS)]
            self.msg.data = [0.0] * N_JOINTS
            self.pub = self.create_publisher(Float64MultiArray, "effort_controller/commands", qos.COMMANDS)
            self.create_subscription(JointState, "joint_states", self._echo, qos.COMMANDS)
            self.get_logger().info("rclpy echo ready")
            return
        self.ticks_total = int(round(self.declare_parameter("seconds", 10.0).value * RATE_HZ))
        self.js = JointState()
        self.js.name = [f"joint_{i + 1}" for i in range(N_JOINTS)]
        self.values = [0.0] * N_JOINTS
        self.pub = self.create_publisher(JointState, "joint_states",
                                         QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        self.create_subscription(Float64MultiArray, "effort_controller/commands", self._on_reply, qos.COMMANDS)
        self.round_trip = LatencyRecorder()
        self.fresh = False
        self.awaiting = False
        self.t_pub = 0
        self.k = 0
        self.deadline_misses = 0
        self.loop_s = None

    # -- echo -----------------------------------------------------------------------------------
    def _echo(self, msg: JointState) -> None:
        t0 = time.perf_counter_ns()
        self.pub.publish(self.msg)
        self.callback.add(time.perf_counter_ns() - t0)

    # -- ping -----------------------------------------------------------------------------------
    def _on_reply(self, msg: Float64MultiArray) -> None:
        if self.awaiting:
            self.round_trip.add(time.perf_counter_ns() - self.t_pub)
            self.awaiting = False
        self.fresh = True

    def _publish(self) -> None:
        sec, nsec = divmod(self.k * 1_000_000, 1_000_000_000)
        js = self.js
        js.header.stamp.sec, js.header.stamp.nanosec = sec, nsec
        js.position = list(self.values)
        js.velocity = list(self.values)
        js.effort = list(self.values)
        self.fresh = False
        self.awaiting = True
        self.t_pub = time.perf_counter_ns()
        self.pub.publish(js)

    def run(self, executor, stop: threading.Event) -> int:
        if self.role == "echo":
            spin_until_stopped(executor, self.context)
            return 0
        while self.pub.get_subscription_count() == 0 and not stop.is_set():   # the echo's discovery
            executor.spin_once(timeout_sec=0.05)
        self._publish()                                  # first exchange, like the bridge's
        while not self.fresh and not stop.is_set():
            executor.spin_once(timeout_sec=0.05)
            if not self.fresh:
                self._publish()
        self.round_trip = LatencyRecorder()              # measure the loop only
        period = int(1e9 / RATE_HZ)
        clock = time.perf_counter_ns
        t0 = clock()
        next_tick = t0 + period
        while self.k < self.ticks_total and not stop.is_set():
            while True:
                remaining = next_tick - clock()
                if remaining <= 0:
                    break
                executor.spin_once(timeout_sec=min(remaining * 1e-9, 0.1))
            if not self.fresh:
                self.deadline_misses += 1
            self.k += 1
            self._publish()
            next_tick += period
            if clock() - next_tick > 100 * period:
                next_tick = clock() + period
        self.loop_s = (clock() - t0) * 1e-9
        return 0

    def write_summary(self) -> None:
        if self.role == "echo" and self.out:
            write_json_atomic(self.out, {"callback_us": self.callback.summary_us()})
        if self.role == "ping" and self.out:
            write_json_atomic(self.out, {
                "ticks": self.k, "deadline_misses": self.deadline_misses,
                "deadline_miss_ratio": self.deadline_misses / self.k if self.k else None,
                "round_trip_us": self.round_trip.summary_us(), "loop_wall_time_s": self.loop_s})


def main(args: list[str] | None = None) -> int:
    """``python -m dynlearn_ros.nodes.bench_echo --ros-args -p role:=echo|ping ...``; the
    executor is DYNLEARN_EXECUTOR's (the benchmark gives the ping ``events``, as the bridge)."""
    return run_node(RclpyEchoNode, args, name="rclpy_echo")


if __name__ == "__main__":
    raise SystemExit(main())
