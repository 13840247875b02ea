"""Novelty term for the SVDKL predictive variance: distance to the training inputs.

The GP's own variance barely grows where a trajectory leaves the visited states (docs/results_svdkl.md
sections 2 and 4: on the Panda test tail and on the iiwa Fourier episode the error is 5-30x the
std). This module adds an explicit, model-independent novelty measure to it, per joint j:

    var_total_j(x) = var_gp_j(x) + (alpha_j * g(x))^2,   g(x) = max(d(x) - d0, 0)
    d(x) = min_k |x' - s_k|                                  (standardized units)

where x' is the standardized input (the model's own x_mean / x_std) and s_1..s_K are K training
inputs (standardized the same way) taken at evenly spaced rows of the training split. The term is
exactly zero on a stored row, zero within d0 of one, and grows without bound (linearly in std)
with the distance; var_total >= var_gp everywhere, so it never makes the model more confident.

The term's calibration (alpha per joint, K, d0) is :mod:`dynlearn_ros.learning.training.novelty`;
``dynlearn-ros novelty`` runs it and writes ``<run>/novelty.json``, which :func:`load_term` reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: the calibrated term's file inside a run directory
NOVELTY_FILE = "novelty.json"


def store_rows(n_rows: int, k: int) -> np.ndarray:
    """Indices of ``k`` evenly spaced rows among ``n_rows`` (all rows when k >= n_rows)."""
    if k >= n_rows:
        return np.arange(n_rows)
    return np.unique(np.linspace(0, n_rows - 1, k).round().astype(np.int64))


def nn_sq_distance(store: np.ndarray, xn: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Squared Euclidean distance (B,) of each row of xn (B, D) to its nearest row of store (K, D),
    float64; |x|^2 - 2 x.s + |s|^2, clamped at 0 (float64 keeps the cancellation below 1e-12)."""
    store = np.asarray(store, dtype=np.float64)
    xn = np.asarray(xn, dtype=np.float64)
    s2 = (store**2).sum(1)
    out = np.empty(xn.shape[0])
    for i in range(0, xn.shape[0], chunk):
        xb = xn[i:i + chunk]
        d2 = (xb**2).sum(1)[:, None] - 2.0 * xb @ store.T + s2[None, :]
        out[i:i + chunk] = np.maximum(d2.min(1), 0.0)
    return out


def excess_distance(d2: np.ndarray, d0: float) -> np.ndarray:
    """g = max(sqrt(d2) - d0, 0) (B,), standardized units."""
    return np.maximum(np.sqrt(d2) - d0, 0.0)


@dataclass
class NoveltyTerm:
    """var_total = var_gp + (alpha * max(d - d0, 0))^2 per joint.

    store: (K, D) standardized training inputs; alpha: (n,) N*m per standardized unit; d0:
    dead zone (standardized units); info: calibration record (folds, command, ...)."""

    store: np.ndarray
    alpha: np.ndarray
    d0: float = 0.0
    info: dict = field(default_factory=dict)

    def extra_var(self, xn: np.ndarray) -> np.ndarray:
        """(B, n) added variance (N*m)^2 for standardized inputs xn (B, D)."""
        g = excess_distance(nn_sq_distance(self.store, xn), self.d0)
        return (g[:, None] * np.asarray(self.alpha)[None, :]) ** 2

    def to_json(self) -> dict:
        """The calibrated numbers (the store is rebuilt from the training split: K evenly spaced rows)."""
        return {"form": "var += (alpha_j * max(d - d0, 0))^2, d = distance of the standardized input to "
                        "the nearest of K evenly spaced standardized training rows",
                "k": int(self.store.shape[0]), "d0": float(self.d0), "alpha": [float(a) for a in self.alpha],
                **self.info}


def build_term(model, x_train: np.ndarray, k: int, alpha, d0: float, info: dict | None = None) -> NoveltyTerm:
    """The term for ``model`` (its normalization) with the store taken from raw x_train (N, 3n)."""
    xn = model.normalize_x(x_train[store_rows(len(x_train), k)]).double().numpy()
    return NoveltyTerm(store=xn, alpha=np.asarray(alpha, dtype=np.float64), d0=float(d0), info=dict(info or {}))


def load_term(run_dir: str | Path, model, x_train: np.ndarray) -> NoveltyTerm | None:
    """``<run_dir>/novelty.json`` as a NoveltyTerm for ``model``, or None when there is none."""
    path = Path(run_dir) / NOVELTY_FILE
    if not path.is_file():
        return None
    rec = json.loads(path.read_text())
    return build_term(model, x_train, int(rec["k"]), rec["alpha"], float(rec["d0"]), info=rec)


def predict_with_term(model, term: NoveltyTerm | None, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (N*m, (B, n)) of ``model`` with the novelty term added to the variance."""
    mean, std = model.predict(x)
    if term is None:
        return mean, std
    xn = model.normalize_x(x).double().numpy()
    return mean, np.sqrt(std**2 + term.extra_var(xn))
