"""Calibration of the novelty term of the SVDKL predictive variance
(:mod:`dynlearn_ros.learning.models.novelty`: var_total_j = var_gp_j + (alpha_j * max(d - d0, 0))^2)
on training data the model did not see.

Calibration (:func:`calibrate`) uses only the training split. The model's architecture and
training settings are retrained on part of the training rows and predict the held-out rest:

* ``forward`` (one trajectory, contiguous blocks in time): fit on the first 50 / 65 / 80 % of the
  training block, predict the remainder of the block (the model extrapolates forward in time,
  as it does on the test block);
* ``episodes`` (episodic data): leave-episodes-out in 3 folds, each fold holding out a third of
  the training episodes of every kind (so a Fourier episode is predicted by a model that saw the
  other Fourier episodes, as in the test split).

For every held-out row i the fold model gives the residual r_ij, its own predictive variance
v_ij (noise included) and the distance d_i to the fold's store (the fold's training rows at the
same row spacing as the final store, in the final model's standardized units). alpha_j is the
maximum-likelihood value under r_ij ~ N(0, v_ij + alpha_j^2 g_i^2) (:func:`fit_alpha`): it
grows the variance exactly as fast with distance as the squared error beyond the GP's variance
grows on rows where the model really extrapolated, and no faster (the in-distribution held-out
rows, at small d, penalise an alpha that is too large). The store size K and the dead zone d0
are chosen on the validation split (best validation NLL of the full model with the term, rounded
to 0.01; ties go to the smaller K, then the smaller d0).

Usage::

    dynlearn-ros novelty --data panda_gaz2019 \
        --runs runs/gp/panda_gaz2019/svdkl-s0-m64 --k 512 1024 2048 --d0 0 0.25 0.5 1 2 4 --threads 1

writes ``<run>/novelty.json`` (alpha per joint in N*m per standardized unit, K, d0, the fold
description, the validation table of every candidate and the command) and caches the fold models
under ``<run>/novelty_folds/``. ``dynlearn-ros export --novelty`` puts the term into the ONNX graph.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dynlearn_ros.learning.models.novelty import (
    NOVELTY_FILE,
    build_term,
    excess_distance,
    nn_sq_distance,
    store_rows,
)

#: fractions of the training block at which the forward-chaining folds cut
FORWARD_CUTS = (0.5, 0.65, 0.8)
#: folds of the leave-episodes-out scheme
EPISODE_FOLDS = 3


def _nll_beta(beta: float, r2: np.ndarray, v: np.ndarray, g2: np.ndarray) -> float:
    s = v + beta * g2
    return float(np.mean(np.log(s) + r2 / s))


def _nll_beta_log(t: float, r2: np.ndarray, v: np.ndarray, g2: np.ndarray) -> float:
    return _nll_beta(float(np.exp(t)), r2, v, g2)


def fit_alpha(r: np.ndarray, v: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Maximum-likelihood alpha_j >= 0 (n,) under r_ij ~ N(0, v_ij + alpha_j^2 g_i^2).

    r: (N, n) residuals, v: (N, n) predictive variances (same units squared), g: (N,) excess
    distances. Per joint a 1-D search over beta = alpha^2: a log-spaced grid spanning 16 decades
    around the scale mean(v) / mean(g^2) plus beta = 0, then a bounded refinement between the
    grid neighbours of the best point (the likelihood need not be unimodal in beta, the grid
    guards against a local optimum)."""
    from scipy.optimize import minimize_scalar

    r2, g2 = np.asarray(r, dtype=np.float64) ** 2, np.asarray(g, dtype=np.float64) ** 2
    v = np.maximum(np.asarray(v, dtype=np.float64), 1e-300)
    out = np.zeros(r2.shape[1])
    if not np.any(g2 > 0):
        return out
    for j in range(r2.shape[1]):
        scale = v[:, j].mean() / g2[g2 > 0].mean()
        grid = scale * np.logspace(-8, 8, 161)
        vals = np.array([_nll_beta(b, r2[:, j], v[:, j], g2) for b in grid])
        i = int(np.argmin(vals))
        if _nll_beta(0.0, r2[:, j], v[:, j], g2) <= vals[i]:
            continue
        lo, hi = np.log(grid[max(i - 1, 0)]), np.log(grid[min(i + 1, len(grid) - 1)])
        res = minimize_scalar(_nll_beta_log, bounds=(lo, hi), args=(r2[:, j], v[:, j], g2),
                              method="bounded", options={"xatol": 1e-6})
        beta = float(np.exp(res.x)) if res.fun <= vals[i] else float(grid[i])
        out[j] = np.sqrt(beta)
    return out


