"""Evaluation in physical units on a held-out split.

Forward (multi-step): windows of ``context + max(horizons)`` rows; the first ``context``
observations are given, the rest are removed; the model rolls forward on the actions alone and
o_hat_{t+1} = o~_t + delta_t, o~_t = o_t if observed else o_hat_t. RMSE at horizon h (rad for
joint angles) pools every joint and window. The previous-state predictor (o_hat = last observed
o) is computed on the same windows. NLL: Gaussian NLL per dimension of the normalized one-step
difference with every observation given (natural log, including 0.5 log 2 pi).

Free run (``forward_free_run``): each whole test episode from a short context, then actions only;
pooled RMSE, the RMSE curve against the steps since the context, and the previous-state and ARX
references on the same rows.

Inverse: each test episode is run from the initial belief, one step per row, with the measured
previous torque fed back (as the controller does through ``commit``); torque RMSE (N*m) per joint
and pooled over joints, for rows t = 1 .. T-2 of every episode.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dynlearn_ros.datasets.filtering import episode_bounds
from dynlearn_ros.datasets.format import TrajectoryData
from dynlearn_ros.datasets.normalize import Stats
from dynlearn_ros.datasets.windows import gather, model_arrays, window_starts

HORIZONS = (1, 3, 5, 7, 10)


def _t(x: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float32)


@torch.no_grad()
def forward_multistep(model: torch.nn.Module, stats: Stats, data: TrajectoryData, obs_qd: bool = False,
                      context: int = 30, horizons: tuple[int, ...] = HORIZONS, stride: int = 10,
                      batch: int = 512) -> dict:
    """Multi-step RMSE per horizon (physical units) for ``model`` and the previous-state predictor."""
    model.eval()
    obs, act = model_arrays(data, "forward", obs_qd)
    H = max(horizons)
    W = context + H
    starts = window_starts(data.episode, W, stride)
    if len(starts) == 0:
        raise ValueError(f"no test window of {W} rows fits")
    sq = np.zeros((H, obs.shape[1]))
    sq_prev = np.zeros((H, obs.shape[1]))
    nll_sum, nll_n = 0.0, 0
    for b in range(0, len(starts), batch):
        s = starts[b:b + batch]
        ow, aw = gather(obs, s, W), gather(act, s, W)
        on = _t((ow - stats.obs_mean) / stats.obs_std)
        an = _t((aw - stats.act_mean) / stats.act_std)
        valid = torch.zeros(len(s), W - 1, 1)
        valid[:, :context] = 1.0
        mu, _ = model.seq(on[:, :-1], an[:, :-1], valid)
        delta = mu.double().numpy() * stats.dobs_std + stats.dobs_mean      # (k, W-1, d)
        o_tilde = ow[:, context - 1].copy()
        for h in range(H):
            t = context - 1 + h
            o_hat = o_tilde + delta[:, t]
            sq[h] += ((o_hat - ow[:, t + 1]) ** 2).sum(0)
            sq_prev[h] += ((ow[:, context - 1] - ow[:, t + 1]) ** 2).sum(0)
            o_tilde = o_hat
        # one-step NLL with everything observed
        mu1, var1 = model.seq(on[:, :-1], an[:, :-1], torch.ones(len(s), W - 1, 1))
        y = (np.diff(ow, axis=1) - stats.dobs_mean) / stats.dobs_std
        v = var1.double().numpy()
        nll = 0.5 * (np.log(2 * math.pi * v) + (y - mu1.double().numpy()) ** 2 / v)
        nll_sum += float(nll.sum())
        nll_n += nll.size
    n = len(starts)
    out = {"windows": int(n), "context": context, "rmse": {}, "rmse_per_joint": {}, "prev_state_rmse": {}}
    for h in horizons:
        out["rmse"][str(h)] = float(np.sqrt(sq[h - 1].sum() / (n * obs.shape[1])))
        out["rmse_per_joint"][str(h)] = np.sqrt(sq[h - 1] / n).tolist()
        out["prev_state_rmse"][str(h)] = float(np.sqrt(sq_prev[h - 1].sum() / (n * obs.shape[1])))
    out["nll_1step"] = nll_sum / nll_n
    return out


def _free_run_outputs(model: torch.nn.Module, stats: Stats, obs: np.ndarray, act: np.ndarray,
                      bounds: list[tuple[int, int]], context: int, batch: int = 256) -> dict[int, np.ndarray]:
    """The model's normalized outputs (T-1, d_o) float64 of each episode [a, b) given its first
    ``context`` observations, keyed by a. Episodes run ``batch`` at a time, sorted by length and
    padded at the end to the longest of their batch (no observation, zero action): every model
    here is causal (output t reads inputs 0 .. t only) and every row of a batch is computed
    independently, so the padding changes no kept output and this is the per-episode run up to
    float32 summation order. One padded batch takes max(T) sequential steps where batching by equal
    length took the sum over the distinct lengths (pneumatic test split: 145 instead of ~5,300)."""
    order = sorted(bounds, key=lambda ab: ab[1] - ab[0])
    out: dict[int, np.ndarray] = {}
    for i in range(0, len(order), batch):
        chunk = order[i:i + batch]
        T = max(b - a for a, b in chunk)
        on = np.zeros((len(chunk), T, obs.shape[1]))
        an = np.zeros((len(chunk), T, act.shape[1]))
        for j, (a, b) in enumerate(chunk):
            on[j, :b - a] = (obs[a:b] - stats.obs_mean) / stats.obs_std
            an[j, :b - a] = (act[a:b] - stats.act_mean) / stats.act_std
        valid = torch.zeros(len(chunk), T - 1, 1)
        valid[:, :context] = 1.0
        mu, _ = model.seq(_t(on[:, :-1]), _t(an[:, :-1]), valid)
        for (a, b), m in zip(chunk, mu.double().numpy(), strict=True):
            out[a] = m[:b - a - 1]
    return out


@torch.no_grad()
def forward_free_run(model: torch.nn.Module, stats: Stats, data: TrajectoryData, obs_qd: bool = False,
                     context: int = 10, arx=None) -> dict:
    """Free run over whole test episodes: the first ``context`` observations of each episode are
    given, then the model runs on the actions alone to the episode's end (o_hat_{t+1} = o_hat_t +
    delta_t). Returns {"rmse": pooled RMSE over every free-run row (observation units),
    "curve": {h: RMSE at h steps after the context, pooled over the episodes that reach it},
    "prev_state_rmse", "prev_state_curve" (the last context observation held), "max_abs_ratio":
    max |o_hat| / max |o| over the test rows (a diverging model shows >> 1), "episodes", "rows"};
    with ``arx`` (a fitted :class:`~dynlearn_ros.learning.evaluation.linear_baselines.ARX`) also
    "arx_rmse", "arx_curve"."""
    model.eval()
    obs, act = model_arrays(data, "forward", obs_qd)
    sq: dict[int, list[float]] = {}
    sq_prev: dict[int, list[float]] = {}
    sq_arx: dict[int, list[float]] = {}
    peak, n_ep = 0.0, 0
    bounds = [(a, b) for a, b in episode_bounds(data.episode) if b - a > context]
    mus = _free_run_outputs(model, stats, obs, act, bounds, context)
    for a, b in bounds:
        n_ep += 1
        ow, aw = obs[a:b][None], act[a:b][None]
        delta = mus[a] * stats.dobs_std + stats.dobs_mean
        o_hat = ow[0, context - 1] + np.cumsum(delta[context - 1:], axis=0)   # rows context .. end
        truth = ow[0, context:]
        peak = max(peak, float(np.max(np.abs(o_hat))))
        arx_hat = arx.rollout(ow, aw, context)[0] if arx is not None else None
        for h in range(1, truth.shape[0] + 1):
            sq.setdefault(h, []).append(float(np.sum((o_hat[h - 1] - truth[h - 1]) ** 2)))
            sq_prev.setdefault(h, []).append(float(np.sum((ow[0, context - 1] - truth[h - 1]) ** 2)))
            if arx_hat is not None:
                sq_arx.setdefault(h, []).append(float(np.sum((arx_hat[h - 1] - truth[h - 1]) ** 2)))
    if n_ep == 0:
        raise ValueError(f"no test episode is longer than the context of {context} rows")
    d = obs.shape[1]

    def pooled(s: dict[int, list[float]]) -> float:
        tot = sum(sum(v) for v in s.values())
        return float(np.sqrt(tot / (d * sum(len(v) for v in s.values()))))

    def curve(s: dict[int, list[float]]) -> dict[str, float]:
        return {str(h): float(np.sqrt(np.sum(v) / (d * len(v)))) for h, v in sorted(s.items())}

    out = {"context": context, "episodes": n_ep, "rows": int(sum(len(v) for v in sq.values())),
           "rmse": pooled(sq), "curve": curve(sq), "prev_state_rmse": pooled(sq_prev),
           "prev_state_curve": curve(sq_prev),
           "max_abs_ratio": peak / max(float(np.max(np.abs(obs))), 1e-12)}
    if arx is not None:
        out["arx_rmse"], out["arx_curve"] = pooled(sq_arx), curve(sq_arx)
    return out


@torch.no_grad()
def inverse_predict(model: torch.nn.Module, stats: Stats, data: TrajectoryData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tau_hat (M, n), tau_std (M, n), row index (M,)) over every test episode's rows 1..T-2."""
    model.eval()
    obs, act = model_arrays(data, "inverse")
    means, stds, rows = [], [], []
    for a, b in episode_bounds(data.episode):
        if b - a < 3:
            continue
        sl = slice(a, b)
        on = _t((obs[sl] - stats.obs_mean) / stats.obs_std)[None]
        an = _t((act[sl] - stats.act_mean) / stats.act_std)[None]
        mu, var, _ = model.seq(on, an)
        if model.cfg.act_target == "absolute":
            means.append(mu[0].double().numpy() * stats.act_std + stats.act_mean)
            stds.append(np.sqrt(var[0].double().numpy()) * stats.act_std)
        else:
            d_mu = mu[0].double().numpy() * stats.dact_std + stats.dact_mean
            means.append(act[sl][:-2] + d_mu)
            stds.append(np.sqrt(var[0].double().numpy()) * stats.dact_std)
        rows.append(np.arange(a + 1, b - 1))
    return np.concatenate(means), np.concatenate(stds), np.concatenate(rows)


