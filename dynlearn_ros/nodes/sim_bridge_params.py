"""The ``sim_bridge`` node's parameters: declared with descriptors, then validated into plain values.

Kept apart from the node so the node file stays about ROS I/O and stepping.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor
from rclpy.node import Node

from dynlearn_ros.core.robots import ROBOTS, robot_spec
from dynlearn_ros.nodes.params import ParameterError
from dynlearn_ros.sim.plant import per_joint

STEPPING = ("lockstep", "realtime")


def _descriptor(description: str, lo: float | None = None, hi: float | None = None, constraints: str = "",
                read_only: bool = True, dynamic: bool = False) -> ParameterDescriptor:
    d = ParameterDescriptor(description=description, additional_constraints=constraints, read_only=read_only,
                            dynamic_typing=dynamic)
    if lo is not None:
        d.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
    return d


def declare_bridge_parameters(node: Node) -> None:
    """Declare the bridge's parameters (with descriptors) on ``node``."""
    dec = node.declare_parameter
    dec("robot", "iiwa", _descriptor("robot model (pybullet_data URDF)", constraints=" | ".join(ROBOTS)))
    dec("rate_hz", 1000.0, _descriptor("physics and publish rate, Hz (one step per tick)", 1.0, 10000.0))
    dec("stepping", "lockstep", _descriptor("lockstep: one step per command; realtime: wall-clock rate",
                                            constraints=" | ".join(STEPPING)))
    dec("lockstep_timeout_ms", 500.0, _descriptor(
        "lockstep: after the first command, step holding the last command if none arrives within this", 1.0, 600000.0))
    dec("joint_names", None, _descriptor(
        "names published and expected instead of the URDF names, same order; empty = URDF names", dynamic=True))
    dec("initial_positions", None, _descriptor("start position, rad, n values; empty = the robot's home",
                                               dynamic=True))
    dec("friction_viscous", 0.0, _descriptor("unmodelled viscous friction b, N*m*s/rad: one value or n",
                                             dynamic=True))
    dec("friction_coulomb", 0.0, _descriptor("unmodelled Coulomb friction f_c, N*m: one value or n", dynamic=True))
    dec("coulomb_velocity_eps", 0.1, _descriptor("tanh smoothing velocity of the Coulomb term, rad/s", 1e-4, 100.0))
    dec("payload_kg", 0.0, _descriptor(
        "point mass at the end-effector link's centre of mass, kg; settable at run time (also ~/payload_kg)",
        0.0, 100.0, read_only=False))
    dec("duration_s", 0.0, _descriptor("sim seconds after which the node exits with code 0; 0 = forever",
                                       0.0, 1e9))
    dec("stats_path", "", _descriptor("JSON file written at exit with counters and round-trip stats; empty = none"))


def validated_bridge_parameters(node: Node) -> dict:
    """The declared parameters, checked: a dict of plain values; :class:`ParameterError` naming
    the parameter and what it must be otherwise."""
    g = node.get_parameter
    cfg: dict = {}
    robot = g("robot").value
    if robot not in ROBOTS:
        raise ParameterError(f"parameter 'robot' = {robot!r}: must be one of {list(ROBOTS)}")
    cfg["robot"] = robot
    spec = robot_spec(robot)
    n = spec.n
    stepping = g("stepping").value
    if stepping not in STEPPING:
        raise ParameterError(f"parameter 'stepping' = {stepping!r}: must be one of {list(STEPPING)}")
    cfg["stepping"] = stepping
    for name in ("rate_hz", "lockstep_timeout_ms", "coulomb_velocity_eps", "payload_kg", "duration_s"):
        v = g(name).value
        if not isinstance(v, float) or not math.isfinite(v):
            raise ParameterError(f"parameter '{name}' = {v!r}: must be a finite float")
        cfg[name] = v
    names = g("joint_names").value
    if names is None or len(names) == 0:
        cfg["joint_names"] = spec.joint_names
    else:
        if not isinstance(names, list | tuple) or not all(isinstance(s, str) and s for s in names):
            raise ParameterError(f"parameter 'joint_names' = {names!r}: must be a list of non-empty strings")
        if len(names) != n or len(set(names)) != n:
            raise ParameterError(f"parameter 'joint_names': need {n} distinct names (URDF order "
                                 f"{list(spec.joint_names)}), got {list(names)}")
        cfg["joint_names"] = tuple(names)
    q0 = g("initial_positions").value
    if q0 is None or (isinstance(q0, list | tuple) and len(q0) == 0):
        cfg["initial_positions"] = spec.home.copy()
    else:
        arr = _float_array("initial_positions", q0)
        if arr.size != n:
            raise ParameterError(f"parameter 'initial_positions': need {n} values (rad), got {arr.size}")
        outside = np.nonzero((arr < spec.lower) | (arr > spec.upper))[0]
        if outside.size:
            j = int(outside[0])
            raise ParameterError(f"parameter 'initial_positions': joint {spec.joint_names[j]} = {arr[j]} rad is "
                                 f"outside its limits [{spec.lower[j]}, {spec.upper[j]}]")
        cfg["initial_positions"] = arr
    for name in ("friction_viscous", "friction_coulomb"):
        arr = _float_array(name, g(name).value)
        try:
            cfg[name] = per_joint(arr, n, f"'{name}'")
        except ValueError as exc:
            raise ParameterError(f"parameter {exc}") from exc
    path = g("stats_path").value
    if not isinstance(path, str):
        raise ParameterError(f"parameter 'stats_path' = {path!r}: must be a string")
    if path and not Path(path).expanduser().resolve().parent.is_dir():
        raise ParameterError(f"parameter 'stats_path' = {path!r}: its directory does not exist")
    cfg["stats_path"] = path
    return cfg

def _float_array(name: str, value) -> np.ndarray:
    vals = value if isinstance(value, list | tuple) else [value]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals):
        raise ParameterError(f"parameter '{name}' = {value!r}: must be a number or a list of numbers")
    arr = np.asarray(vals, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ParameterError(f"parameter '{name}' = {value!r}: values must be finite")
    return arr
