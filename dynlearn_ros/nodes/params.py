"""Helpers shared by the nodes: parameters declared once with a description; executor and spinning."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rclpy
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node


class ParameterError(ValueError):
    """A parameter value that fails validation; start-up stops with this message."""


def declare(node: Node, name: str, default, description: str, *, lo: float | None = None,
            hi: float | None = None, choices: Sequence[str] | None = None, read_only: bool = False):
    """Declare ``name`` with a descriptor (description, range, choices) and return its value."""
    desc = ParameterDescriptor(description=description, read_only=read_only)
    if choices:
        desc.additional_constraints = "one of: " + ", ".join(choices)
    if lo is not None and hi is not None and isinstance(default, float):
        desc.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi))]
    elif lo is not None and hi is not None and isinstance(default, int) and not isinstance(default, bool):
        desc.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi))]
    value = node.declare_parameter(name, default, desc).value
    if choices and value not in choices:
        raise ParameterError(f"parameter '{name}' = {value!r}: must be one of {list(choices)}")
    return value


def per_joint(name: str, values: Sequence[float], n: int) -> np.ndarray:
    """A double-array parameter as (n,): one value broadcasts, n values pass, else an error."""
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 1:
        arr = np.full(n, arr[0])
    if arr.shape != (n,):
        raise ParameterError(f"parameter '{name}': expected 1 or {n} values (one per joint), got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise ParameterError(f"parameter '{name}': values must be finite, got {arr.tolist()}")
    return arr


def spin_until_shutdown(executor, context=None) -> None:
    """Spin until SIGINT / SIGTERM or the context shuts down, never interrupting a callback.

    Use with ``rclpy.init(signal_handler_options=SignalHandlerOptions.NO)``: the signals only set
    a flag here, so a control tick always runs to its end (rclpy's default handling raised
    KeyboardInterrupt inside a callback, half-way through a tick). ``spin_once`` runs in 0.1 s
    slices: the EventsExecutor's blocking ``spin()`` does not return on SIGINT, a timeout-less wait
    never returns (DESIGN.md), and while the context shuts down ``spin_once`` can raise a
    RuntimeError from the binding, which ends the loop (the same error in a live context does not)."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.is_set() and rclpy.ok(context=context):
            try:
                executor.spin_once(timeout_sec=0.1)
            except RuntimeError:
                if rclpy.ok(context=context):
                    raise
                return
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def make_executor():
    """EventsExecutor (a third of the CPU of the SingleThreadedExecutor at 1 kHz, all messages
    delivered); DYNLEARN_EXECUTOR=single selects the SingleThreadedExecutor."""
    if os.environ.get("DYNLEARN_EXECUTOR", "events") == "single":
        return rclpy.executors.SingleThreadedExecutor()
    from rclpy.experimental import EventsExecutor

    return EventsExecutor()


def write_json_atomic(path: str | Path, data: dict) -> Path:
    """Write ``data`` as JSON to ``path`` through a temporary file and a rename, so a reader
    never sees half a summary; parent directories are created."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)
    return path
