"""``python -m dynlearn_ros.faults.big_trajectory N``: publish one JointTrajectory of N points
(the iiwa's joints, a slow 0.1 rad sine on joint 1 around home, 1 ms apart) on
``reference_trajectory`` and exit. A process of its own, so building and serialising the
message (seconds for 100 000 points) does not stall the fault row's driver.
"""

from __future__ import annotations

import sys
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    from dynlearn_ros.core.robots import robot_spec

    n_points = int((argv or sys.argv[1:])[0])
    spec = robot_spec("iiwa")
    t = (np.arange(n_points) + 1) * 1e-3
    q = np.tile(spec.home, (n_points, 1))
    q[:, 0] += 0.1 * np.sin(2 * np.pi * 0.2 * t)
    msg = JointTrajectory()
    msg.joint_names = list(spec.joint_names)
    pts = []
    for k in range(n_points):
        p = JointTrajectoryPoint()
        p.positions = q[k].tolist()
        ns = int(round(t[k] * 1e9))
        p.time_from_start.sec, p.time_from_start.nanosec = divmod(ns, 1_000_000_000)
        pts.append(p)
    msg.points = pts
    rclpy.init()
    node = rclpy.create_node("big_trajectory_sender")
    pub = node.create_publisher(JointTrajectory, "reference_trajectory",
                                QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
    end = time.monotonic() + 20.0
    while pub.get_subscription_count() == 0 and time.monotonic() < end:
        time.sleep(0.05)
    pub.publish(msg)
    time.sleep(2.0)   # reliable delivery of ~10 MB before the publisher goes away
    print(f"published {n_points} points")
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
