"""Fixed-length sequence windows for recurrent models, never crossing an episode boundary.

A window is ``length`` consecutive rows of one episode; windows start every ``stride`` rows from
each episode's first row; an episode shorter than ``length`` yields none, and its tail rows that
do not fill a last window are not used (use ``stride=1`` to reach them).

:func:`model_arrays` arranges a data set's columns for the sequence models (forward:
obs = q or [q, qd], act = tau; inverse: obs = [q, qd], act = tau) and :func:`gather` cuts
windows of any such array at given starts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dynlearn_ros.datasets.filtering import episode_bounds
from dynlearn_ros.datasets.format import TrajectoryData


@dataclass
class Windows:
    """B windows of T rows. q, qd: (B, T, n); qdd: (B, T, n) or None; tau: (B, T, m);
    t: (B, T) s; episode: (B,) episode id; start: (B,) first row index in the source data."""

    q: np.ndarray
    qd: np.ndarray
    qdd: np.ndarray | None
    tau: np.ndarray
    t: np.ndarray
    episode: np.ndarray
    start: np.ndarray

    def __len__(self) -> int:
        return int(self.start.size)


def window_starts(episode: np.ndarray, length: int, stride: int) -> np.ndarray:
    """Row indices (B,) where windows of ``length`` rows start, ``stride`` apart within each
    contiguous episode of ``episode`` (N,), such that each window lies inside one episode."""
    if length < 1 or stride < 1:
        raise ValueError(f"length and stride must be >= 1, got {length}, {stride}")
    starts = [np.arange(a, b - length + 1, stride) for a, b in episode_bounds(episode) if b - a >= length]
    return np.concatenate(starts).astype(np.int64) if starts else np.zeros(0, np.int64)


def make_windows(data: TrajectoryData, length: int, stride: int | None = None) -> Windows:
    """Cut ``data`` into windows of ``length`` rows, ``stride`` rows apart (default: ``length``,
    non-overlapping). Arrays are copies (B, T, ...)."""
    stride = length if stride is None else stride
    starts = window_starts(data.episode, length, stride)
    idx = starts[:, None] + np.arange(length)[None, :]  # (B, T) row indices

    def take(arr: np.ndarray) -> np.ndarray:
        return arr[idx] if starts.size else np.zeros((0, length, *arr.shape[1:]), dtype=arr.dtype)

    return Windows(
        q=take(data.q), qd=take(data.qd), qdd=None if data.qdd is None else take(data.qdd),
        tau=take(data.tau), t=take(data.t), episode=data.episode[starts], start=starts,
    )


def gather(x: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """Windows (B, length, d) of x (N, d) starting at the rows ``starts`` (B,)."""
    idx = starts[:, None] + np.arange(length)[None, :]
    return x[idx]


def model_arrays(data: TrajectoryData, direction: str, obs_qd: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(obs (N, d_o), act (N, d_a)) for ``direction`` 'forward' | 'inverse': obs = [q, qd]
    (rad, rad/s) for inverse models or with ``obs_qd``, else q; act = tau (N*m or the data set's
    action units)."""
    if direction == "inverse" or obs_qd:
        obs = np.concatenate([data.q, data.qd], axis=1)
    else:
        obs = data.q
    return obs, data.tau


def inverse_rows(episode: np.ndarray) -> np.ndarray:
    """Row indices 1 .. T-2 of every episode of ``episode`` (N,) with T >= 3 rows: the rows an
    inverse model that reads tau_{t-1} and the next observation o_{t+1} can predict."""
    parts = [np.arange(a + 1, b - 1) for a, b in episode_bounds(episode) if b - a >= 3]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
