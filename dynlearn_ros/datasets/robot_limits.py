"""The robot-table entry a data set's joint names belong to, and its joint ranges and velocity
limits (for judging whether data excite every joint: ``bags/excitation.py``). Here, in datasets/,
because bags/ may not import core/ (test_layering) and datasets/ may."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def robot_limits(joint_names: Sequence[str]) -> tuple[str | None, np.ndarray | None, np.ndarray | None]:
    """(robot name, range (n,) rad, velocity limit (n,) rad/s) of the robot-table entry whose
    joints are exactly ``joint_names`` (in any order: the limits follow ``joint_names``), else
    (None, None, None)."""
    from dynlearn_ros.core.robots import robot_names, robot_spec  # noqa: PLC0415 - lazy: the robot table reads URDFs

    names = tuple(joint_names)
    for robot in robot_names():
        try:
            spec = robot_spec(robot)
        except Exception:  # noqa: BLE001 - a robot whose URDF is not installed cannot match
            continue
        if set(spec.joint_names) == set(names) and len(spec.joint_names) == len(names):
            idx = [spec.joint_names.index(nm) for nm in names]
            return robot, (spec.upper - spec.lower)[idx], spec.velocity_limits[idx]
    return None, None, None
