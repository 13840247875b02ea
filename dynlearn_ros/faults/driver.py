"""The test side of a fault row: an rclpy node that plays the robot driver (publishes joint
states, records commands) and, when asked, a second driver or a trajectory sender.

Stamps are in seconds of a made-up driver clock; commands are recorded with their arrival time
(time.monotonic, s) and value (n,) N*m.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np


class Driver:
    """One rclpy node with a JointState publisher on ``joint_states``, a recorder on
    ``effort_controller/commands`` and a JointTrajectory publisher on ``reference_trajectory``
    (``states``: False for a listener that leaves the joint states to the bridge).

    ``context``: the initialised rclpy context to live in (None: the default context, which
    must then be initialised); the fault matrix gives every row its own context and domain."""

    def __init__(self, joint_names: Sequence[str], node_name: str = "fault_driver", states: bool = True,
                 context=None) -> None:
        import rclpy
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray
        from trajectory_msgs.msg import JointTrajectory

        self.names = list(joint_names)
        self.JointState = JointState
        self.context = context
        self.node = rclpy.create_node(node_name, context=context)
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        # states=False: listen to the commands only (a second publisher on joint_states would be
        # a second source, which the controller refuses)
        self.pub = self.node.create_publisher(JointState, "joint_states", reliable) if states else None
        self.traj_pub = self.node.create_publisher(JointTrajectory, "reference_trajectory",
                                                   QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
        self.cmds: list[tuple[float, np.ndarray]] = []
        self.node.create_subscription(Float64MultiArray, "effort_controller/commands",
                                      lambda m: self.cmds.append((time.monotonic(), np.array(m.data))),
                                      QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE))
        self.executor = rclpy.executors.SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.extra_pubs: list = []

    def second_publisher(self):
        """Another publisher on joint_states (its own node: its own gid)."""
        import rclpy

        node = rclpy.create_node(self.node.get_name() + "_second", context=self.context)
        pub = node.create_publisher(self.JointState, "joint_states", 10)
        self.extra_pubs.append(node)
        self.executor.add_node(node)
        return pub

    def state(self, q: np.ndarray, qd: np.ndarray, stamp_s: float, names: Sequence[str] | None = None):
        msg = self.JointState()
        sec = int(np.floor(stamp_s))
        msg.header.stamp.sec, msg.header.stamp.nanosec = sec, int(round((stamp_s - sec) * 1e9)) % 1_000_000_000
        msg.name = list(names or self.names)
        msg.position = [float(v) for v in q]
        msg.velocity = [float(v) for v in qd]
        return msg

    def publish(self, q, qd, stamp_s: float, pub=None) -> None:
        (pub or self.pub).publish(self.state(q, qd, stamp_s))

    def spin(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.002)

    def wait_cmds(self, count: int, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while len(self.cmds) < count and time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.01)
        return len(self.cmds) >= count

    def wait_connected(self, proc, timeout: float = 60.0) -> bool:
        """Until the controller subscribes to joint_states and publishes commands (60 s: at load
        average 17 on 2 cores a controller was still importing after 20 s, its log empty)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.pub.get_subscription_count() > 0 and self.node.count_publishers("effort_controller/commands"):
                return True
            if proc.poll() is not None:
                return False
            self.spin(0.05)
        return False

    def close(self) -> None:
        for n in self.extra_pubs:
            self.executor.remove_node(n)
            n.destroy_node()
        self.executor.remove_node(self.node)
        self.node.destroy_node()
        self.executor.shutdown(timeout_sec=1.0)
