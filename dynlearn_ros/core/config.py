"""Node parameters as data: one spec table per node, validated into a frozen configuration.

A :class:`ParamSpec` says everything about one parameter: its ROS type, default (a value, or a
function of the robot: :class:`RobotContext`), range or choices, per-joint broadcast rule,
description, and whether it may change at run time (``dynamic``) or needs a restart (``reason``
says why). The ROS side (:mod:`dynlearn_ros.nodes.params`) declares descriptors from the table
and validates every start-up value and every ``ros2 param set`` through :func:`validate`; the
in-process scenario takes the same defaults. Nothing here imports rclpy.

Types: ``double``, ``int``, ``bool``, ``string``, ``double_array``, ``string_array``. A
``per_joint`` double array takes 1 value (broadcast to every joint) or n values (URDF order).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from dynlearn_ros.core.control import DEFAULT_MAX_TRACKING_ERROR
from dynlearn_ros.core.inverse_model import MODEL_KINDS
from dynlearn_ros.core.robots import ROBOTS, RobotSpec, robot_spec
from dynlearn_ros.core.schedule import GainSchedule, default_gains
from dynlearn_ros.core.trajectories import pick_place_waypoints

REFERENCES = ("sine", "pick_place", "hold")
TYPES = ("double", "int", "bool", "string", "double_array", "string_array")


class ConfigError(ValueError):
    """A parameter value that fails validation; the message names the parameter."""


@dataclass(frozen=True)
class RobotContext:
    """What robot-dependent defaults and checks need: the robot's spec and the joint inertias
    ``inertia`` (n,) kg*m^2 (diag M(home) of the analytic model's URDF, clipped at 1e-4)."""

    spec: RobotSpec
    inertia: np.ndarray

    @property
    def n(self) -> int:
        return self.spec.n


def robot_context(robot: str, urdf_path: str = "") -> RobotContext:
    """The :class:`RobotContext` of ``robot`` with the URDF ``urdf_path`` (empty: the packaged one)."""
    from dynlearn_ros.core.analytic import RigidBodyModel

    if robot not in ROBOTS:
        raise ConfigError(f"parameter 'robot' = {robot!r}: must be one of {list(ROBOTS)}")
    spec = robot_spec(robot)
    rbd = RigidBodyModel(urdf_path or spec.urdf_path, spec.joint_names)
    inertia = np.clip(np.diag(rbd.mass_matrix(spec.home)), 1e-4, None)
    inertia.setflags(write=False)
    return RobotContext(spec, inertia)


@dataclass(frozen=True)
class ParamSpec:
    """One parameter. ``default``: a value or ``f(ctx: RobotContext) -> value``; ``lo``/``hi``:
    inclusive bounds of a number or of every array element; ``choices``: allowed strings;
    ``per_joint``: a double array of 1 or n values; ``dynamic``: settable at run time, else
    ``reason`` says why a restart is needed."""

    name: str
    type: str
    default: Any
    description: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()
    per_joint: bool = False
    dynamic: bool = True
    reason: str = ""
    optional: bool = False       # None / empty allowed (validates to None: "use the robot's")
    dynamic_typing: bool = False  # ROS may hold a number or a list (a per-joint scalar)

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"{self.name}: unknown type {self.type}")
        if not self.dynamic and not self.reason:
            raise ValueError(f"{self.name}: a read-only parameter needs its reason")

    def default_value(self, ctx: RobotContext | None) -> Any:
        """The default as a plain ROS-typed value (lists, not arrays)."""
        v = self.default(ctx) if callable(self.default) else self.default
        if isinstance(v, np.ndarray):
            v = v.tolist()
        if isinstance(v, tuple):
            v = list(v)
        return v

    def constraints(self) -> str:
        """Text for the descriptor's additional_constraints."""
        parts = []
        if self.choices:
            parts.append("one of: " + ", ".join(self.choices))
        if self.per_joint:
            parts.append("1 value (all joints) or one per joint")
        if self.type == "double_array" and (self.lo is not None or self.hi is not None):
            parts.append(f"each in [{self.lo}, {self.hi}]")
        parts.append("settable at run time" if self.dynamic else f"read-only at run time (restart needed): {self.reason}")
        return "; ".join(parts)

    def check(self, value: Any, n: int) -> Any:
        """``value`` converted to its Python form (arrays read-only (n,) for per-joint ones);
        :class:`ConfigError` naming this parameter otherwise."""
        name, t = self.name, self.type
        if self.optional and (value is None or (isinstance(value, list | tuple) and len(value) == 0)):
            return None
        if self.per_joint and isinstance(value, int | float) and not isinstance(value, bool):
            value = [value]
        try:
            if t == "double":
                if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                    raise ConfigError("must be a finite number")
                value = float(value)
                self._range(value)
            elif t == "int":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ConfigError("must be an integer")
                self._range(value)
            elif t == "bool":
                if not isinstance(value, bool):
                    raise ConfigError("must be true or false")
            elif t == "string":
                if not isinstance(value, str):
                    raise ConfigError("must be a string")
                if self.choices and value not in self.choices:
                    raise ConfigError(f"must be one of {list(self.choices)}")
            elif t == "string_array":
                if isinstance(value, str) or not all(isinstance(s, str) and s for s in value):
                    raise ConfigError("must be a list of non-empty strings")
                value = tuple(value)
            else:  # double_array
                if isinstance(value, str | bool) or not all(
                        isinstance(v, int | float) and not isinstance(v, bool) for v in value):
                    raise ConfigError("must be a list of numbers")
                arr = np.asarray(list(value), dtype=np.float64)
                if not np.all(np.isfinite(arr)):
                    raise ConfigError(f"values must be finite, got {arr.tolist()}")
                if self.per_joint:
                    if arr.size == 1:
                        arr = np.full(n, arr[0])
                    if arr.shape != (n,):
                        raise ConfigError(f"expected 1 or {n} values (one per joint), got {arr.size}")
                if arr.size:
                    self._range(float(arr.min()), float(arr.max()))
                arr.setflags(write=False)
                value = arr
        except TypeError:
            raise ConfigError(f"parameter '{name}' = {value!r}: wrong type, expected {t}") from None
        except ConfigError as exc:
            raise ConfigError(f"parameter '{name}' = {_short(value)}: {exc}") from None
        return value

    def _range(self, lo_v: float, hi_v: float | None = None) -> None:
        hi_v = lo_v if hi_v is None else hi_v
        if self.lo is not None and lo_v < self.lo:
            raise ConfigError(f"must be >= {self.lo}")
        if self.hi is not None and hi_v > self.hi:
            raise ConfigError(f"must be <= {self.hi}")


