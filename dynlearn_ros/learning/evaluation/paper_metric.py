"""The ac-RKN paper's multi-step metric on its (leaky) 40-row windows, for comparison with its figures.

For every test window (one pseudo-episode of :func:`dynlearn_ros.datasets.splits.split_paper_leaky`)
and every position p with at least ``min_context`` observed rows (p = min_context-1 .. W-2), the
observations 0 .. p are given, the later ones removed, and the model rolls forward on the actions:
o_hat_{p+k} = o_p + sum_{s=p}^{p+k-1} delta_s. The k-step RMSE (observation units, all joints
pooled) is taken over every (window, p) with p + k <= W - 1. This is what the reference
implementation's sliding evaluation computes (context 5 growing along the window, k - 1 masked
steps, the last prediction scored); since every model here is causal, one run with rows p+1 ..
masked gives the k-step predictions of every k at once; and since steps 0 .. p of that run are
those of the fully observed run, one observed pass stores the recurrent state after every step
and each p only rolls the remaining K - 1 masked steps from it (``step`` API of every forward
model).

The previous-state predictor is scored on the same (window, p) pairs (o_hat_{p+k} = o_p), and, as
the paper's own "naive baseline" does, also on every position p >= 0 ("prev_state_all_rmse").
"""

from __future__ import annotations

import numpy as np
import torch

from dynlearn_ros.datasets.filtering import episode_bounds
from dynlearn_ros.datasets.format import TrajectoryData
from dynlearn_ros.datasets.normalize import Stats
from dynlearn_ros.datasets.windows import model_arrays

HORIZONS = (1, 3, 5, 7, 10)


def _windows(data: TrajectoryData, obs_qd: bool) -> tuple[np.ndarray, np.ndarray]:
    """(obs (B, W, d_o), act (B, W, d_a)) of the test windows, all of one length W."""
    obs, act = model_arrays(data, "forward", obs_qd)
    bounds = episode_bounds(data.episode)
    lengths = {b - a for a, b in bounds}
    if len(lengths) != 1:
        raise ValueError(f"paper metric: test episodes must be windows of one length, got lengths {sorted(lengths)[:5]}")
    idx = np.stack([np.arange(a, b) for a, b in bounds])
    return obs[idx], act[idx]


def _scores(pred: dict[int, np.ndarray], truth: dict[int, np.ndarray], horizons) -> dict[str, float]:
    return {str(k): float(np.sqrt(np.mean((pred[k] - truth[k]) ** 2))) for k in horizons}


@torch.no_grad()
def paper_multistep(model: torch.nn.Module | None, stats: Stats | None, data: TrajectoryData, obs_qd: bool = False,
                    horizons: tuple[int, ...] = HORIZONS, min_context: int = 5, arx=None) -> dict:
    """k-step RMSE per horizon of ``model`` (or, with ``model`` None, only the references) on the
    windows of ``data``; with ``arx`` (a fitted ARX) its rows too. Returns {"rmse": {k},
    "prev_state_rmse": {k}, "prev_state_all_rmse": {k}, ["arx_rmse": {k}], "windows", "min_context",
    "pairs": {k: number of (window, p) pairs}}."""
    ow, aw = _windows(data, obs_qd)
    B, W, d = ow.shape
    K = max(horizons)
    if min_context < 1 or min_context + 1 > W:
        raise ValueError(f"min_context {min_context} does not fit windows of {W} rows")
    if arx is not None and min_context < arx.lag:
        raise ValueError(f"min_context {min_context} < ARX lag {arx.lag}")
    preds: dict[int, list] = {k: [] for k in horizons}
    prevs: dict[int, list] = {k: [] for k in horizons}
    arxs: dict[int, list] = {k: [] for k in horizons}
    truths: dict[int, list] = {k: [] for k in horizons}
    if model is not None:
        model.eval()
        on = torch.as_tensor((ow - stats.obs_mean) / stats.obs_std, dtype=torch.float32)
        an = torch.as_tensor((aw - stats.act_mean) / stats.act_std, dtype=torch.float32)
    if model is not None:
        # observed pass: mu of every step and the recurrent state after every step
        state = model.initial_state(B)
        ones = torch.ones(B, 1)
        mu_obs, states_after = [], []
        for t in range(W - 1):
            mu, _, state = model.step(on[:, t], ones, an[:, t], state)
            mu_obs.append(mu)
            states_after.append(state)
    for p in range(min_context - 1, W - 1):
        n_ahead = min(K, W - 1 - p)
        if model is not None:
            mus, st, zeros = [mu_obs[p]], states_after[p], torch.zeros(B, 1)
            for t in range(p + 1, p + n_ahead):     # rows p+1 .. removed: the model runs on actions
                mu, _, st = model.step(on[:, t], zeros, an[:, t], st)
                mus.append(mu)
            delta = torch.stack(mus, 1).double().numpy() * stats.dobs_std + stats.dobs_mean   # (B, n_ahead, d)
            o_hat = ow[:, p][:, None] + np.cumsum(delta, axis=1)
        if arx is not None:
            arx_hat = arx.rollout(ow[:, :p + 1 + n_ahead], aw[:, :p + 1 + n_ahead], p + 1)
        for k in horizons:
            if k > n_ahead:
                continue
            truths[k].append(ow[:, p + k])
            prevs[k].append(ow[:, p])
            if model is not None:
                preds[k].append(o_hat[:, k - 1])
            if arx is not None:
                arxs[k].append(arx_hat[:, k - 1])
    cat = {k: np.concatenate(v) for k, v in truths.items()}
    out: dict = {"windows": int(B), "window_rows": int(W), "min_context": int(min_context),
                 "pairs": {str(k): int(cat[k].shape[0]) for k in horizons},
                 "prev_state_rmse": _scores({k: np.concatenate(v) for k, v in prevs.items()}, cat, horizons)}
    if model is not None:
        out["rmse"] = _scores({k: np.concatenate(v) for k, v in preds.items()}, cat, horizons)
    if arx is not None:
        out["arx_rmse"] = _scores({k: np.concatenate(v) for k, v in arxs.items()}, cat, horizons)
    # the paper's naive baseline: o_hat_{p+k} = o_p at every position p >= 0 of the window
    out["prev_state_all_rmse"] = {str(k): float(np.sqrt(np.mean((ow[:, k:] - ow[:, :-k]) ** 2))) for k in horizons}
    return out