def fold_indices(train, scheme: str) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """(fit rows, held-out rows, description) of the calibration folds inside the training split."""
    n = len(train)
    folds = []
    if scheme == "forward":
        for c in FORWARD_CUTS:
            cut = int(round(c * n))
            folds.append((np.arange(cut), np.arange(cut, n), f"fit rows [0, {cut}), predict [{cut}, {n})"))
        return folds
    if scheme != "episodes":
        raise ValueError(f"unknown calibration scheme {scheme!r}; choose 'forward' or 'episodes'")
    from dynlearn_ros.datasets.format import episode_kinds

    kinds = episode_kinds(train)
    eps = train.episodes()
    by_kind: dict[str, list[int]] = {}
    for e in eps:
        by_kind.setdefault(kinds.get(int(e), "?"), []).append(int(e))
    groups: list[list[int]] = [[] for _ in range(EPISODE_FOLDS)]
    i = 0
    for kind in sorted(by_kind):  # deal each kind round-robin: every fold holds out every kind
        for e in by_kind[kind]:
            groups[i % EPISODE_FOLDS].append(e)
            i += 1
    for grp in groups:
        held = np.isin(train.episode, grp)
        folds.append((np.flatnonzero(~held), np.flatnonzero(held), f"hold out episodes {sorted(grp)}"))
    return folds


def fold_predictions(run_dir: Path, model, extra: dict, train, val, scheme: str, threads: int = 1,
                     log=print) -> list[dict]:
    """Train (or reuse from ``<run_dir>/novelty_folds/``) one model per fold with the run's
    architecture and settings; return per fold the held-out raw inputs, residuals and predictive
    variances (noise included)."""
    import torch

    from dynlearn_ros.learning.training.gp import inputs_targets, load_checkpoint, save_checkpoint, train_gp

    torch.set_num_threads(threads)
    xtr, ytr = inputs_targets(train)
    xva, yva = inputs_targets(val)
    out = []
    for i, (fit, held, desc) in enumerate(fold_indices(train, scheme)):
        fdir = run_dir / "novelty_folds" / f"fold{i}"
        ck = fdir / "checkpoint.pt"
        if ck.is_file():
            fm, _ = load_checkpoint(ck)
        else:
            fdir.mkdir(parents=True, exist_ok=True)
            res = train_gp(model.cfg, xtr[fit], ytr[fit], xva, yva, epochs=int(extra.get("epochs") or 40),
                           batch_size=int(extra.get("batch_size") or 256), lr=float(extra.get("lr") or 1e-2),
                           seed=int(extra.get("seed") or 0))
            fm = res.model
            save_checkpoint(ck, fm, extra={"fold": desc, "best_epoch": res.best_epoch, "wall_s": res.seconds})
            log(f"fold {i} ({desc}): trained, best epoch {res.best_epoch}, {res.seconds:.0f} s")
        mean, std = fm.predict(xtr[held])
        out.append({"desc": desc, "fit": fit, "held": held, "r": ytr[held] - mean, "v": std**2})
    return out


def calibrate_from_folds(model, x_train: np.ndarray, folds: list[dict], k: int, d0: float) -> np.ndarray:
    """alpha (n,) for store size ``k`` (row spacing len(x_train) / k, kept in every fold) and dead
    zone ``d0``; distances in ``model``'s standardized units."""
    stride = len(x_train) / k
    rs, vs, gs = [], [], []
    for f in folds:
        fit = f["fit"]
        k_fold = max(1, int(round(len(fit) / stride)))
        store = model.normalize_x(x_train[fit][store_rows(len(fit), k_fold)]).double().numpy()
        xn = model.normalize_x(x_train[f["held"]]).double().numpy()
        gs.append(excess_distance(nn_sq_distance(store, xn), d0))
        rs.append(f["r"])
        vs.append(f["v"])
    return fit_alpha(np.concatenate(rs), np.concatenate(vs), np.concatenate(gs))