def _short(value: Any) -> str:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


_RESTART = "the analytic model, joint map and subscriptions are built once at start-up"

#: the computed_torque node's parameters (URDF joint order for every per-joint array)
COMPUTED_TORQUE_SPEC: tuple[ParamSpec, ...] = (
    ParamSpec("robot", "string", "iiwa", "robot whose URDF gives the analytic model and defaults",
              choices=ROBOTS, dynamic=False, reason=_RESTART),
    ParamSpec("urdf_path", "string", "", "URDF for the analytic model; empty: the packaged one for "
              "'robot' (pybullet_data)", dynamic=False, reason=_RESTART),
    ParamSpec("joint_names", "string_array", lambda ctx: ctx.spec.joint_names, "joint names as they "
              "appear in joint_states, in URDF order (a real driver's names, e.g. fr3_joint1..7 or "
              "lbr_A1..A7)", dynamic=False, reason=_RESTART),
    ParamSpec("control_period_s", "double", 0.001, "nominal control period (s): the reference is also "
              "sampled dt ahead for the inverse model", lo=1e-4, hi=0.1, dynamic=False,
              reason="the models' query and the schedule's envelope are built for one period"),
    ParamSpec("stale_timeout_ms", "double", 50.0, "a joint state older than this (ms, wall clock) is "
              "stale: the controller sends the gravity hold instead", lo=1.0, hi=10000.0),
    ParamSpec("command_timeout_ms", "double", 20.0, "the robot's command watchdog (ms): the longest it "
              "runs on one command before it brakes (sim_bridge's command_timeout_ms). A late state's "
              "hold is counted up to it and the reference clock pauses for the rest of a longer gap "
              "(docs/safety.md, realtime under load)", lo=1.0, hi=10000.0),
    ParamSpec("settle_s", "double", 0.0, "seconds after start excluded from the tracking statistics "
              "in the summary", lo=0.0, hi=3600.0, dynamic=False,
              reason="the statistics window is fixed when the run starts"),
    ParamSpec("analytic_std", "double_array", [10.0], "predictive std the analytic model reports "
              "(N*m); it sets the analytic model's gains through the schedule", lo=0.0, hi=1e6,
              per_joint=True),
    ParamSpec("k_min", "double_array", lambda ctx: default_gains(ctx.inertia)[0], "stiffness at full "
              "confidence, per joint (N*m/rad)", lo=0.0, hi=1e6, per_joint=True),
    ParamSpec("k_max", "double_array", lambda ctx: default_gains(ctx.inertia)[1], "stiffness at "
              "maximal uncertainty, per joint (N*m/rad); > 0 and >= k_min", lo=0.0, hi=1e6, per_joint=True),
    ParamSpec("zeta", "double_array", lambda ctx: default_gains(ctx.inertia)[2], "K_D = zeta * "
              "sqrt(K_P); damping ratio = zeta / (2 sqrt(inertia))", lo=0.0, hi=1e4, per_joint=True),
    ParamSpec("sigma_n", "double_array", [0.1], "std at which K_P = K_min (N*m), per joint",
              lo=0.0, hi=1e6, per_joint=True),
    ParamSpec("sigma_f", "double_array", [10.0], "std at which K_P reaches its top (N*m), per joint; "
              "> sigma_n", lo=0.0, hi=1e6, per_joint=True),
    ParamSpec("schedule_c", "double_array", [3.0], "schedule steepness C (Eq. 8), > 0", lo=1e-6,
              hi=100.0, per_joint=True),
    ParamSpec("max_tracking_error", "double_array", [DEFAULT_MAX_TRACKING_ERROR], "following-error "
              "limit per joint (rad): beyond it the controller latches a stiff hold at that position "
              "(analytic model, K_max) until a new reference_trajectory arrives; 0 = no limit",
              lo=0.0, hi=100.0, per_joint=True),
    ParamSpec("sigma_release_s", "double", 0.0, "release time constant (s) of the std envelope the "
              "schedule reads: a rising std raises the gains at once, a falling one lowers them with "
              "this time constant; 0 = the raw std", lo=0.0, hi=60.0),
    ParamSpec("residual_window_s", "double", 0.0, "time constant (s) of the realized-error estimate "
              "(core/residual.py): the schedule reads max(model std, RMS of the filtered innovation); "
              "0 = off (the model's std alone, as in the closed-loop results); 0.1 derived for a "
              "payload step", lo=0.0, hi=60.0, dynamic=False,
              reason="the estimator is built with the controller"),
    ParamSpec("residual_filter_s", "double", 0.005, "low-pass time constant (s) of the innovation "
              "before it is squared (velocity-noise suppression; adds this much detection delay)",
              lo=0.0, hi=1.0, dynamic=False, reason="the estimator is built with the controller"),
    ParamSpec("ff_blend_s", "double", 0.0, "blend a learned model's feed-forward in from the analytic "
              "one over this many seconds (min-jerk) after it takes over: the first valid state and the "
              "end of a following-error fault (core/ff_blend.py); 0 = at once; the analytic model is "
              "never blended", lo=0.0, hi=60.0, dynamic=False,
              reason="the blend runs when the learned model takes over; set it before the start"),
    ParamSpec("payload_margin_kg", "double", 0.0, "unmodelled end-effector mass change (kg) every "
              "joint must hold within half its max_tracking_error whatever the schedule does: K_P >= "
              "margin * G_j / (max_tracking_error_j / 2), G_j the largest gravity torque per kg at joint "
              "j (URDF); raises k_min and k_max where they are lower (core/gain_floor.py); 0 = off; refused "
              "when margin * G_j exceeds a joint's torque limit (default limits: iiwa 19.5 kg, Panda 7.1 kg)",
              lo=0.0, hi=100.0),
    ParamSpec("gain_mode", "string", "scheduled", "scheduled: Eq. 7-8; fixed: K_P = k_max",
              choices=("scheduled", "fixed")),
    ParamSpec("use_model_sigma_bounds", "bool", True, "take sigma_n, sigma_f from the learned model's "
              "metadata when it has them"),
    ParamSpec("torque_limits", "double_array", lambda ctx: ctx.spec.effort_limits, "symmetric torque "
              "limits (N*m), > 0 and at most the URDF's effort limits; default: the manufacturer's "
              "limits of the robot's default variant (config/robots.yaml)", lo=0.0, hi=1e4, per_joint=True),
    ParamSpec("torque_rate_limit", "double_array", [0.0], "torque-rate limit (N*m/s), 1 value (all "
              "joints) or one per joint: each command moves at most this * control_period_s from the "
              "previous one, after the clamp to torque_limits; 0 on a joint or empty = no limit; with a "
              "real driver the launch passes the robot variant's (config/robots.yaml)", lo=0.0, hi=1e7,
              per_joint=True, optional=True),
    ParamSpec("model_kind", "string", "analytic", "feed-forward model; a change loads the model off "
              "the control path and swaps it in when it passes its checks", choices=MODEL_KINDS),
    ParamSpec("model_dir", "string", "", "learned model directory (model.onnx + metadata.json); "
              "relative paths are under the package's models/; a change loads it as model_kind does"),
    ParamSpec("model_loader", "string", "process", "where a model announced or set at run time is "
              "loaded and checked: 'process' (a loader process started with the controller does the parse, "
              "scans, signature and golden replay; the controller binds the checked arrays and checks their "
              "hashes, finiteness and first golden step; the loader's failures refuse that load, restart it, "
              "and after repeated ones the controller loads itself) or 'thread' (all of it in the "
              "controller's worker thread)", choices=("process", "thread"), dynamic=False,
              reason="the loader process is started (or not) with the controller, before its first tick"),
    ParamSpec("reference", "string", "sine", "built-in reference (a message on reference_trajectory "
              "replaces it)", choices=REFERENCES, dynamic=False,
              reason="the built-in reference starts at the first joint state; send a "
              "reference_trajectory message to change the motion"),
    ParamSpec("sine_amplitude", "double_array", [0.25], "sine amplitude per joint (rad)", lo=0.0,
              hi=3.2, per_joint=True, dynamic=False, reason="part of the built-in reference"),
    ParamSpec("sine_freq_hz", "double_array", lambda ctx: np.linspace(0.25, 0.55, ctx.n), "sine "
              "frequency per joint (Hz)", lo=0.0, hi=50.0, per_joint=True, dynamic=False,
              reason="part of the built-in reference"),
    ParamSpec("ramp_s", "double", 1.0, "sine amplitude fade-in (s)", lo=0.0, hi=60.0, dynamic=False,
              reason="part of the built-in reference"),
    ParamSpec("waypoints", "double_array",
              lambda ctx: pick_place_waypoints(ctx.spec.home, ctx.spec.lower, ctx.spec.upper).ravel(),
              "pick-and-place waypoints, row-major (rows of one value per joint, rad); visited from "
              "the start pose and looped", dynamic=False, reason="part of the built-in reference"),
    ParamSpec("move_s", "double", 2.0, "duration of one waypoint move (s)", lo=0.05, hi=600.0,
              dynamic=False, reason="part of the built-in reference"),
    ParamSpec("dwell_s", "double", 0.5, "rest at each waypoint (s)", lo=0.0, hi=600.0, dynamic=False,
              reason="part of the built-in reference"),
    ParamSpec("status_decimation", "int", 10, "publish ~/status every N ticks (0: never)", lo=0,
              hi=100000),
    ParamSpec("summary_path", "string", "", "write a JSON summary here at exit; its directory must "
              "exist"),
    ParamSpec("time_source", "string", "stamp", "time base of the reference: the joint state's header "
              "stamp (sim time from the bridge, or a driver's clock) or its arrival time (for drivers "
              "that do not stamp)", choices=("stamp", "arrival"), dynamic=False,
              reason="switching clocks would jump the reference time"),
    ParamSpec("state_qos", "string", "reliable", "QoS of the joint_states subscription",
              choices=("reliable", "sensor_data"), dynamic=False,
              reason="a subscription's QoS is fixed when it is created"),
)


