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
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor

import numpy as np

from dynlearn_ros.core.trajectories import TrajectoryError, check_trajectory

#: trajectories larger than this (bytes of CDR) are refused unread: 1e6 points of 7 joints with
#: velocities is ~ 130 MB; nothing a controller should hold in memory as one reference
MAX_TRAJECTORY_BYTES = 64 * 1024 * 1024


def parse_trajectory(raw: bytes, joint_names: Sequence[str], lower: np.ndarray, upper: np.ndarray):
    """Worker: CDR bytes of a trajectory_msgs/JointTrajectory -> (times (m,) s, positions (m, n)
    rad, velocities (m, n) rad/s or None) in ``joint_names`` order; TrajectoryError otherwise."""
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
    return check_trajectory(msg.joint_names, joint_names, times, pos, vel, lower, upper)


class TrajectoryIntake:
    """One worker process (spawned on first use) and the trajectories in flight.

    :meth:`submit` hands raw bytes over (returns at once); :meth:`poll` returns finished results
    as (checked arrays or None, error text or None, bytes) in arrival order."""

    def __init__(self, joint_names: Sequence[str], lower: np.ndarray, upper: np.ndarray) -> None:
        self.joint_names = tuple(joint_names)
        self.lower, self.upper = np.asarray(lower).copy(), np.asarray(upper).copy()
        self._pool: ProcessPoolExecutor | None = None
        self._pending: list[tuple[Future, int]] = []

    def submit(self, raw: bytes) -> str | None:
        """Queue ``raw`` for parsing; a reason string if it is refused unread."""
        if len(raw) > MAX_TRAJECTORY_BYTES:
            return f"{len(raw)} bytes, more than {MAX_TRAJECTORY_BYTES}"
        if self._pool is None:
            # spawn, not fork: the node's process has DDS threads a fork would copy half-way
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        self._pending.append((self._pool.submit(parse_trajectory, bytes(raw), self.joint_names, self.lower,
                                                self.upper), len(raw)))
        return None

    @property
    def busy(self) -> int:
        return len(self._pending)

    def poll(self) -> list[tuple[tuple | None, str | None, int]]:
        out = []
        while self._pending and self._pending[0][0].done():
            fut, size = self._pending.pop(0)
            try:
                out.append((fut.result(), None, size))
            except TrajectoryError as exc:
                out.append((None, str(exc), size))
            except Exception as exc:  # noqa: BLE001 - a dead worker: refuse, next submit restarts it
                out.append((None, f"parser failed ({type(exc).__name__}: {exc})", size))
                self.close()
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
