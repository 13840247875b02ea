"""The robot-table entry a data set's joint names belong to, and its joint ranges and velocity
limits (for judging whether data excite every joint: ``bags/excitation.py``; the online learner's
``robot: auto``). Here, in datasets/,
because bags/ may not import core/ (test_layering) and datasets/ may."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def robot_for_joints(joint_names: Sequence[str]) -> str | None:
    """The robot table entry whose joints are exactly ``joint_names`` (any order), or None."""
    from dynlearn_ros.core.robots import robot_names, robot_spec  # noqa: PLC0415 - lazy: the robot table reads URDFs

    want = sorted(joint_names)
    for name in robot_names():
        try:
            if sorted(robot_spec(name).joint_names) == want:
                return name
        except Exception:  # noqa: BLE001 - an entry whose URDF is not installed here cannot be the one
            continue
    return None


def robot_limits(joint_names: Sequence[str]) -> tuple[str | None, np.ndarray | None, np.ndarray | None]:
    """(robot name, range (n,) rad, velocity limit (n,) rad/s) of the robot-table entry whose
    joints are exactly ``joint_names`` (:func:`robot_for_joints`; the limits follow
    ``joint_names``' order), else (None, None, None)."""
    from dynlearn_ros.core.robots import robot_spec  # noqa: PLC0415 - lazy, as above

    robot = robot_for_joints(joint_names)
    if robot is None:
        return None, None, None
    spec = robot_spec(robot)
    idx = [spec.joint_names.index(nm) for nm in joint_names]
    return robot, (spec.upper - spec.lower)[idx], spec.velocity_limits[idx]
