"""Trivial and linear baselines every table carries, fitted by least squares on the training split
(numpy only, no torch).

Inverse dynamics (torque tau_t, N*m, on the rows 1 .. T-2 of each test episode, the rows the
sequence models predict):

* training mean: tau_hat = mean of the training torques (per joint);
* linear: tau_hat = W^T phi(q, qd, qdd), phi = [1, q, sin q, cos q, qd, sign qd, qdd] (1 + 6n
  features), the rigid-body structure's simplest linear surrogate (gravity-like sin / cos terms,
  viscous and Coulomb friction, inertia on the diagonal);
* previous torque (computed by the caller): tau_hat = tau_{t-1};
* torque AR(k) (``torque_ar``): tau_{t-1} plus a linear function of the last k measured torque
  changes, the torque signal's own trend without any state.

Forward dynamics: an ARX model o_{t+1} - o_t = W^T [1, o_t .. o_{t-na+1}, a_t .. a_{t-nb+1}], fitted
one step ahead on every training row that has its lags inside its episode, evaluated on the same
windows and horizons as the learned models (context given, then actions only).
"""

from __future__ import annotations

import numpy as np

from dynlearn_ros.datasets.filtering import episode_bounds
from dynlearn_ros.datasets.format import TrajectoryData
from dynlearn_ros.datasets.windows import gather, inverse_rows, model_arrays, window_starts


