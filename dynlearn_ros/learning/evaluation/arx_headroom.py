"""How much of a linear ARX model's h-step error is predictable at all (numpy + scikit-learn).

The learned part of ``train --base arx`` can only remove the part of the ARX rollout error that is
a function of what the model sees. This module measures that part directly, without a recurrent
model, on the same windows the tables score (``context`` observed rows, then ``horizon`` steps on
the actions alone; ``stride`` rows apart):

* ``residual_autocorr``: autocorrelation of the ARX one-step residual
  r_t = (o_{t+1} - o_t) - ARX(o, a)_t at lags 1 .. L, per dimension, inside episodes. A residual
  that is white (autocorrelation ~0 at every lag) carries nothing a model could extrapolate from
  its own past; what is left to learn must then come from the states and actions.
* ``headroom``: the ARX rollout error e_h = o_{c-1+h} - o_hat_{c-1+h} (B, d_o) regressed on the
  information a causal model has at that point: the last ``obs_lags`` context observations (the
  newest absolute, the others as differences to it) and the actions a_{c-1-act_lags+1} ..
  a_{c-2+h} (the past ones and the h the rollout reads). Two regressors, fitted on the training
  windows only, scored on validation and test windows: ridge-free least squares (linear) and
  gradient-boosted trees per dimension (nonlinear, early stopping on 10 % of the training
  windows). Optionally the same with ``extra`` features per window (e.g. quantities a window
  does not show, such as the measured muscle pressure), to separate "not learnable from the
  window" from "not learnable at all".

Units: observations and errors in the data's units (rad for the pneumatic arm); RMSE pools every
dimension. R^2 = 1 - SSE / SST of e_h around its training mean.
"""

from __future__ import annotations

import numpy as np

from dynlearn_ros.datasets.windows import gather, window_starts
from dynlearn_ros.learning.evaluation.linear_baselines import ARX, lstsq


def one_step_residuals(arx: ARX, obs: np.ndarray, act: np.ndarray, episode: np.ndarray) -> list[np.ndarray]:
    """Per episode, the ARX one-step residuals (T_e - lag, d_o) in the observation's units, for the
    rows t = lag-1 .. T_e-2 that have a full history and a next row."""
    return [y - x @ arx.w for x, y in arx.one_step_rows(obs, act, episode)]


def residual_autocorr(residuals: list[np.ndarray], lags: int = 10) -> np.ndarray:
    """Autocorrelation (lags, d_o) of per-episode residual series at lags 1 .. ``lags``: for each
    lag k and dimension j, sum_e sum_t r_{e,t,j} r_{e,t+k,j} / sum_e sum_t r_{e,t,j}^2 over pairs
    inside an episode (the pooled mean is removed first). A white residual gives values within
    about +-2 / sqrt(N_pairs) of 0."""
    pooled_mean = np.concatenate(residuals).mean(0)
    rs = [r - pooled_mean for r in residuals]
    var = sum((r ** 2).sum(0) for r in rs)
    out = np.zeros((lags, rs[0].shape[1]))
    for k in range(1, lags + 1):
        out[k - 1] = sum((r[:-k] * r[k:]).sum(0) for r in rs if len(r) > k) / var
    return out


def window_features(ow: np.ndarray, aw: np.ndarray, context: int, horizon: int, obs_lags: int = 10,
                    act_lags: int = 10) -> np.ndarray:
    """Features (B, f) of windows ow (B, W, d_o), aw (B, W, d_a) for the error at row
    context-1+horizon: o_{c-1} and o_{c-1-k} - o_{c-1}, k = 1 .. obs_lags-1, and the actions
    a_{c-act_lags} .. a_{c-2+horizon} (every action the rollout to that row reads, plus the
    past ones)."""
    last = ow[:, context - 1]
    parts = [last] + [ow[:, context - 1 - k] - last for k in range(1, obs_lags)]
    parts += [aw[:, t] for t in range(context - act_lags, context - 1 + horizon)]
    return np.concatenate(parts, axis=1)


def _windows(obs, act, episode, context, horizon, stride):
    W = context + horizon
    starts = window_starts(episode, W, stride)
    return starts, gather(obs, starts, W), gather(act, starts, W)


