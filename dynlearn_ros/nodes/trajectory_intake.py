"""Reference trajectories parsed and checked off the control path.

A JointTrajectory of 100 000 points takes about 1.5 s to deserialize into Python objects (measured
here: 9.6 MB, ``rclpy.serialization.deserialize_message``), all of it holding the GIL: done in
the node's callback, or in a thread, it stalls the control loop for that long. So the
computed_torque node subscribes to the raw CDR bytes (``raw=True``: the callback only hands the
bytes over) and a worker *process* deserializes and checks them
(:func:`dynlearn_ros.core.trajectories.check_trajectory`). The node polls for results between
two ticks and builds the spline there (vectorised numpy: milliseconds for 100 000 points).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
from collections.abc import Sequence

import numpy as np

from dynlearn_ros.core.trajectories import (
    SplineReference,
    TrajectoryError,
    check_trajectory,
    interior_velocities,
)

#: trajectories larger than this (bytes of CDR) are refused unread: 1e6 points of 7 joints with
#: velocities is ~ 130 MB; nothing a controller should hold in memory as one reference
MAX_TRAJECTORY_BYTES = 64 * 1024 * 1024


def parse_trajectory(raw: bytes, joint_names: Sequence[str], lower: np.ndarray, upper: np.ndarray):
    """Worker: CDR bytes of a trajectory_msgs/JointTrajectory -> (the spline through its points
    in ``joint_names`` order, estimated) for :class:`PrefixedSpline` (``estimated``: the message
    had no velocities, they are central differences); TrajectoryError otherwise."""
    from rclpy.serialization import deserialize_message
    from trajectory_msgs.msg import JointTrajectory

    try:
        msg = deserialize_message(raw, JointTrajectory)
    except Exception as exc:  # noqa: BLE001 - any decoding failure is a refusal with its reason
        raise TrajectoryError(f"undecodable message ({exc})") from None
    pts = msg.points
    k = len(msg.joint_names)
    times = np.fromiter((p.time_from_start.sec + 1e-9 * p.time_from_start.nanosec for p in pts), float, len(pts))
    if any(len(p.positions) != k for p in pts):
        raise TrajectoryError(f"every point needs {k} positions (one per joint name)")
    pos = np.array([p.positions for p in pts], dtype=float).reshape(len(pts), k)
    vel = None
    if pts and all(len(p.velocities) == k for p in pts):
        vel = np.array([p.velocities for p in pts], dtype=float).reshape(len(pts), k)
    times, pos, vel = check_trajectory(msg.joint_names, joint_names, times, pos, vel, lower, upper)
    estimated = vel is None
    return SplineReference(times, pos, interior_velocities(times, pos) if estimated else vel), estimated


#: how often an idle parser checks that the node that started it is still alive (s)
ORPHAN_CHECK_S = 1.0


def _worker(inbox, outbox, joint_names, lower, upper, parent_pid: int | None = None) -> None:
    """The parser process: (seq, bytes) in, (seq, result, error) out, until None arrives or the
    node's process is gone (a SIGKILLed node cannot send None: the parser notices within
    ORPHAN_CHECK_S that its parent changed and ends, so no orphan outlives the node)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the node ends this process, not a Ctrl-C
    import rclpy.serialization  # noqa: F401 - imported once, before the first trajectory
    import trajectory_msgs.msg  # noqa: F401

    while True:
        try:
            item = inbox.get(timeout=ORPHAN_CHECK_S)
        except queue.Empty:
            if parent_pid is not None and os.getppid() != parent_pid:
                return
            continue
        if item is None:
            return
        seq, raw = item
        try:
            outbox.put((seq, parse_trajectory(raw, joint_names, lower, upper), None))
        except TrajectoryError as exc:
            outbox.put((seq, None, str(exc)))
        except Exception as exc:  # noqa: BLE001 - any failure is a refusal with its reason
            outbox.put((seq, None, f"parser failed ({type(exc).__name__}: {exc})"))


class TrajectoryIntake:
    """One parser process (spawned by :meth:`start`, a daemon: it ends with the node) and the
    trajectories in flight.

    :meth:`submit` hands raw bytes over (returns at once: a multiprocessing queue's feeder thread
    writes them to the pipe); :meth:`poll` returns finished results as (result or None, error
    text or None, size in bytes), in arrival order."""

    def __init__(self, joint_names: Sequence[str], lower: np.ndarray, upper: np.ndarray) -> None:
        self.joint_names = tuple(joint_names)
        self.lower, self.upper = np.asarray(lower).copy(), np.asarray(upper).copy()
        self._proc = None
        self._seq = 0
        self._sizes: dict[int, int] = {}

    def start(self) -> None:
        """Start the parser now (at configure: its start-up takes about a second of CPU for the
        imports, which should not coincide with the first trajectory)."""
        if self._proc is not None and self._proc.is_alive():
            return
        # spawn, not fork: the node's process has DDS threads a fork would copy half-way
        ctx = multiprocessing.get_context("spawn")
        self._inbox, self._outbox = ctx.Queue(), ctx.Queue()
        self._proc = ctx.Process(target=_worker, args=(self._inbox, self._outbox, self.joint_names, self.lower,
                                                       self.upper, os.getpid()), daemon=True, name="trajectory_parser")
        self._proc.start()
        self._sizes.clear()

    def submit(self, raw: bytes) -> str | None:
        """Queue ``raw`` for parsing; a reason string if it is refused unread."""
        if len(raw) > MAX_TRAJECTORY_BYTES:
            return f"{len(raw)} bytes, more than {MAX_TRAJECTORY_BYTES}"
        self.start()
        self._seq += 1
        self._sizes[self._seq] = len(raw)
        self._inbox.put((self._seq, bytes(raw)))
        return None

    @property
    def busy(self) -> int:
        return len(self._sizes)

    def poll(self) -> list[tuple[tuple | None, str | None, int]]:
        out = []
        if self._proc is None:
            return out
        while True:
            try:
                seq, result, error = self._outbox.get_nowait()
            except queue.Empty:
                break
            out.append((result, error, self._sizes.pop(seq, 0)))
        if self._sizes and not self._proc.is_alive():   # died while parsing: refuse what it held
            out += [(None, "parser process died", size) for size in self._sizes.values()]
            self._proc = None
        return out

    def close(self) -> None:
        """End the parser at once (a trajectory being parsed is dropped)."""
        if self._proc is not None:
            self._proc.terminate()
            self._proc.join(timeout=2.0)
            for q in (self._inbox, self._outbox):
                q.cancel_join_thread()
                q.close()
            self._proc = None
