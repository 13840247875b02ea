"""The controller reads its joint states as raw CDR bytes (core/joint_state_cdr.py): on a recorded
sequence it commands exactly what it commanded when rclpy built the message objects.

Two ComputedTorqueNode instances in this process, same parameters: one is fed each state's CDR
bytes through its subscription callback (``_on_state_raw``), the other the message rclpy's own
deserialization makes of the same bytes (``_on_state``, what the subscription delivered before).
The sequence has what the safety checks look at: a sine around home at 1 kHz stamps, efforts
echoing the previous command (on time) or an older one (a late command), a NaN, a short array,
an unknown joint name, a reordered message with a gripper joint, a repeated and a backwards
stamp, a position jump. Torques are compared bit for bit, and every counter.

The node reads the wall clock (time.monotonic) beside the stamps: the gap between two accepted
states in wall time decides whether a stamp gap was a held command (core/safety.held_delay), so
two nodes fed one after the other on a loaded machine could see different gaps and rightly
command differently (CI, stop 22: a stall of ~1 ms between the two). Both nodes here read one
step clock instead, advanced 1 ms per state as a 1 kHz driver's arrivals would be."""

from __future__ import annotations

import time

import numpy as np
import pytest

from dynlearn_ros.core.robots import robot_spec

SPEC = robot_spec("iiwa")
N = 7


def _sequence():
    """(names, position, velocity, effort_from, sec, nanosec) per state; effort_from = how many
    commands back the state's effort echoes (0: none, 1: the newest = on time, 2: one late)."""
    names = list(SPEC.joint_names)
    t = np.arange(400) * 1e-3
    q = SPEC.home + 0.05 * np.sin(2 * np.pi * np.outer(t, np.linspace(0.5, 1.1, N)))
    qd = np.gradient(q, t, axis=0)
    for k in range(t.size):
        ns = 1_000_000 * (k + 1)
        sec, nano = ns // 1_000_000_000, ns % 1_000_000_000
        pos, vel, nm, back = q[k].copy(), qd[k].copy(), names, (2 if k % 7 == 3 else 1)
        if k == 50:
            pos[2] = np.nan
        elif k == 60:
            pos = pos[:5]
        elif k == 70:
            nm = names[:6] + ["elbow"]
        elif k == 80:   # reordered, with a gripper joint: re-indexed and accepted
            nm = ["gripper"] + names[::-1]
            pos, vel = np.r_[0.01, pos[::-1]], np.r_[0.0, vel[::-1]]
        elif k == 90:
            sec, nano = 0, 90 * 1_000_000   # the previous (accepted) state's stamp again
        elif k == 91:
            sec, nano = 0, 50 * 1_000_000   # backwards
        elif k == 120:
            pos[1] += 0.5                    # a jump no joint can make in 1 ms
        yield nm, pos, vel, back, sec, nano


