"""Per-column standardization that travels with a model (plain JSON lists in metadata.json).

Fit on the training split only; apply the same statistics to validation, test and run time.
Two forms, both fitted here:

* :class:`Normalizer`: one array's mean / std (the GP models' inputs and torques, data tools);
* :class:`Stats`: the sequence models' observation / action statistics of the values *and* of
  their one-step differences inside episodes (saved in their checkpoints and metadata.json).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from dynlearn_ros.datasets.filtering import episode_bounds
from dynlearn_ros.datasets.format import TrajectoryData

#: default lower bound on a column's std (in the column's units); a constant column would
#: otherwise divide by zero. Small against any physical signal of interest (1e-6 rad, N*m, ...).
DEFAULT_MIN_STD = 1e-6


class Normalizer:
    """z = (x - mean) / std per column; ``std`` is floored at ``min_std``.

    mean, std: (d,) in the units of the columns. Works on arrays (..., d).
    """

    def __init__(self, mean: np.ndarray | list[float], std: np.ndarray | list[float], min_std: float = DEFAULT_MIN_STD) -> None:
        self.mean = np.array(mean, dtype=np.float64).reshape(-1)
        std = np.array(std, dtype=np.float64).reshape(-1)
        if self.mean.shape != std.shape:
            raise ValueError(f"mean {self.mean.shape} and std {std.shape} differ in shape")
        if not (np.all(np.isfinite(self.mean)) and np.all(np.isfinite(std))):
            raise ValueError("mean and std must be finite")
        self.min_std = float(min_std)
        self.std = np.maximum(std, self.min_std)

    @classmethod
    def fit(cls, x: np.ndarray, min_std: float = DEFAULT_MIN_STD) -> Normalizer:
        """Statistics of ``x`` (N, d) (or (..., d), flattened over the leading axes); NaN rows ignored
        per column."""
        x = np.asarray(x, dtype=np.float64)
        x = x.reshape(-1, x.shape[-1])
        if x.shape[0] == 0:
            raise ValueError("cannot fit a normalizer on zero rows")
        return cls(np.nanmean(x, axis=0), np.nanstd(x, axis=0), min_std)

    @property
    def dim(self) -> int:
        return int(self.mean.size)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """(..., d) in column units -> (..., d) standardized."""
        return (np.asarray(x, dtype=np.float64) - self.mean) / self.std

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """(..., d) standardized -> (..., d) in column units."""
        return np.asarray(z, dtype=np.float64) * self.std + self.mean

    def inverse_scale(self, s: np.ndarray) -> np.ndarray:
        """A standard deviation or difference in standardized units -> column units (no offset)."""
        return np.asarray(s, dtype=np.float64) * self.std

    def to_dict(self) -> dict:
        """Plain JSON-serializable form: {"mean": [...], "std": [...], "min_std": float}."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "min_std": self.min_std}

    @classmethod
    def from_dict(cls, d: dict) -> Normalizer:
        return cls(d["mean"], d["std"], d.get("min_std", DEFAULT_MIN_STD))

    def __repr__(self) -> str:
        return f"Normalizer(dim={self.dim})"


def fit_normalizers(
    train: TrajectoryData, keys: Iterable[str] = ("q", "qd", "qdd", "tau"), min_std: float = DEFAULT_MIN_STD
) -> dict[str, Normalizer]:
    """One :class:`Normalizer` per array of ``train`` (pass the training split only); keys whose
    array is absent (``qdd`` None) are skipped."""
    out: dict[str, Normalizer] = {}
    for key in keys:
        arr = getattr(train, key)
        if arr is not None:
            out[key] = Normalizer.fit(arr, min_std)
    return out


def episode_diffs(x: np.ndarray, episode: np.ndarray) -> np.ndarray:
    """Row differences x[t+1] - x[t] (M, d) inside the episodes of ``episode`` (N,), x (N, d);
    no difference reaches across an episode boundary."""
    return np.concatenate([np.diff(x[a:b], axis=0) for a, b in episode_bounds(episode)], axis=0)


#: a std at or below this (column units) counts as a constant column: :class:`Stats` then
#: divides by 1 instead, so the normalized column stays 0
STATS_CONSTANT_STD = 1e-9


@dataclass
class Stats:
    """Zero-mean / unit-variance statistics of a sequence model (training split), all (d,) float64.

    obs (d_o,), act (d_a,): of the values; dobs, dact: of the one-step differences inside
    episodes. Units: those of the columns (rad, rad/s, N*m, ...)."""

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
        """From obs (N, d_o), act (N, d_a) and the episode id of each row (N,)."""
        def ms(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            std = x.std(0)
            return x.mean(0), np.where(std > STATS_CONSTANT_STD, std, 1.0)

        dobs, dact = episode_diffs(obs, episode), episode_diffs(act, episode)
        return cls(*ms(obs), *ms(act), *ms(dobs), *ms(dact))

    def to_dict(self) -> dict:
        """Plain JSON lists, keyed by field name."""
        return {k: np.asarray(v, dtype=float).tolist() for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, d: dict) -> Stats:
        return cls(**{k: np.asarray(v, dtype=np.float64) for k, v in d.items()})