@dataclass
class NoveltyCalibration:
    """What :func:`calibrate` does: the trained GP run directory (``checkpoint.pt``), the data
    set when the run does not name its own, the fold scheme ('auto': episodes if the training
    split has >= 5 episodes, else forward), the candidate store sizes ``k`` and dead zones
    ``d0`` (standardized units), torch threads and the command line recorded in novelty.json."""

    run: str
    data: str = "panda_gaz2019"
    scheme: str = "auto"
    k: tuple[int, ...] = (512, 1024, 2048)
    d0: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
    threads: int = 1
    command: str = ""


def _say(text: str) -> None:
    print(text, flush=True)


def calibrate(cfg: NoveltyCalibration, log=_say) -> dict:
    """Fold models, alpha for every (K, d0) candidate, choice by validation NLL; writes
    ``<run>/novelty.json`` and returns its content."""
    import torch

    from dynlearn_ros.datasets.splits import load_splits
    from dynlearn_ros.learning.training.gp import gaussian_metrics, inputs_targets, load_checkpoint

    if cfg.scheme not in ("auto", "forward", "episodes"):
        raise ValueError(f"unknown calibration scheme {cfg.scheme!r}; choose 'auto', 'forward' or 'episodes'")
    torch.set_num_threads(cfg.threads)
    run = Path(cfg.run)
    model, extra = load_checkpoint(run / "checkpoint.pt")
    data_name = str(extra.get("data", cfg.data))
    data, train, val, _test = load_splits(data_name, int(extra.get("seed", 0)))
    scheme = cfg.scheme
    if scheme == "auto":
        scheme = "episodes" if train.episodes().size >= 5 else "forward"
    xtr, _ = inputs_targets(train)
    xva, yva = inputs_targets(val)
    folds = fold_predictions(run, model, extra, train, val, scheme, threads=cfg.threads, log=log)
    ys = model.y_std.numpy()
    mean_va, std_va = model.predict(xva)
    base = gaussian_metrics(yva, mean_va, std_va, ys)
    cands = []
    for k in cfg.k:
        for d0 in cfg.d0:
            alpha = calibrate_from_folds(model, xtr, folds, k, d0)
            term = build_term(model, xtr, k, alpha, d0)
            std = np.sqrt(std_va**2 + term.extra_var(model.normalize_x(xva).double().numpy()))
            met = gaussian_metrics(yva, mean_va, std, ys)
            cands.append({"k": int(term.store.shape[0]), "d0": float(d0), "alpha": alpha.tolist(),
                          "val_nll": met["nll"], "val_coverage95": met["coverage95"], "val_mean_std": met["mean_std"]})
            log(f"K {k} d0 {d0}: alpha {np.round(alpha, 3).tolist()} val nll {met['nll']:.3f} "
                f"cov {met['coverage95']:.3f}")
    # one validation block cannot separate NLLs closer than ~0.01: round, then prefer the smaller
    # store (latency) and the smaller dead zone (the more cautious variance)
    best = min(cands, key=lambda c: (round(c["val_nll"], 2), c["k"], c["d0"]))
    rec = {"k": best["k"], "d0": best["d0"], "alpha": best["alpha"], "alpha_unit": "N*m per standardized input unit",
           "scheme": scheme, "folds": [f["desc"] for f in folds],
           "chosen_by": "validation NLL rounded to 0.01, ties: smaller K, then smaller d0",
           "val_without_term": {"nll": base["nll"], "coverage95": base["coverage95"]},
           "candidates": cands, "data": data_name, "run": str(run), "command": cfg.command}
    (run / NOVELTY_FILE).write_text(json.dumps(rec, indent=1) + "\n")
    log(f"chosen K {best['k']} d0 {best['d0']} -> {run / NOVELTY_FILE}")
    return rec