@torch.no_grad()
def inverse_predict_fed_back(model: torch.nn.Module, stats: Stats,
                             data: TrajectoryData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The controller form: like :func:`inverse_predict`, but no measured torque is read after
    tau_0 of each episode; step t reads the model's *own* previous prediction tau_hat_{t-1} (N*m)
    where the measured tau_{t-1} went, for every inverse kind and either ``act_target``
    ("difference": tau_hat_t = tau_hat_{t-1} + the predicted change, so errors add up;
    "absolute": tau_hat_t = the prediction). In a computed-torque loop the torque fed back is the
    commanded one, model output plus PD correction; with the plant tracking well the PD part is
    small, so this is the model's share of that loop, open-loop in the torque.

    Returns (tau_hat (M, n) N*m, std (M, n) N*m, rows (M,)) over rows 1 .. T-2 of every episode,
    the same rows as :func:`inverse_predict`. The std is the model's one-step variance head: for
    a "difference" model it does not include the accumulated error, so its NLL here is not a
    calibration figure."""
    model.eval()
    obs, act = model_arrays(data, "inverse")
    absolute = model.cfg.act_target == "absolute"
    on_all = (obs - stats.obs_mean) / stats.obs_std
    means, stds, rows = [], [], []
    for a, b in episode_bounds(data.episode):
        if b - a < 3:
            continue
        on = _t(on_all[a:b])
        state = model.initial_state(1)
        tau_prev = act[a].astype(np.float64)
        mu_ep = np.empty((b - a - 2, act.shape[1]))
        sd_ep = np.empty_like(mu_ep)
        for k, t in enumerate(range(1, b - a - 1)):
            a_in = _t(((tau_prev - stats.act_mean) / stats.act_std)[None])
            mu, var, state = model.step(on[t:t + 1], on[t + 1:t + 2], a_in, state)
            mu_n, sd_n = mu[0].double().numpy(), np.sqrt(var[0].double().numpy())
            if absolute:
                tau_prev = mu_n * stats.act_std + stats.act_mean
                sd_ep[k] = sd_n * stats.act_std
            else:
                tau_prev = tau_prev + mu_n * stats.dact_std + stats.dact_mean
                sd_ep[k] = sd_n * stats.dact_std
            mu_ep[k] = tau_prev
        means.append(mu_ep)
        stds.append(sd_ep)
        rows.append(np.arange(a + 1, b - 1))
    return np.concatenate(means), np.concatenate(stds), np.concatenate(rows)


def torque_errors(tau_hat: np.ndarray, tau: np.ndarray, std: np.ndarray | None = None) -> dict:
    """RMSE per joint and pooled (N*m); with a std, also the mean Gaussian NLL per joint value and
    the fraction of errors inside +-2 std (calibration)."""
    err = tau_hat - tau
    out = {"rmse_per_joint": np.sqrt((err ** 2).mean(0)).tolist(),
           "rmse": float(np.sqrt((err ** 2).mean())),
           "nmse_per_joint": ((err ** 2).mean(0) / tau.var(0)).tolist(),
           "rows": int(len(tau))}
    if std is not None:
        out["nll"] = float(np.mean(0.5 * np.log(2 * math.pi * std ** 2) + 0.5 * (err / std) ** 2))
        out["within_2std"] = float(np.mean(np.abs(err) <= 2 * std))
    return out


def inverse_eval(model: torch.nn.Module, stats: Stats, data: TrajectoryData) -> dict:
    tau_hat, std, rows = inverse_predict(model, stats, data)
    return torque_errors(tau_hat, data.tau[rows], std)