def spec_table(specs: Sequence[ParamSpec]) -> dict[str, ParamSpec]:
    return {s.name: s for s in specs}


def spec_defaults(specs: Sequence[ParamSpec], ctx: RobotContext | None) -> dict[str, Any]:
    """{name: default} as plain values (what the node declares and the scenarios start from)."""
    return {s.name: s.default_value(ctx) for s in specs}


@dataclass(frozen=True)
class ControllerConfig:
    """The computed_torque node's validated parameters. Per-joint arrays are read-only (n,)
    float64 in URDF joint order; ``waypoints`` is (m, n) rad; times in s (``stale_timeout_s``
    is the parameter ``stale_timeout_ms`` / 1000, ``command_timeout_s`` likewise)."""

    robot: str
    urdf_path: str
    joint_names: tuple[str, ...]
    control_period_s: float
    stale_timeout_s: float
    command_timeout_s: float
    settle_s: float
    analytic_std: np.ndarray
    k_min: np.ndarray
    k_max: np.ndarray
    zeta: np.ndarray
    sigma_n: np.ndarray
    sigma_f: np.ndarray
    schedule_c: np.ndarray
    max_tracking_error: np.ndarray
    sigma_release_s: float
    residual_window_s: float
    residual_filter_s: float
    ff_blend_s: float
    payload_margin_kg: float
    gain_mode: str
    use_model_sigma_bounds: bool
    torque_limits: np.ndarray
    torque_rate_limit: np.ndarray | None   # (n,) N*m/s; 0 on a joint: no limit there; None (empty): none
    model_kind: str
    model_dir: str
    model_loader: str
    reference: str
    sine_amplitude: np.ndarray
    sine_freq_hz: np.ndarray
    ramp_s: float
    waypoints: np.ndarray
    move_s: float
    dwell_s: float
    status_decimation: int
    summary_path: str
    time_source: str
    state_qos: str
    #: the raw parameter values ({name: ROS value}) this config was validated from (read-only)
    params: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.joint_names)


