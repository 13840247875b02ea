"""computed_torque against bad input, through a real publisher (controller in its own process).

The test node plays the robot driver: it publishes joint states (good and bad) and records the
commands. The hold reference keeps the expected commands simple: at the first valid state
q0 the reference is q0 at rest, so tau = RNEA(q, qd, 0) + K_P (q0 - q) - K_D qd, computed here
with the same Pinocchio model.
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from dynlearn_ros.core.analytic import RigidBodyModel
from dynlearn_ros.core.robots import robot_spec

pytestmark = pytest.mark.ros

SPEC = robot_spec("iiwa")
N = SPEC.n
GAINS = {"k_min": [50.0], "k_max": [100.0], "zeta": [1.0], "sigma_n": [0.1], "sigma_f": [10.0],
         "schedule_c": [3.0], "analytic_std": [10.0], "reference": "hold"}
KP = 50.0 + (1.0 - math.exp(-3.0)) * 50.0  # Eq. 7-8 at sigma = sigma_f
KD = math.sqrt(KP)
STALE_MS = 400.0


class Driver:
    def __init__(self, ros_context):
        import rclpy
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray

        self.JointState = JointState
        self.node = rclpy.create_node("fake_driver")
        self.pub = self.node.create_publisher(JointState, "joint_states", 10)
        self.cmds: list[tuple[float, np.ndarray]] = []
        self.node.create_subscription(
            Float64MultiArray, "effort_controller/commands",
            lambda m: self.cmds.append((time.monotonic(), np.array(m.data))),
            QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
        self.executor = rclpy.executors.SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.k = 0
        self.rbd = RigidBodyModel(SPEC.urdf_path, SPEC.joint_names)

    def publish(self, names, position, velocity):
        msg = self.JointState()
        self.k += 1
        # 1 s between stamps: the test's steps (up to 0.4 rad) stay within what the plausibility
        # gate allows in that time, the stamps run ahead of the wall clock (a state looks like
        # one after a held command only if it arrives >= 0.5 s after the previous one; the
        # schedule's gains stay), and a new 2 s trajectory is still running at the next state
        msg.header.stamp.sec = self.k
        msg.name, msg.position, msg.velocity = list(names), list(map(float, position)), list(map(float, velocity))
        self.pub.publish(msg)

    def spin(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.005)

    def wait_cmds(self, count, timeout):
        end = time.monotonic() + timeout
        while len(self.cmds) < count and time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.01)
        return len(self.cmds) >= count

    def expected(self, q, qd, q0):
        tau = np.zeros(N)
        self.rbd.rnea(q, qd, np.zeros(N), tau)
        return tau + KP * (q0 - q) - KD * qd

    def gravity(self, q):
        return self.rbd.gravity(q, np.zeros(N))

    def close(self):
        self.node.destroy_node()


@pytest.fixture
def driver(ros_context):
    d = Driver(ros_context)
    yield d
    d.close()


def wait_connected(driver, ctl, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if driver.pub.get_subscription_count() > 0 and driver.node.count_publishers("effort_controller/commands"):
            return
        assert ctl.poll() is None, "controller exited"
        driver.spin(0.05)
    raise AssertionError("controller did not appear on the graph")


def test_bad_joint_states_are_rejected_and_stale_state_holds(driver, start_node, tmp_path):
    summary = tmp_path / "summary.json"
    ctl = start_node("computed_torque", {**GAINS, "stale_timeout_ms": STALE_MS, "summary_path": str(summary)})
    wait_connected(driver, ctl)
    names = list(SPEC.joint_names)
    q0 = SPEC.home.copy()
    zero = np.zeros(N)

    # a valid state: hold reference at q0 -> the command is the gravity torque at q0
    driver.publish(names, q0, zero)
    assert driver.wait_cmds(1, 10.0), "no command for a valid joint state"
    np.testing.assert_allclose(driver.cmds[-1][1], driver.gravity(q0), rtol=1e-9, atol=1e-9)

    # the same joints in another order, plus a gripper joint the controller does not know
    q1, qd1 = q0 + np.linspace(0.01, 0.07, N), np.linspace(-0.1, 0.1, N)
    perm = np.array([3, 0, 6, 1, 5, 2, 4])
    driver.publish([names[i] for i in perm] + ["gripper"], np.append(q1[perm], 0.5), np.append(qd1[perm], 0.0))
    assert driver.wait_cmds(2, 5.0)
    np.testing.assert_allclose(driver.cmds[-1][1], driver.expected(q1, qd1, q0), rtol=1e-9, atol=1e-9)

    # bad messages: none may produce a command (the last valid state stays in force)
    bad = [
        (names, np.where(np.arange(N) == 2, np.nan, q1), zero),  # non-finite position
        (names, q1, np.where(np.arange(N) == 5, np.inf, zero)),  # non-finite velocity
        (names, q1[:5], zero[:5]),  # short arrays
        (names[:6] + ["elbow"], q1, zero),  # an expected joint missing
    ]
    n_before = len(driver.cmds)
    t_last_valid = driver.cmds[-1][0]
    for msg in bad:
        driver.publish(*msg)
        driver.spin(0.02)
    driver.spin(0.1)

    # no valid state for > stale_timeout: gravity hold at the last valid position, repeated. Every
    # command after the last valid one must be that hold and none may come before the timeout
    # (clock slack 10 %): a command made from a rejected state would be neither. (Under load the
    # bad messages can take longer than the timeout to send, so holds may already have come.)
    assert driver.wait_cmds(n_before + 2, 5.0), "no hold command after the state went stale"
    for t_cmd, tau_cmd in driver.cmds[n_before:n_before + 2]:
        assert t_cmd - t_last_valid >= 0.9 * STALE_MS * 1e-3, "a rejected joint state produced a command"
        np.testing.assert_allclose(tau_cmd, driver.gravity(q1), rtol=1e-9, atol=1e-9,
                                   err_msg="a rejected joint state produced a command")

    # a valid state again: normal control resumes
    driver.publish(names, q1, qd1)
    end = time.monotonic() + 5.0
    while time.monotonic() < end:
        driver.spin(0.02)
        if any(np.allclose(c, driver.expected(q1, qd1, q0), atol=1e-9) for _, c in driver.cmds[n_before + 2:]):
            break
    else:
        raise AssertionError("control did not resume after a valid state")

    assert ctl.stop() == 0
    counters = json.loads(summary.read_text())["counters"]
    assert counters["rejected_non_finite_state"] == 2
    assert counters["rejected_short_message"] == 1
    assert counters["rejected_unknown_names"] == 1
    assert counters["stale_hold"] >= 2
    log = ctl.output()
    assert "joint state rejected (non_finite_state)" in log
    assert "joint states stale" in log


def test_missing_model_runs_analytic_with_max_gains(driver, start_node, tmp_path):
    summary = tmp_path / "summary.json"
    ctl = start_node("computed_torque", {**GAINS, "analytic_std": [0.1], "model_kind": "svdkl",
                                         "model_dir": str(tmp_path / "no_such_model"),
                                         "stale_timeout_ms": 5000.0, "summary_path": str(summary)})
    wait_connected(driver, ctl)
    q0, zero = SPEC.home.copy(), np.zeros(N)
    driver.publish(SPEC.joint_names, q0, zero)
    # the state subscription keeps only the newest message (depth 1): wait before the next one
    assert driver.wait_cmds(1, 10.0)
    q1 = q0 + 0.02
    driver.publish(SPEC.joint_names, q1, zero)
    assert driver.wait_cmds(2, 10.0)
    # K_max (100) for maximal uncertainty, not the K_min an analytic_std of sigma_n would give
    kp_max = 50.0 + (1.0 - math.exp(-3.0)) * 50.0
    expected = driver.gravity(q1) + kp_max * (q0 - q1)
    np.testing.assert_allclose(driver.cmds[1][1], expected, rtol=1e-9, atol=1e-9)
    assert ctl.stop() == 0
    s = json.loads(summary.read_text())
    assert "no_such_model" in s["model_load_error"]
    assert s["counters"]["model_fallback"] == 2
    assert "no usable svdkl model" in ctl.output()


def test_torque_beyond_limits_is_clamped(driver, start_node, tmp_path):
    summary = tmp_path / "summary.json"
    ctl = start_node("computed_torque", {**GAINS, "torque_limits": [5.0], "stale_timeout_ms": 5000.0,
                                         "summary_path": str(summary)})
    wait_connected(driver, ctl)
    driver.publish(SPEC.joint_names, SPEC.home, np.zeros(N))
    assert driver.wait_cmds(1, 10.0)
    g = driver.gravity(SPEC.home)
    np.testing.assert_allclose(driver.cmds[0][1], np.clip(g, -5.0, 5.0), atol=1e-12)
    assert ctl.stop() == 0
    assert json.loads(summary.read_text())["counters"]["clamped_joints"] == int(np.sum(np.abs(g) > 5.0)) > 0


@pytest.mark.parametrize("params,message", [
    ({"k_min": [200.0], "k_max": [100.0]}, "k_min must be <= k_max"),
    ({"k_max": [1.0, 2.0]}, "expected 1 or 7 values"),
    ({"joint_names": ["a", "b"]}, "need 7 distinct names"),
    ({"k_min": [0.0], "k_max": [0.0]}, "parameter 'k_max'"),
    ({"model_kind": "foo"}, "parameter 'model_kind' = 'foo': must be one of"),
    ({"torque_limits": [500.0]}, "at most the URDF's effort limits"),
    ({"reference": "circle"}, "must be one of"),
])
def test_bad_parameters_fail_start_up_precisely(start_node, params, message):
    ctl = start_node("computed_torque", params)
    assert ctl.wait(timeout=30) == 2
    assert message in ctl.output()


def test_following_error_latches_a_stiff_hold_until_a_new_reference(driver, start_node, tmp_path):
    """A joint 0.4 rad from the reference (limit 0.3): the controller latches FAULT and holds the
    position where it tripped - tau = RNEA(q, qd, 0) + K_max (q_trip - q) - K_D,max qd, not the
    pull back to the old reference - until a reference_trajectory message clears it."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    summary = tmp_path / "summary.json"
    ctl = start_node("computed_torque", {**GAINS, "max_tracking_error": [0.3], "stale_timeout_ms": 5000.0,
                                         "summary_path": str(summary)})
    traj_pub = driver.node.create_publisher(JointTrajectory, "reference_trajectory",
                                            QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
    wait_connected(driver, ctl)
    names, zero = list(SPEC.joint_names), np.zeros(N)
    q0 = SPEC.home.copy()
    driver.publish(names, q0, zero)
    assert driver.wait_cmds(1, 10.0)
    q_trip = q0.copy()
    q_trip[3] += 0.4                                  # beyond the 0.3 rad limit
    driver.publish(names, q_trip, zero)
    assert driver.wait_cmds(2, 10.0)
    np.testing.assert_allclose(driver.cmds[1][1], driver.gravity(q_trip), rtol=1e-9, atol=1e-9)
    q3 = q_trip + 0.01                                # the hold pulls back to q_trip, not to q0
    driver.publish(names, q3, zero)
    assert driver.wait_cmds(3, 10.0)
    np.testing.assert_allclose(driver.cmds[2][1], driver.expected(q3, zero, q_trip), rtol=1e-9, atol=1e-9)

    end = time.monotonic() + 10.0                     # a new reference clears the fault
    while traj_pub.get_subscription_count() == 0 and time.monotonic() < end:
        driver.spin(0.05)
    msg = JointTrajectory()
    msg.joint_names = names
    msg.points = [JointTrajectoryPoint(positions=list(map(float, q0)))]
    msg.points[0].time_from_start.sec = 2
    traj_pub.publish(msg)
    end = time.monotonic() + 10.0
    while "fault cleared" not in ctl.output() and time.monotonic() < end:
        driver.spin(0.05)
    driver.publish(names, q3, zero)                   # the new spline starts at the hold position
    assert driver.wait_cmds(4, 10.0)
    assert ctl.stop() == 0
    s = json.loads(summary.read_text())
    assert s["counters"]["tracking_fault"] == 1
    log = ctl.output()
    assert "tracking error beyond max_tracking_error" in log and "following-error fault cleared" in log
