"""The ik node in its own process (real rclpy graph, unique ROS_DOMAIN_ID), with the shipped
learned model (models/ik_iiwa): a reachable PoseStamped gives a JointTrajectory whose final
point's forward kinematics (Pinocchio) is within the tolerance; a NaN target and an unreachable
one are refused with a reason and publish nothing, and a bad target after a solved one leaves the
solved trajectory the last published (the controller keeps it). Run-time parameters: ``move_s`` and ``ee_mask``
are validated and applied, the read-only ones refused with their reason; a bad start-up value
ends the node with exit code 2 and one line naming the parameter."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

pytestmark = pytest.mark.ros

# a configuration near the iiwa's home pose: its end-effector pose is reachable by construction
Q_TARGET = np.array([0.3, 0.6, 0.1, -1.1, 0.1, 0.9, 0.2])


class Peer:
    def __init__(self) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseStamped
        from rclpy.experimental import EventsExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import JointState
        from trajectory_msgs.msg import JointTrajectory

        self.node = rclpy.create_node("ik_peer")
        rel1 = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        self.PoseStamped, self.JointState = PoseStamped, JointState
        self.pose_pub = self.node.create_publisher(PoseStamped, "ik/target", 10)
        self.state_pub = self.node.create_publisher(JointState, "joint_states", rel1)
        self.trajs: list = []
        self.diag: dict = {}
        self.node.create_subscription(JointTrajectory, "reference_trajectory", self.trajs.append, rel1)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        from rcl_interfaces.srv import SetParameters

        self.set_cli = self.node.create_client(SetParameters, "/ik/set_parameters")
        self.executor = EventsExecutor()
        self.executor.add_node(self.node)

    def _on_diag(self, msg) -> None:
        for s in msg.status:
            if s.name.endswith("inverse kinematics"):
                self.diag = {"message": s.message, **{kv.key: kv.value for kv in s.values}}

    def send_pose(self, xyz, quat, frame: str = "lbr_iiwa_link_0") -> None:
        m = self.PoseStamped()
        m.header.frame_id = frame
        m.pose.position.x, m.pose.position.y, m.pose.position.z = (float(v) for v in xyz)
        m.pose.orientation.x, m.pose.orientation.y, m.pose.orientation.z, m.pose.orientation.w = (
            float(v) for v in quat)
        self.pose_pub.publish(m)

    def send_state(self, names, q) -> None:
        m = self.JointState()
        m.name, m.position, m.velocity = list(names), [float(v) for v in q], [0.0] * len(q)
        self.state_pub.publish(m)

    def set(self, spin_until, name: str, value):
        """One parameter through the node's set_parameters service: (successful, reason)."""
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        assert spin_until(self.executor, self.set_cli.service_is_ready, 10.0), "no /ik/set_parameters"
        fut = self.set_cli.call_async(SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()]))
        assert spin_until(self.executor, fut.done, 10.0), "set_parameters did not answer"
        r = fut.result().results[0]
        return r.successful, r.reason

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


def _quat(rot: np.ndarray) -> tuple[float, float, float, float]:
    import pinocchio as pin

    q = pin.Quaternion(rot)
    return q.x, q.y, q.z, q.w