def _r2(err_after: np.ndarray, err_before: np.ndarray, mean: np.ndarray) -> float:
    return float(1.0 - np.sum(err_after ** 2) / np.sum((err_before - mean) ** 2))


def headroom(train: tuple, evals: dict[str, tuple], context: int = 30, horizon: int = 10,
             stride: int = 10, na: int = 2, nb: int = 2, obs_lags: int = 10, act_lags: int = 10,
             extra: dict[str, np.ndarray] | None = None, seed: int = 0, trees: bool = True) -> dict:
    """ARX rollout error at ``horizon`` and the part of it two regressors predict.

    ``train`` and each value of ``evals`` are (obs (N, d_o), act (N, d_a), episode (N,)) tuples;
    ``extra`` optionally maps the same names ("train" and the keys of ``evals``) to per-row
    arrays (N, d_x) whose value at the last context row is appended to the features (a second
    set of fits, "+extra"). Returns {"autocorr": (lags, d_o) list, "rmse": {split: {row: float}},
    "r2": {split: {row: float}}, "windows": {split: int}, "features": int}; rows are "previous
    state", "ARX", "ARX + linear", "ARX + trees" and the "+extra" variants.
    """
    obs, act, ep = train
    arx = ARX(na, nb).fit(obs, act, ep)
    out: dict = {"autocorr": residual_autocorr(one_step_residuals(arx, obs, act, ep)).tolist(),
                 "rmse": {}, "r2": {}, "windows": {}, "context": context, "horizon": horizon}
    data = {}
    for name, (o, a, e) in {"train": train, **evals}.items():
        starts, ow, aw = _windows(o, a, e, context, horizon, stride)
        err = ow[:, -1] - arx.rollout(ow, aw, context)[:, -1]               # (B, d_o)
        prev = ow[:, -1] - ow[:, context - 1]
        x = window_features(ow, aw, context, horizon, obs_lags, act_lags)
        xe = None
        if extra is not None:
            xe = np.concatenate([x, extra[name][starts + context - 1]], axis=1)
        data[name] = (x, xe, err, prev)
        out["windows"][name] = int(len(starts))
    x_tr, xe_tr, e_tr, _ = data["train"]
    out["features"] = int(x_tr.shape[1])
    mean = e_tr.mean(0)

    def design(x, m, s):
        return np.concatenate([np.ones((len(x), 1)), (x - m) / s], axis=1)

    from threadpoolctl import threadpool_limits

    models = {}
    for row, which in (("ARX + linear", "x"), ("ARX + linear +extra", "xe")):
        xt = x_tr if which == "x" else xe_tr
        if xt is None:
            continue
        m, s = xt.mean(0), xt.std(0) + 1e-9
        models[row] = ("lin", lstsq(design(xt, m, s), e_tr), m, s, which)
    if trees:
        from sklearn.ensemble import HistGradientBoostingRegressor
        from threadpoolctl import threadpool_limits

        # one OpenMP thread: on a shared, loaded machine a thread pool spins instead of working
        with threadpool_limits(1):
            for row, which in (("ARX + trees", "x"), ("ARX + trees +extra", "xe")):
                xt = x_tr if which == "x" else xe_tr
                if xt is None:
                    continue
                regs = [HistGradientBoostingRegressor(max_iter=300, learning_rate=0.05, early_stopping=True,
                                                      validation_fraction=0.1, random_state=seed).fit(xt, e_tr[:, j])
                        for j in range(e_tr.shape[1])]
                models[row] = ("trees", regs, None, None, which)
    for name, (x, xe, err, prev) in data.items():
        rm, r2 = {}, {}
        rm["previous state"] = float(np.sqrt(np.mean(prev ** 2)))
        rm["ARX"] = float(np.sqrt(np.mean(err ** 2)))
        r2["ARX"] = _r2(err, err, mean)
        for row, (kind, w, m, s, which) in models.items():
            xx = x if which == "x" else xe
            if kind == "lin":
                pred = design(xx, m, s) @ w
            else:
                with threadpool_limits(1):
                    pred = np.stack([r.predict(xx) for r in w], axis=1)
            after = err - pred
            rm[row] = float(np.sqrt(np.mean(after ** 2)))
            r2[row] = _r2(after, err, mean)
        out["rmse"][name], out["r2"][name] = rm, r2
    return out
