"""An ac-RKN / RKN forward model that learns the residual of a least-squares ARX(2, 2) prediction.

``ModelConfig.base = "arx"``: the model's normalized next difference is

    mu_t = ARX(o~_t, o~_{t-1}, a_t, a_{t-1}) + decoder(z-_{t+1})

where ARX is the linear map fitted by least squares on the training split before training
(:func:`normalized_arx_weights`, frozen, stored as the buffer ``arx_w``) and the RKN part (belief,
encoder, control model, decoders) is that of :class:`~dynlearn_ros.learning.models.sequence.AcRknForward`.
o~_t is the observation where it is given and the model's own prediction where it is not, so a
masked stretch (training) or a free run (evaluation) rolls the ARX part on the model's own
outputs, as :class:`~dynlearn_ros.learning.evaluation.linear_baselines.ARX` rolls on its own.
With the decoder's output at zero the model *is* that ARX model (``test/unit/test_arx_base.py``).

Why: the least-squares ARX(2, 2) reads the velocity that two consecutive angles carry exactly
and is the best pneumatic model at h = 1-5 (docs/results.md, section 2), while the learned models
trained from scratch for minutes do not extrapolate the velocity as well. Starting from ARX the
network only has to learn what the linear map misses.

The recurrent state of :meth:`ArxBaseForward.step` is ``(belief, o_hat, o_prev, a_prev, seen,
was_valid)``: the RKN prior belief, the predicted next observation (B, d_o), the observation read
at the previous step (B, d_o), the previous action (B, d_a), ``seen`` (B, 1) = 0 before the first
step (then the lags are the current row: a window's first row has no predecessor) and
``was_valid`` (B, 1), whether the previous step read a real observation. All in normalized units
(observation / action zero mean, unit std of the training split).

Where an observation returns after a missing stretch, the lag o~_{t-1} was the model's own
prediction while o_t is real: their difference, which ARX reads as the velocity, would carry
the whole accumulated drift as a one-step jump (measured: with 75 % of the observations removed
at random, the ARX part alone reached a normalized RMSE of 133 where its plain free run gives 1.05).
So the lag is shifted by the same correction as the current row, o~_{t-1} + (o_t - o_hat_t): the
predicted velocity is kept and the level is corrected.

Residual clip (``ModelConfig.residual_clip``, ``train --residual-clip``, ``eval --residual-clip``
for a run trained without it): the decoded residual is clamped per dimension to
[-r_max, r_max], r_max the largest |ARX one-step residual| on the training rows
(:func:`arx_residual_bound`), i.e. the largest correction the training data ever asked of it.
Inside that range the model is unchanged (a clamp, not a squashing function); outside it the
network extrapolates to states it never saw (a free run feeds the model its own predictions,
and the RKN's latent runs its transition with no observation to correct it), and the clamp
keeps the free run within the base's reach of bounded inputs: ARX + a residual that cannot grow.

Not exportable to ONNX yet (the step graph carries the belief alone): ``export`` refuses it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from dynlearn_ros.datasets.normalize import Stats
from dynlearn_ros.learning.evaluation.linear_baselines import ARX
from dynlearn_ros.learning.models.sequence import AcRknForward, ModelConfig, _ForwardUnroll

#: model bases (ModelConfig.base): "none" = the paper's model, "arx" = residual on ARX(2, 2)
BASES = ("none", "arx")
#: ARX orders of the base (lags of the observation and of the action)
ARX_NA, ARX_NB = 2, 2


def normalized_arx_weights(obs: np.ndarray, act: np.ndarray, episode: np.ndarray, stats: Stats) -> np.ndarray:
    """Least-squares ARX(2, 2) weights in the model's normalized units, (1 + 2 d_o + 2 d_a, d_o).

    obs (N, d_o), act (N, d_a) physical training rows, episode (N,). Fitted on the normalized
    rows o_n = (o - mean_o) / std_o, a_n likewise: there ARX predicts (o_{t+1} - o_t) / std_o =
    x W with x = [1, o_n,t, o_n,t-1, a_n,t, a_n,t-1]; the model's target is the normalized
    difference ((o_{t+1} - o_t) - mean_d) / std_d = x W std_o / std_d - mean_d / std_d, so each
    column j of W is scaled by std_o,j / std_d,j and the constant row shifted by -mean_d / std_d.
    The same least-squares problem as the ``ARX(2, 2)`` row of every forward table (an affine
    change of the regressors leaves the fit's predictions unchanged)."""
    on = (obs - stats.obs_mean) / stats.obs_std
    an = (act - stats.act_mean) / stats.act_std
    w = ARX(ARX_NA, ARX_NB).fit(on, an, episode).w
    w = w * (stats.obs_std / stats.dobs_std)[None, :]
    w[0] -= stats.dobs_mean / stats.dobs_std
    return w


def arx_residual_bound(obs: np.ndarray, act: np.ndarray, episode: np.ndarray, stats: Stats,
                       w: np.ndarray) -> np.ndarray:
    """r_max (d_o,): per dimension, the largest |normalized next difference - ARX prediction| over
    the training rows, in the model's normalized-difference units (those of the residual it adds).

    obs (N, d_o), act (N, d_a), episode (N,) physical training rows; w the base's weights from
    :func:`normalized_arx_weights` on the same rows. Row t pairs the regressors of rows t-1, t with
    the change o_{t+1} - o_t (``ARX.one_step_rows``), the pairing the model's step uses."""
    on = (obs - stats.obs_mean) / stats.obs_std
    an = (act - stats.act_mean) / stats.act_std
    rows = ARX(ARX_NA, ARX_NB).one_step_rows(on, an, episode)
    if not rows:
        raise ValueError("no training episode is long enough for the ARX base's residual range")
    x = np.concatenate([r[0] for r in rows])
    dn = np.concatenate([r[1] for r in rows]) * stats.obs_std              # o_{t+1} - o_t, physical
    target = (dn - stats.dobs_mean) / stats.dobs_std
    return np.abs(target - x @ w).max(axis=0)


class ArxBaseForward(AcRknForward):
    """ac-RKN (or, with ``concat_actions``, RKN) forward model on an ARX(2, 2) base (module doc)."""

    def __init__(self, cfg: ModelConfig, concat_actions: bool = False) -> None:
        if cfg.fwd_output != "difference":
            raise ValueError("base 'arx' needs fwd_output 'difference'")
        super().__init__(cfg, concat_actions)
        d_o, d_a = cfg.obs_dim, cfg.act_dim
        self.register_buffer("arx_w", torch.zeros(1 + ARX_NA * d_o + ARX_NB * d_a, d_o))
        # normalized difference -> normalized observation change (std_d / std_o, mean_d / std_o)
        self.register_buffer("delta_scale", torch.ones(d_o))
        self.register_buffer("delta_shift", torch.zeros(d_o))
        # residual clip (module doc): r_max (d_o,), +inf until set_residual_bound; None = no clip
        self.register_buffer("res_bound", torch.full((d_o,), float("inf")) if cfg.residual_clip else None)

    def set_residual_bound(self, bound: np.ndarray) -> None:
        """Clip the residual to [-bound, bound] from now on (bound (d_o,) > 0, normalized-difference
        units, from :func:`arx_residual_bound`); also on a model built without ``residual_clip``."""
        b = torch.as_tensor(np.asarray(bound, dtype=np.float64), dtype=torch.float32)
        if b.shape != self.delta_scale.shape or not bool(torch.all(b > 0)):
            raise ValueError(f"residual bound must be ({self.delta_scale.numel()},) and > 0, got {b.tolist()}")
        self.res_bound = b.clone()

    def set_arx(self, w: np.ndarray) -> None:
        """Copy the base's weights (from :func:`normalized_arx_weights`) into ``arx_w``."""
        w = torch.as_tensor(np.asarray(w), dtype=torch.float32)
        if w.shape != self.arx_w.shape:
            raise ValueError(f"ARX weights of shape {tuple(w.shape)}, expected {tuple(self.arx_w.shape)}")
        self.arx_w.copy_(w)

    def initial_state(self, batch: int) -> tuple:
        d_o, d_a = self.cfg.obs_dim, self.cfg.act_dim
        return (super().initial_state(batch), torch.zeros(batch, d_o), torch.zeros(batch, d_o),
                torch.zeros(batch, d_a), torch.zeros(batch, 1), torch.ones(batch, 1))

    def arx_delta(self, o: Tensor, o_prev: Tensor, a: Tensor, a_prev: Tensor) -> Tensor:
        """The base's normalized next difference (B, d_o) from normalized o_t, o_{t-1} (B, d_o)
        and a_t, a_{t-1} (B, d_a)."""
        x = torch.cat([torch.ones_like(o[:, :1]), o, o_prev, a, a_prev], -1)
        return x @ self.arx_w

    def step(self, obs: Tensor, valid: Tensor, act: Tensor, state: tuple) -> tuple[Tensor, Tensor, tuple]:
        """obs (B, d_o) (ignored where valid = 0: the model's own prediction is read), valid (B, 1),
        act (B, d_a), state (class docstring) -> delta mean, delta var (B, d_o), next state."""
        belief, o_hat, o_prev, a_prev, seen, was_valid = state
        o_in = valid * obs + (1 - valid) * o_hat
        back = valid * (1 - was_valid)          # a real observation after a predicted one
        o_lag = seen * (o_prev + back * (o_in - o_hat)) + (1 - seen) * o_in
        a_lag = seen * a_prev + (1 - seen) * act
        res, var, prior = super().step(o_in, valid, act, belief)
        if self.res_bound is not None:
            res = torch.minimum(torch.maximum(res, -self.res_bound), self.res_bound)
        mu = res + self.arx_delta(o_in, o_lag, act, a_lag)
        o_next = o_in + mu * self.delta_scale + self.delta_shift
        return mu, var, (prior, o_next, o_in, act, torch.ones_like(seen), valid)

    #: every step through ``step`` above (the generic unrolling), not AcRknForward's structured
    #: ``seq``, which does its own free-run bookkeeping that ``step`` already carries here
    seq = _ForwardUnroll.seq