class _StepClock:
    """The node module's ``time``: monotonic() is ``now`` (set by the test), the rest is real."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def __getattr__(self, name):
        return getattr(time, name)


def test_raw_state_path_commands_what_the_message_path_commanded(ros_context, monkeypatch):
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import JointState

    from dynlearn_ros.nodes import computed_torque
    from dynlearn_ros.nodes.computed_torque import ComputedTorqueNode

    clock = _StepClock()
    monkeypatch.setattr(computed_torque, "time", clock)

    raw_node, msg_node = ComputedTorqueNode(), ComputedTorqueNode()
    try:
        sent: dict[str, list[np.ndarray]] = {"raw": [], "msg": []}
        ticked = 0
        for k, (names, pos, vel, back, sec, nano) in enumerate(_sequence()):
            clock.now = 1000.0 + 1e-3 * (k + 1)   # both nodes see this state arrive at the same time
            for key, node in (("raw", raw_node), ("msg", msg_node)):
                m = JointState()
                m.header.stamp.sec, m.header.stamp.nanosec = int(sec), int(nano)
                m.name = names
                m.position, m.velocity = pos.tolist(), vel.tolist()
                cmds = sent[key]
                m.effort = cmds[-back].tolist() if len(cmds) >= back else []
                raw = serialize_message(m)
                before = node.n_ticks
                if key == "raw":
                    node._on_state_raw(raw)
                else:
                    node._on_state(deserialize_message(raw, JointState))
                if node.n_ticks > before:
                    cmds.append(node.ctl.tau.copy())
            assert raw_node.n_ticks == msg_node.n_ticks
            assert raw_node.ctl.tau.tobytes() == msg_node.ctl.tau.tobytes()
            ticked = raw_node.n_ticks
        assert raw_node.ctl.counters.as_dict() == msg_node.ctl.counters.as_dict()
        assert raw_node.applied.late == msg_node.applied.late > 0   # the late efforts were seen
        rejected = raw_node.ctl.counters.rejected
        # every planted fault was caught (the jump also rejects the states after it until the
        # arm's position is back within reach of the last accepted one: >= 1)
        for reason in ("non_finite_state", "short_message", "unknown_names", "stamp_repeated",
                       "stamp_backwards", "position_jump"):
            assert rejected.get(reason, 0) >= 1, (reason, rejected)
        assert raw_node.mapper.reorders >= 2 and ticked >= 390
        assert raw_node.state_cdr.decoded == 400   # every state through the numpy decoder
        stages = raw_node.summary()["controller_stage_us"]
        assert set(stages) == {"decode", "checks", "step", "after_step"}
        assert all(v["n"] == ticked and v["p50"] > 0 for v in stages.values())
    finally:
        raw_node.destroy_node()
        msg_node.destroy_node()


def test_undecodable_bytes_are_a_counted_rejection(ros_context):
    """Bytes neither the numpy decoder nor rclpy reads: a counted rejection, no tick, no raise."""
    from dynlearn_ros.nodes.computed_torque import ComputedTorqueNode

    node = ComputedTorqueNode()
    try:
        for junk in (b"", b"\x00\x01\x00\x00", b"\x00\x01\x00\x00" + b"\xff" * 40):
            node._on_state_raw(junk)
        assert node.n_ticks == 0
        assert node.ctl.counters.rejected.get("undecodable") == 3
    finally:
        node.destroy_node()


def _state_bytes(k: int) -> bytes:
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import JointState

    m = JointState()
    m.header.stamp.sec, m.header.stamp.nanosec = 0, 1_000_000 * (k + 1)
    m.name = list(SPEC.joint_names)
    m.position, m.velocity = SPEC.home.tolist(), [0.0] * N
    return serialize_message(m)


def test_a_second_publisher_gid_is_refused(ros_context):
    """The gid path of the source lock (the SingleThreadedExecutor's callback): states from a
    second publisher are refused while the first one is alive, without waiting for the graph."""
    from dynlearn_ros.nodes.computed_torque import ComputedTorqueNode

    node = ComputedTorqueNode()
    try:
        a = {"publisher_gid": {"implementation_identifier": "rmw", "data": b"A" * 16}}
        b = {"publisher_gid": {"implementation_identifier": "rmw", "data": b"B" * 16}}
        # A stays "alive" for the lock however slow this machine is: the hand-over to a new
        # publisher after silence_s of silence is the lock's designed behaviour (test_safety_gates)
        node.source.silence_s = 3600.0
        node._on_state_raw_info(_state_bytes(0), a)
        node._on_state_raw_info(_state_bytes(1), b)
        node._on_state_raw_info(_state_bytes(2), a)
        assert node.n_ticks == 1   # A's first state only: B's refused, and then the conflict holds
        assert node.ctl.counters.rejected.get("second_source") == 2
        assert node.source.gid == b"A" * 16 and node.source.conflict
    finally:
        node.destroy_node()


@pytest.mark.parametrize("executor", ["single", "events"])
def test_publisher_gid_reaches_the_source_lock(ros_context, monkeypatch, executor):
    """Over a real graph: under the SingleThreadedExecutor the state's publisher gid reaches the
    source lock; under the EventsExecutor rclpy gives none (a two-argument callback fails there
    with SystemError), the callback binds one argument and the gid stays unknown."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.experimental import EventsExecutor
    from sensor_msgs.msg import JointState

    from dynlearn_ros.nodes.computed_torque import ComputedTorqueNode

    monkeypatch.setenv("DYNLEARN_EXECUTOR", executor)
    node = ComputedTorqueNode()
    sender = rclpy.create_node("gid_sender")
    ex = SingleThreadedExecutor() if executor == "single" else EventsExecutor()
    try:
        pub = sender.create_publisher(JointState, "joint_states", 10)
        ex.add_node(node)
        msg = JointState()
        msg.name = list(SPEC.joint_names)
        msg.position, msg.velocity = SPEC.home.tolist(), [0.0] * N
        deadline = time.monotonic() + 30.0   # discovery under load: seconds; the loop ends at the first tick
        k = 0
        while node.n_ticks == 0 and time.monotonic() < deadline:
            k += 1
            msg.header.stamp.nanosec = 1_000_000 * k
            pub.publish(msg)
            ex.spin_once(timeout_sec=0.05)
        assert node.n_ticks >= 1
        if executor == "single":
            assert isinstance(node.source.gid, bytes) and len(node.source.gid) > 0
        else:
            assert node.source.gid is None
    finally:
        ex.shutdown()
        sender.destroy_node()
        node.destroy_node()


def test_tick_log_lines_are_throttled_per_line_before_rclpy(ros_context):
    """The tick's and the watchdog's log lines go through the node's own throttle (_log_due):
    one line per LOG_THROTTLE_S each, keyed per line, decided before the message is built."""
    from dynlearn_ros.nodes.computed_torque import LOG_THROTTLE_S, ComputedTorqueNode

    node = ComputedTorqueNode()
    try:
        assert node._log_due("chatter", 100.0)
        assert not node._log_due("chatter", 100.0 + 0.5 * LOG_THROTTLE_S)
        assert node._log_due("fault", 100.0 + 0.5 * LOG_THROTTLE_S)   # another line: its own throttle
        assert node._log_due("chatter", 100.0 + LOG_THROTTLE_S)
        assert not node._log_due("chatter", 100.0 + 1.5 * LOG_THROTTLE_S)
    finally:
        node.destroy_node()