def lstsq(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """W (f, d) minimizing ||x W - y||^2; x (N, f), y (N, d). The minimum-norm solution (SVD),
    so a constant feature (a joint that never moved, sign qd of a joint at rest) or collinear
    lags leave it defined without biasing the well-determined directions."""
    return np.linalg.lstsq(x, y, rcond=None)[0]


def _qdd(data: TrajectoryData) -> np.ndarray:
    """Joint accelerations (N, n): the data set's own, or the central difference of qd per episode
    where they are missing (NaN)."""
    if data.qdd is not None and np.all(np.isfinite(data.qdd)):
        return data.qdd
    out = np.empty_like(data.qd)
    for a, b in episode_bounds(data.episode):
        out[a:b] = np.gradient(data.qd[a:b], data.dt, axis=0) if b - a > 1 else 0.0
    return out


def inverse_features(q: np.ndarray, qd: np.ndarray, qdd: np.ndarray) -> np.ndarray:
    """phi = [1, q, sin q, cos q, qd, sign qd, qdd] (N, 1 + 6n) from q, qd, qdd (N, n)."""
    return np.concatenate([np.ones((q.shape[0], 1)), q, np.sin(q), np.cos(q), qd, np.sign(qd), qdd], axis=1)


def inverse_baselines(train: TrajectoryData, test: TrajectoryData,
                      rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """{"training mean", "linear (least squares)"} -> tau_hat (M, n) on the rows ``rows`` of
    ``test`` (default ``inverse_rows(test.episode)``, the sequence models' rows; the static task
    passes every row); the linear model is fitted on all training rows."""
    rows = inverse_rows(test.episode) if rows is None else np.asarray(rows)
    w = lstsq(inverse_features(train.q, train.qd, _qdd(train)), train.tau)
    phi = inverse_features(test.q, test.qd, _qdd(test))[rows]
    mean = np.broadcast_to(train.tau.mean(0), (rows.size, train.tau.shape[1])).copy()
    return {"training mean": mean, "linear (least squares)": phi @ w}


def _torque_lags(tau: np.ndarray, episode: np.ndarray, k: int) -> np.ndarray:
    """(N, n, k): for row t, the measured torque changes tau_{t-i} - tau_{t-i-1}, i = 1 .. k, inside
    t's episode (0 where the episode has no such row)."""
    lags = np.zeros((*tau.shape, k))
    for a, b in episode_bounds(episode):
        d = np.diff(tau[a:b], axis=0)                       # d[j] = tau_{a+j+1} - tau_{a+j}
        for i in range(1, k + 1):
            # row t = a + m reads d[m - i - 1] = tau_{t-i} - tau_{t-i-1}, needs m - i - 1 >= 0
            if b - a > i + 1:
                lags[a + i + 1:b, :, i - 1] = d[: b - a - i - 1]
    return lags


def torque_ar(train: TrajectoryData, test: TrajectoryData, rows: np.ndarray, k: int = 5) -> np.ndarray:
    """Torque history alone: tau_hat_t = tau_{t-1} + sum_i w_ij (tau_{t-i} - tau_{t-i-1}), i = 1 .. k,
    per joint j, least squares on every training row with all k lags inside its episode. The
    measured-torque reference of regime (ii) beside "previous torque" (k = 0): what the torque
    signal's own trend predicts without any state. Returns tau_hat (len(rows), n) N*m."""
    lag_tr = _torque_lags(train.tau, train.episode, k)
    ok = np.zeros(len(train), dtype=bool)
    for a, b in episode_bounds(train.episode):
        ok[a + k + 1:b] = True
    prev_tr = np.roll(train.tau, 1, axis=0)
    y = (train.tau - prev_tr)[ok]
    lag_te = _torque_lags(test.tau, test.episode, k)[rows]
    out = test.tau[rows - 1].copy()
    for j in range(train.tau.shape[1]):
        w = lstsq(lag_tr[ok, j], y[:, j])
        out[:, j] += lag_te[:, j] @ w
    return out


class ARX:
    """Linear forward model o_{t+1} - o_t = W^T x_t, x_t = [1, o_t .. o_{t-na+1}, a_t .. a_{t-nb+1}].

    o (N, d_o) in the observation's units, a (N, d_a) in the action's; W (1 + na d_o + nb d_a, d_o).
    """

    def __init__(self, na: int = 2, nb: int = 2) -> None:
        if na < 1 or nb < 1:
            raise ValueError(f"na and nb must be >= 1, got {na}, {nb}")
        self.na, self.nb = int(na), int(nb)
        self.w: np.ndarray | None = None

    @property
    def lag(self) -> int:
        """Rows of history a prediction needs (the row itself included)."""
        return max(self.na, self.nb)

    def regressors(self, o_hist: np.ndarray, a_hist: np.ndarray) -> np.ndarray:
        """x (B, f) from the last ``na`` observations (B, >= na, d_o) and ``nb`` actions
        (B, >= nb, d_a), newest last."""
        parts = [np.ones((o_hist.shape[0], 1))]
        parts += [o_hist[:, -1 - i] for i in range(self.na)]
        parts += [a_hist[:, -1 - i] for i in range(self.nb)]
        return np.concatenate(parts, axis=1)

    def one_step_rows(self, obs: np.ndarray, act: np.ndarray,
                      episode: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per episode long enough, (x (M, f), y (M, d_o)): the regressors and the one-step change
        o_{t+1} - o_t of every row t with t - lag + 1 and t + 1 in its episode."""
        out = []
        L = self.lag
        for a, b in episode_bounds(episode):
            if b - a < L + 1:
                continue
            t = np.arange(a + L - 1, b - 1)                      # rows with full history and a next row
            hist = t[:, None] + np.arange(-L + 1, 1)[None, :]    # (M, L)
            out.append((self.regressors(obs[hist], act[hist]), obs[t + 1] - obs[t]))
        return out

    def fit(self, obs: np.ndarray, act: np.ndarray, episode: np.ndarray) -> ARX:
        """Least squares over every row t with t - lag + 1 and t + 1 in its episode."""
        rows = self.one_step_rows(obs, act, episode)
        if not rows:
            raise ValueError(f"no episode has the {self.lag + 1} rows an ARX({self.na}, {self.nb}) fit needs")
        self.w = lstsq(np.concatenate([x for x, _ in rows]), np.concatenate([y for _, y in rows]))
        return self

    def rollout(self, ow: np.ndarray, aw: np.ndarray, context: int) -> np.ndarray:
        """Windows ow (B, W, d_o), aw (B, W, d_a): observations 0 .. context-1 are given, then
        the model runs on its own predictions. Returns o_hat (B, W - context, d_o) for rows
        context .. W-1. Needs context >= lag."""
        if self.w is None:
            raise RuntimeError("fit the ARX model first")
        if context < self.lag:
            raise ValueError(f"context {context} < ARX lag {self.lag}")
        o = ow.copy()
        for t in range(context - 1, ow.shape[1] - 1):
            x = self.regressors(o[:, t - self.lag + 1:t + 1], aw[:, t - self.lag + 1:t + 1])
            o[:, t + 1] = o[:, t] + x @ self.w
        return o[:, context:]


def arx_multistep(train: TrajectoryData, test: TrajectoryData, obs_qd: bool = False, context: int = 30,
                  horizons: tuple[int, ...] = (1, 3, 5, 7, 10), stride: int = 10, na: int = 2,
                  nb: int = 2) -> dict:
    """ARX fitted on ``train``, RMSE per horizon (observation units, all dimensions pooled) on the
    test windows of ``context + max(horizons)`` rows ``stride`` apart, as ``forward_multistep``
    scores the learned models. Returns {"rmse": {h: float}, "rmse_per_joint": {h: list},
    "windows": int, "na": na, "nb": nb}."""
    obs_tr, act_tr = model_arrays(train, "forward", obs_qd)
    arx = ARX(na, nb).fit(obs_tr, act_tr, train.episode)
    obs, act = model_arrays(test, "forward", obs_qd)
    W = context + max(horizons)
    starts = window_starts(test.episode, W, stride)
    if len(starts) == 0:
        raise ValueError(f"no test window of {W} rows fits")
    ow, aw = gather(obs, starts, W), gather(act, starts, W)
    err = arx.rollout(ow, aw, context) - ow[:, context:]           # (B, H, d_o); index h-1 = horizon h
    out: dict = {"rmse": {}, "rmse_per_joint": {}, "windows": int(len(starts)), "na": na, "nb": nb}
    for h in horizons:
        out["rmse"][str(h)] = float(np.sqrt(np.mean(err[:, h - 1] ** 2)))
        out["rmse_per_joint"][str(h)] = np.sqrt(np.mean(err[:, h - 1] ** 2, axis=0)).tolist()
    return out
