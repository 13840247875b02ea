"""The test side of a ROS test: one rclpy node in the test process that plays the driver or a
peer of the controller (the controller runs in its own process, ``start_node``).

:class:`TestPeer` holds the node and its SingleThreadedExecutor and offers what the tests in
test/ros share: record the commands (``effort_controller/commands``, N*m) and the controller's
``~/status`` rows, publish joint states (rad, rad/s) with made-up stamps, spin until a
condition holds, call a service and wait for its answer. A test that needs more (lifecycle
clients, parameter clients, /diagnostics) subclasses it. The default rclpy context must be
initialised (the ``ros_context`` fixture).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from dynlearn_ros.core.analytic import RigidBodyModel
from dynlearn_ros.core.robots import RobotSpec

STATUS_TOPIC = "/computed_torque/status"


class TestPeer:
    __test__ = False   # not a pytest test class despite its name

    def __init__(self, name: str) -> None:
        import rclpy

        self.node = rclpy.create_node(name)
        self.executor = rclpy.executors.SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.cmds: list[np.ndarray] = []   # each (n,) N*m, in arrival order
        self.rows: list[np.ndarray] = []   # ~/status rows (core.status layout)
        self.pub = None
        self._JointState = None

    # -------------------------------------------------------------------- subscriptions
    def record_commands(self, topic: str = "effort_controller/commands") -> TestPeer:
        """Keep every command (reliable, depth 1000: none lost while the test is busy)."""
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from std_msgs.msg import Float64MultiArray

        self.node.create_subscription(Float64MultiArray, topic, lambda m: self.cmds.append(np.array(m.data)),
                                      QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE))
        return self

    def record_status(self, topic: str = STATUS_TOPIC) -> TestPeer:
        """Keep every ``~/status`` row the controller publishes (its own best-effort QoS)."""
        from std_msgs.msg import Float64MultiArray

        from dynlearn_ros.nodes import qos

        self.node.create_subscription(Float64MultiArray, topic, lambda m: self.rows.append(np.array(m.data)),
                                      qos.STATUS)
        return self

    # ---------------------------------------------------------------------- joint states
    def joint_state_publisher(self, qos=10, topic: str = "joint_states"):
        """Create (once) the publisher that makes this peer the driver; returns it."""
        from sensor_msgs.msg import JointState

        self._JointState = JointState
        self.pub = self.node.create_publisher(JointState, topic, qos)
        return self.pub

    def joint_state(self, names: Sequence[str], q, qd=None, stamp_ns: int = 0):
        """A JointState: positions ``q`` (rad), velocities ``qd`` (rad/s, zeros when None),
        stamped ``stamp_ns`` ns of a made-up driver clock."""
        if self._JointState is None:
            from sensor_msgs.msg import JointState

            self._JointState = JointState
        msg = self._JointState()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
        msg.name = list(names)
        msg.position = [float(v) for v in q]
        msg.velocity = [float(v) for v in (np.zeros(len(q)) if qd is None else qd)]
        return msg

    # ----------------------------------------------------------------------- spinning
    def spin_until(self, pred: Callable[[], bool], timeout: float) -> bool:
        """spin_once in 10 ms slices until ``pred()`` (True) or ``timeout`` s pass (False)."""
        end = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > end:
                return False
            self.executor.spin_once(timeout_sec=0.01)
        return True

    def spin_for(self, seconds: float) -> None:
        self.spin_until(lambda: False, seconds)

    def call(self, client, request, timeout: float = 15.0):
        """Call a service and return its response (asserts the service answered)."""
        assert client.wait_for_service(timeout_sec=timeout), f"{client.srv_name} not available"
        fut = client.call_async(request)
        assert self.spin_until(fut.done, timeout), f"{client.srv_name}: no answer"
        return fut.result()

    def close(self) -> None:
        self.executor.remove_node(self.node)
        self.node.destroy_node()
        self.executor.shutdown(timeout_sec=1.0)


def gravity_of(spec: RobotSpec) -> Callable[[np.ndarray], np.ndarray]:
    """g(q) (n,) N*m of ``spec``'s URDF: the controller's command at rest under the hold
    reference with the analytic model (tau = RNEA(q, 0, 0))."""
    rbd = RigidBodyModel(spec.urdf_path, spec.joint_names)
    return lambda q: rbd.gravity(q, np.zeros(spec.n)).copy()   # a fresh array per call