def validate(values: Mapping[str, Any], ctx: RobotContext,
             specs: Sequence[ParamSpec] = COMPUTED_TORQUE_SPEC) -> ControllerConfig:
    """Check a full set of computed_torque parameters (missing ones take their defaults) and
    return the frozen :class:`ControllerConfig`; :class:`ConfigError` naming the first bad
    parameter otherwise. ``ctx`` must be the context of ``values['robot']``."""
    table = spec_table(specs)
    unknown = set(values) - set(table)
    if unknown:
        raise ConfigError(f"unknown parameters {sorted(unknown)}")
    n = ctx.n
    raw = {**spec_defaults(specs, ctx), **values}
    v = {name: table[name].check(raw[name], n) for name in table}
    if v["robot"] != ctx.spec.name:
        raise ConfigError(f"parameter 'robot' = {v['robot']!r}: the configuration was built for {ctx.spec.name!r}")
    names = v["joint_names"]
    if len(names) != n or len(set(names)) != n:
        raise ConfigError(f"parameter 'joint_names': need {n} distinct names, got {list(names)}")
    if np.any(v["k_max"] <= 0):
        raise ConfigError(f"parameter 'k_max' = {v['k_max'].tolist()}: must be > 0 on every joint "
                          "(a zero stiffness at maximal uncertainty leaves the joint limp)")
    try:
        GainSchedule(k_min=v["k_min"], k_max=v["k_max"], sigma_n=v["sigma_n"], sigma_f=v["sigma_f"],
                     c=v["schedule_c"], zeta=v["zeta"])
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    tau = v["torque_limits"]
    if np.any(tau <= 0) or np.any(tau > ctx.spec.urdf_effort_limits):
        raise ConfigError(f"parameter 'torque_limits' = {tau.tolist()}: must be > 0 and at most the "
                          f"URDF's effort limits {ctx.spec.urdf_effort_limits.tolist()} (N*m)")
    wp = v["waypoints"]
    if wp.size == 0 or wp.size % n:
        raise ConfigError(f"parameter 'waypoints': need a non-empty multiple of {n} values, got {wp.size}")
    wp = wp.reshape(-1, n)
    if v["model_kind"] != "analytic" and not v["model_dir"]:
        raise ConfigError(f"parameter 'model_dir': model_kind '{v['model_kind']}' needs a model directory")
    v["waypoints"] = wp
    summary = v["summary_path"]
    if summary and not Path(summary).expanduser().resolve().parent.is_dir():
        raise ConfigError(f"parameter 'summary_path' = {summary!r}: its directory does not exist")
    v["stale_timeout_s"] = 1e-3 * v.pop("stale_timeout_ms")
    v["command_timeout_s"] = 1e-3 * v.pop("command_timeout_ms")
    frozen = {k: (val.tolist() if isinstance(val, np.ndarray) else val) for k, val in raw.items()}
    return ControllerConfig(**v, params=MappingProxyType(frozen))


def changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """{name: (old, new)} of the values that differ (arrays compared by value)."""
    out = {}
    for k, nv in new.items():
        ov = old.get(k)
        if isinstance(ov, list | tuple | np.ndarray) or isinstance(nv, list | tuple | np.ndarray):
            same = np.array_equal(np.asarray(ov, dtype=object), np.asarray(nv, dtype=object))
        else:
            same = ov == nv
        if not same:
            out[k] = (ov, nv)
    return out
