"""The rclpy side of the parameter specs (:mod:`dynlearn_ros.core.config`) shared by every node:
descriptors from a spec, declaration, the one set-parameters mechanism; the executor; atomic
JSON summaries."""

from __future__ import annotations

import array
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import rclpy
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter

from dynlearn_ros.core.config import ConfigError, ParamSpec, RobotContext


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """The ROS descriptor of ``spec``: description, range, and in additional_constraints the
    choices, the per-joint rule and whether it is settable at run time (or why not).

    Run-time-fixed parameters are refused by :func:`on_set_parameters` with their reason (the
    descriptor's read_only flag would make rclpy refuse them first, without it)."""
    desc = ParameterDescriptor(description=spec.description, additional_constraints=spec.constraints(),
                               dynamic_typing=spec.dynamic_typing)
    if spec.lo is not None and spec.hi is not None and spec.type == "double":
        desc.floating_point_range = [FloatingPointRange(from_value=float(spec.lo), to_value=float(spec.hi))]
    elif spec.lo is not None and spec.hi is not None and spec.type == "int":
        desc.integer_range = [IntegerRange(from_value=int(spec.lo), to_value=int(spec.hi))]
    return desc


def declare_spec(node: Node, specs: Sequence[ParamSpec], ctx: RobotContext | None) -> dict[str, Any]:
    """Declare every parameter of ``specs`` on ``node`` (defaults for robot ``ctx``); return
    {name: value} as given (launch file, YAML, -p) or defaulted, not yet validated."""
    out = {}
    for spec in specs:
        value = node.declare_parameter(spec.name, spec.default_value(ctx), descriptor(spec)).value
        out[spec.name] = list(value) if isinstance(value, array.array) else value
    return out


def on_set_parameters(node: Node, specs: Sequence[ParamSpec], apply: Callable[[dict[str, Any]], None]) -> None:
    """Register ``node``'s set-parameters callback, the one mechanism for every node: a change
    of a run-time-fixed parameter is refused with its reason; otherwise ``apply(changes)``
    ({name: new value}) validates the whole new set and applies it (off the control path,
    handed to the tick as one reference) or raises :class:`ConfigError`, which refuses the
    request with that message (the old values stay). Each applied change is logged old -> new."""
    table = {s.name: s for s in specs}

    def callback(params: list[Parameter]) -> SetParametersResult:
        changes = {}
        for p in params:
            spec = table.get(p.name)
            if spec is not None and not spec.dynamic:
                return SetParametersResult(successful=False, reason=(
                    f"parameter '{p.name}' is read-only at run time (restart needed): {spec.reason}"))
            value = p.value
            changes[p.name] = list(value) if isinstance(value, array.array) else value
        old = {name: node.get_parameter(name).value for name in changes if node.has_parameter(name)}
        try:
            apply(changes)
        except (ConfigError, ValueError) as exc:
            node.get_logger().warning(f"parameter change refused: {exc}")
            return SetParametersResult(successful=False, reason=str(exc))
        for name, value in changes.items():
            before = old.get(name)
            before = list(before) if isinstance(before, array.array) else before
            if before != value and name in table:   # rclpy's own (qos_overrides.*, use_sim_time): not ours to log
                node.get_logger().info(f"parameter {name}: {before!r} -> {value!r}")
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(callback)


def single_threaded_executor() -> bool:
    """True when DYNLEARN_EXECUTOR=single selects rclpy's SingleThreadedExecutor (default: the
    EventsExecutor): :func:`make_executor`'s choice, also read by nodes whose callbacks differ."""
    return os.environ.get("DYNLEARN_EXECUTOR", "events") == "single"


def make_executor(context=None):
    """EventsExecutor (a third of the CPU of the SingleThreadedExecutor at 1 kHz, all messages
    delivered); DYNLEARN_EXECUTOR=single selects the SingleThreadedExecutor."""
    if single_threaded_executor():
        return rclpy.executors.SingleThreadedExecutor(context=context)
    from rclpy.experimental import EventsExecutor

    return EventsExecutor(context=context)


def publisher_nodes(node: Node, topic: str) -> list[str]:
    """The nodes publishing ``topic`` as ``node``'s graph shows them, one per publisher, sorted
    ("/ns/name"; the root namespace gives "/name")."""
    return sorted(f"{i.node_namespace.rstrip('/')}/{i.node_name}" for i in node.get_publishers_info_by_topic(topic))


def write_json_atomic(path: str | Path, data: dict) -> Path:
    """Write ``data`` as JSON to ``path`` through a temporary file and a rename, so a reader
    never sees half a summary; parent directories are created."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)
    return path


def write_summary_or_exit(node, path: str, data: dict) -> None:
    """A node's exit summary: :func:`write_json_atomic` to ``path`` (nothing when it is empty); a
    failure (the directory vanished, a full disk) is one error line on ``node``'s logger and exit
    code 1, not a traceback."""
    if not path:
        return
    try:
        write_json_atomic(path, data)
    except OSError as exc:
        node.get_logger().error(f"summary not written to {path!r}: {exc}")
        raise SystemExit(1) from None
