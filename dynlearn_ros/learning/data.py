"""From a :class:`TrajectoryData` to normalized, episode-respecting training windows.

Loading, splitting and the analytic baseline come from ``dynlearn_ros.datasets`` (registry,
splits, analytic); this module only arranges arrays for the models:

* forward:  obs = q (or [q, qd]) (N, d_o), act = tau (N, d_a) (pressures, torques, ...)
* inverse:  obs = [q, qd] (N, 2n), act = tau (N, n) (N*m)

Normalization statistics are computed on the training split only and travel with the model
(:class:`Stats`, saved in the checkpoint and in metadata.json).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dynlearn_ros.datasets.format import TrajectoryData, load_npz


def load_data(name_or_path: str) -> TrajectoryData:
    """A named data set (through ``datasets.registry``) or a generic ``.npz`` file."""
    if str(name_or_path).endswith(".npz") and Path(name_or_path).is_file():
        return load_npz(name_or_path)
    try:
        from dynlearn_ros.datasets.registry import load_dataset
    except ImportError as exc:
        raise RuntimeError(f"cannot load data set '{name_or_path}': datasets.registry missing ({exc})") from exc
    return load_dataset(name_or_path)


def split(data: TrajectoryData, seed: int = 0) -> tuple[TrajectoryData, TrajectoryData, TrajectoryData]:
    """Train / validation / test by episode or contiguous block (``datasets.splits``)."""
    try:
        from dynlearn_ros.datasets.splits import train_val_test
    except ImportError:  # the data helper's module not present: same rule, local fallback
        train_val_test = _block_split
    out = train_val_test(data, seed=seed)
    if isinstance(out, dict):
        return out["train"], out["val"], out["test"]
    return tuple(out)  # type: ignore[return-value]


def subsample(data: TrajectoryData, k: int) -> TrajectoryData:
    """Every k-th row of each episode (dt becomes k * dt); k = 1 returns ``data`` unchanged.

    qd and qdd are kept as measured (instantaneous values); tau is the applied torque at the kept
    rows. Used to train inverse models at a lower rate, where one step's torque change is larger
    than the sensor noise."""
    if k <= 1:
        return data
    mask = np.zeros(len(data), dtype=bool)
    for sl in episode_slices(data.episode):
        mask[sl.start:sl.stop:k] = True
    out = data.select(mask)
    out.dt = data.dt * k
    out.meta = {**data.meta, "subsample": k}
    return out


def arrays(data: TrajectoryData, direction: str, obs_qd: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(obs (N, d_o), act (N, d_a)) float64 for ``direction`` 'forward' | 'inverse'."""
    if direction == "inverse" or obs_qd:
        obs = np.concatenate([data.q, data.qd], axis=1)
    else:
        obs = data.q
    return obs, data.tau


def episode_slices(episode: np.ndarray) -> list[slice]:
    """Contiguous row ranges of each episode (rows of one episode are contiguous)."""
    if len(episode) == 0:
        return []
    cut = np.flatnonzero(np.diff(episode) != 0) + 1
    starts = np.concatenate([[0], cut])
    ends = np.concatenate([cut, [len(episode)]])
    return [slice(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def window_index(episode: np.ndarray, length: int, stride: int) -> np.ndarray:
    """Start rows (k,) of windows of ``length`` rows that never cross an episode boundary."""
    starts = []
    for sl in episode_slices(episode):
        n = sl.stop - sl.start
        if n >= length:
            starts.append(np.arange(sl.start, sl.stop - length + 1, stride))
    return np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)


def _diffs(x: np.ndarray, episode: np.ndarray) -> np.ndarray:
    """Row differences x[t+1] - x[t] inside episodes, (M, d)."""
    return np.concatenate([np.diff(x[sl], axis=0) for sl in episode_slices(episode)], axis=0)


@dataclass
class Stats:
    """Zero-mean / unit-variance statistics (training split), all (d,) float64.

    obs, act: of the values; dobs, dact: of the one-step differences inside episodes."""

    obs_mean: np.ndarray
    obs_std: np.ndarray
    act_mean: np.ndarray
    act_std: np.ndarray
    dobs_mean: np.ndarray
    dobs_std: np.ndarray
    dact_mean: np.ndarray
    dact_std: np.ndarray

    @classmethod
    def fit(cls, obs: np.ndarray, act: np.ndarray, episode: np.ndarray) -> Stats:
        def ms(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            std = x.std(0)
            # a constant channel would divide by zero; 1e-6 keeps it at 0 after normalization
            return x.mean(0), np.where(std > 1e-9, std, 1.0)

        dobs, dact = _diffs(obs, episode), _diffs(act, episode)
        return cls(*ms(obs), *ms(act), *ms(dobs), *ms(dact))

    def to_dict(self) -> dict:
        return {k: np.asarray(v, dtype=float).tolist() for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, d: dict) -> Stats:
        return cls(**{k: np.asarray(v, dtype=np.float64) for k, v in d.items()})


def gather(x: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """Windows (k, length, d) of x (N, d) at ``starts``."""
    idx = starts[:, None] + np.arange(length)[None, :]
    return x[idx]


def _block_split(data: TrajectoryData, seed: int = 0) -> tuple[TrajectoryData, ...]:
    """Fallback split: >= 10 episodes -> 70/15/15 of shuffled episodes; else the last 15 % of
    every episode is test, the 15 % before it validation (contiguous blocks, no leakage)."""
    eps = data.episodes()
    if len(eps) >= 10:
        rng = np.random.default_rng(seed)
        perm = rng.permutation(eps)
        n_va = n_te = max(1, round(0.15 * len(eps)))
        sets = (perm[n_va + n_te:], perm[:n_va], perm[n_va:n_va + n_te])
        return tuple(data.select(np.isin(data.episode, s)) for s in sets)
    part = np.zeros(len(data), dtype=np.int64)
    for sl in episode_slices(data.episode):
        n = sl.stop - sl.start
        a, b = int(0.70 * n), int(0.85 * n)
        part[sl.start + a:sl.start + b] = 1
        part[sl.start + b:sl.stop] = 2
    return tuple(data.select(part == k) for k in range(3))