def test_ik_node_solves_and_refuses(start_node, ros_context, spin_until, tmp_path):
    import json

    from dynlearn_ros.learning.ik.chain import chain

    c = chain("iiwa")
    summary = tmp_path / "ik.json"
    node = start_node("ik", {"robot": "iiwa", "solver": "learned_gn", "model_dir": "ik_iiwa",
                             "starts": 4, "summary_path": str(summary)})
    peer = Peer()
    try:
        ok = spin_until(peer.executor, lambda: peer.pose_pub.get_subscription_count() > 0
                        and peer.node.count_publishers("reference_trajectory") > 0, 120.0)  # torch import under load
        assert ok, node.describe()
        peer.send_state(c.joint_names, c.home)

        # 1. NaN target: refused with a reason, nothing published
        peer.send_pose((math.nan, 0.0, 0.5), (0.0, 1.0, 0.0, 0.0))
        assert spin_until(peer.executor, lambda: peer.diag.get("refused") == "1", 10.0), (peer.diag, node.describe())
        assert "non-finite" in peer.diag["message"]
        # 2. a target 3 m away (the iiwa reaches ~1.1 m): refused as unreachable
        peer.send_pose((3.0, 0.0, 0.5), (0.0, 1.0, 0.0, 0.0))
        assert spin_until(peer.executor, lambda: peer.diag.get("refused") == "2", 10.0), (peer.diag, node.describe())
        assert "unreachable" in peer.diag["message"]
        spin_until(peer.executor, lambda: bool(peer.trajs), 1.0)
        assert peer.trajs == [], "a refused target must not publish a trajectory"

        # 3. a reachable pose (the FK of Q_TARGET), from the home configuration
        target = c.fk(Q_TARGET)[-1]
        rot = np.column_stack([target[3:6], np.cross(target[6:9], target[3:6]), target[6:9]])
        t0 = time.monotonic()
        peer.send_pose(target[:3], _quat(rot))
        assert spin_until(peer.executor, lambda: bool(peer.trajs), 60.0), (peer.diag, node.describe())
        msg = peer.trajs[-1]
        assert list(msg.joint_names) == list(c.joint_names)
        q = np.array(msg.points[-1].positions)
        assert np.all(q >= c.lower) and np.all(q <= c.upper)
        reached = c.fk(q)[-1]
        # the success criterion, checked with Pinocchio independently of the node
        assert np.linalg.norm(reached[:3] - target[:3]) <= 5e-3
        r_reached = np.column_stack([reached[3:6], np.cross(reached[6:9], reached[3:6]), reached[6:9]])
        angle = math.degrees(math.acos(np.clip((np.trace(rot.T @ r_reached) - 1) / 2, -1, 1)))
        assert angle <= 2.0
        assert msg.points[-1].time_from_start.sec == 3  # move_s default
        assert spin_until(peer.executor, lambda: peer.diag.get("solved") == "1", 5.0), peer.diag
        print(f"solved in {time.monotonic() - t0:.2f} s (incl. DDS)")

        # 4. run-time parameters: refusals name the parameter / the reason, nothing changes
        ok, reason = peer.set(spin_until, "ee_mask", [1.0, 1.0, 1.0, 0.5, 0.0, 0.0, 1.0, 1.0, 1.0])
        assert not ok and "ee_mask" in reason, reason
        ok, reason = peer.set(spin_until, "ee_mask", [0.0] * 9)
        assert not ok and "not all 0" in reason, reason
        ok, reason = peer.set(spin_until, "solver", "dls")
        assert not ok and "read-only" in reason and "restart" in reason, reason
        ok, reason = peer.set(spin_until, "move_s", 5.5)
        assert ok, reason
        ok, reason = peer.set(spin_until, "ee_mask", [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
        assert ok, reason
        # the same pose again: solved (heading free makes it easier, never harder), and the new
        # move_s is on the trajectory: 5 s + 0.5 s
        peer.send_pose(target[:3], _quat(rot))
        assert spin_until(peer.executor, lambda: len(peer.trajs) == 2, 60.0), (peer.diag, node.describe())
        stamp = peer.trajs[-1].points[-1].time_from_start
        assert (stamp.sec, stamp.nanosec) == (5, 500_000_000)

        # 5. a bad target after a solved one: refused, and no trajectory replaces the last one
        # (the controller keeps following it). The node counts the refusal in the same callback
        # that would have published, so once the counter says 3 a trajectory would be on its way;
        # 1 s more of spinning gives DDS the time to deliver it.
        peer.send_pose((0.4, math.inf, 0.5), (0.0, 1.0, 0.0, 0.0))
        assert spin_until(peer.executor, lambda: peer.diag.get("refused") == "3", 10.0), (peer.diag, node.describe())
        assert "non-finite" in peer.diag["message"]
        spin_until(peer.executor, lambda: len(peer.trajs) > 2, 1.0)
        assert len(peer.trajs) == 2, "a refused target must leave the last trajectory the last one"
    finally:
        peer.close()
    # SIGINT ends it cleanly (exit 0); 30 s, not the default 10: a process under a load of ~20 on
    # 2 cores was seen to need more than 10 s to spin down and write its summary
    assert node.stop(timeout=30.0) == 0, node.describe()
    # the summary written at exit carries the counters (3 refused, 2 solved, nothing else failed)
    data = json.loads(summary.read_text())
    assert data["counters"]["refused"] == 3 and data["counters"]["solved"] == 2, data
    assert data["counters"]["errors"] == 0 and data["solve_ms"]["n"] == 2, data


@pytest.mark.parametrize("params, name", [
    ({"model_dir": "no_such_model"}, "model_dir"),
    ({"ee_mask": [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 2.0, 1.0, 1.0]}, "ee_mask"),
    ({"demo_targets": [0.5, 0.0, 0.5, 0.0, 1.0]}, "demo_targets"),
    ({"joint_names": ["a", "b"]}, "joint_names"),
    ({"solver": "learned_gn", "polish_iterations": 0}, "polish_iterations"),
])
def test_ik_node_refuses_bad_start_up_values(start_node, params, name):
    node = start_node("ik", {"robot": "iiwa", **params})
    assert node.wait(120.0) == 2, node.describe()
    fatal = [ln for ln in node.output().splitlines() if "start-up failed" in ln]
    assert len(fatal) == 1 and f"'{name}'" in fatal[0], node.describe()
