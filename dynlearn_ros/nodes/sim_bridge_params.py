"""The ``sim_bridge`` node's parameters as a spec table (:class:`dynlearn_ros.core.config.ParamSpec`)
and their validation into plain values. Only ``payload_kg`` and ``stats_path`` change at run time;
the rest build the plant at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dynlearn_ros.core.config import ConfigError, ParamSpec
from dynlearn_ros.core.robots import ROBOTS, robot_spec

STEPPING = ("lockstep", "realtime")
_PLANT = "the PyBullet plant and the publishers are built at start-up"

BRIDGE_SPEC: tuple[ParamSpec, ...] = (
    ParamSpec("robot", "string", "iiwa", "robot model (pybullet_data URDF)", choices=ROBOTS,
              dynamic=False, reason=_PLANT),
    ParamSpec("rate_hz", "double", 1000.0, "physics and publish rate, Hz (one step per tick)", lo=1.0,
              hi=10000.0, dynamic=False, reason=_PLANT),
    ParamSpec("stepping", "string", "lockstep", "lockstep: one step per command; realtime: wall-clock rate",
              choices=STEPPING, dynamic=False, reason=_PLANT),
    ParamSpec("lockstep_timeout_ms", "double", 500.0, "lockstep: after the first command, step holding "
              "the last command if none arrives within this", lo=1.0, hi=600000.0, dynamic=False, reason=_PLANT),
    ParamSpec("command_timeout_ms", "double", 20.0, "realtime: no valid command for this long (plant time: "
              "wall clock while the bridge keeps up) "
              "-> the brakes hold the arm until commands return (lockstep: lockstep_timeout_ms)", lo=1.0,
              hi=600000.0, dynamic=False, reason=_PLANT),
    ParamSpec("on_command_loss", "string", "brake", "what the plant does when commands stop (see "
              "command_timeout_ms): brake (like FRI / libfranka stopping the arm) or hold_last (keep "
              "applying the last torque: the unsafe behaviour of a naive simulator, for experiments)",
              choices=("brake", "hold_last"), dynamic=False, reason=_PLANT),
    ParamSpec("joint_names", "string_array", None, "names published and expected instead of the URDF "
              "names, same order; empty = URDF names", optional=True, dynamic_typing=True, dynamic=False,
              reason=_PLANT),
    ParamSpec("initial_positions", "double_array", None, "start position, rad, n values; empty = the "
              "robot's home", optional=True, dynamic_typing=True, dynamic=False, reason=_PLANT),
    ParamSpec("friction_viscous", "double_array", 0.0, "unmodelled viscous friction b, N*m*s/rad: one "
              "value or n", per_joint=True, dynamic_typing=True, dynamic=False, reason=_PLANT),
    ParamSpec("friction_coulomb", "double_array", 0.0, "unmodelled Coulomb friction f_c, N*m: one value "
              "or n", per_joint=True, dynamic_typing=True, dynamic=False, reason=_PLANT),
    ParamSpec("coulomb_velocity_eps", "double", 0.1, "tanh smoothing velocity of the Coulomb term, rad/s",
              lo=1e-4, hi=100.0, dynamic=False, reason=_PLANT),
    ParamSpec("payload_kg", "double", 0.0, "point mass at the end-effector link's centre of mass, kg; "
              "settable at run time (also ~/payload_kg)", lo=0.0, hi=100.0),
    ParamSpec("duration_s", "double", 0.0, "sim seconds after which the node exits with code 0; 0 = forever",
              lo=0.0, hi=1e9, dynamic=False, reason="the run length is fixed when stepping starts"),
    ParamSpec("stats_path", "string", "", "JSON file written at exit with counters and round-trip stats; "
              "empty = none"),
    ParamSpec("velocity_stop_fraction", "double", 0.9, "joint-velocity monitoring like a real arm's: a joint "
              "whose velocity one step ahead (at its present acceleration) reaches this fraction of its velocity "
              "limit (config/robots.yaml) brakes the arm until a command answers a braked state; 0 = off", lo=0.0, hi=1.0,
              dynamic=False, reason="the robot's safety configuration is fixed while it runs"),
    ParamSpec("trace_path", "string", "", ".npz written at exit with every step's wall time, watchdog flags "
              "and joint velocities (dynlearn_ros/sim/trace.py); empty = none",
              dynamic=False, reason="the trace is set up when the node starts"),
)


def validate_bridge(values: Mapping[str, Any]) -> dict:
    """The bridge's parameters checked: a dict of plain values (``joint_names`` tuple,
    ``initial_positions`` and the friction (n,) arrays); :class:`ConfigError` naming the
    parameter and what it must be otherwise."""
    table = {s.name: s for s in BRIDGE_SPEC}
    raw = {s.name: s.default_value(None) for s in BRIDGE_SPEC} | dict(values)
    robot = table["robot"].check(raw["robot"], 0)
    spec = robot_spec(robot)
    n = spec.n
    cfg = {name: table[name].check(raw[name], n) for name in table}
    names = cfg["joint_names"]
    if names is None:
        cfg["joint_names"] = spec.joint_names
    elif len(names) != n or len(set(names)) != n:
        raise ConfigError(f"parameter 'joint_names': need {n} distinct names (URDF order "
                          f"{list(spec.joint_names)}), got {list(names)}")
    q0 = cfg["initial_positions"]
    if q0 is None:
        cfg["initial_positions"] = spec.home.copy()
    else:
        if q0.size != n:
            raise ConfigError(f"parameter 'initial_positions': need {n} values (rad), got {q0.size}")
        for j in range(n):
            if not spec.lower[j] <= q0[j] <= spec.upper[j]:
                raise ConfigError(f"parameter 'initial_positions': joint {spec.joint_names[j]} = {q0[j]} rad is "
                                  f"outside its limits [{spec.lower[j]}, {spec.upper[j]}]")
        cfg["initial_positions"] = q0.copy()
    for name in ("friction_viscous", "friction_coulomb"):
        cfg[name] = cfg[name].copy()
    path = cfg["stats_path"]
    if path and not Path(path).expanduser().resolve().parent.is_dir():
        raise ConfigError(f"parameter 'stats_path' = {path!r}: its directory does not exist")
    path = cfg["trace_path"]
    if path and not Path(path).expanduser().resolve().parent.is_dir():
        raise ConfigError(f"parameter 'trace_path' = {path!r}: its directory does not exist")
    return cfg
