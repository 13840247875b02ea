"""Forward and inverse dynamics models (torch), all in normalized units.

Forward models map observations o_t (B, T, d_o), actions a_t (B, T, d_a) and an observation
valid mask (B, T, 1) to the normalized next difference ``o_{t+1} - o_t`` (mean and variance,
(B, T, d_o)). A masked step sees no observation: the RKN models skip the Kalman update, the
recurrent baselines read their own last prediction instead.

Inverse models read a window of W rows, obs (B, W, d_o) and actions (B, W, d_a), and predict,
for t = 1 .. W-2, from o_t, the desired next observation o_{t+1} (entering as the normalized
change, see ``_DesiredChange``) and the executed previous action a_{t-1} ((B, W-2, d_a), mean and
variance) either the normalized action difference ``a_t - a_{t-1}`` (``act_target`` =
"difference", the ac-RKN paper's choice) or the normalized action a_t itself ("absolute").

Why "absolute" exists: with "difference", the output is a_{t-1} + (network output), so the
previous executed action reaches the output with gain exactly 1. In closed loop that action
includes the controller's PD torque, and a network that learned small differences (smooth
training data) hands the PD torque back every tick: the PD term becomes an integrator and the
loop diverges. With "absolute", a_{t-1} reaches the output only through the latent state, so
its gain is whatever the data taught.

Every model also exposes ``step(...)`` with an explicit recurrent state, used for the ONNX export
and checked against ``seq`` in the unit tests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn

from dynlearn_ros.learning.models.rkn import Belief, Encoder, RKNCell, elup1, mlp

FORWARD_KINDS = ("acrkn-fwd", "rkn", "lstm", "gru")
#: what an ac-RKN forward decoder predicts (ModelConfig.fwd_output; see AcRknForward)
FWD_OUTPUTS = ("difference", "acceleration", "acceleration_residual")
#: the forms that predict only the velocity change and integrate q by the semi-implicit Euler step
STRUCTURED_OUTPUTS = ("acceleration", "acceleration_residual")
INVERSE_KINDS = ("acrkn-inv", "lstm", "gru", "ffnn")
ACT_TARGETS = ("difference", "absolute")


@dataclass
class ModelConfig:
    """Sizes shared by the ac-RKN and the baselines (same encoder/decoder widths)."""

    kind: str
    direction: str            # "forward" | "inverse"
    obs_dim: int
    act_dim: int
    lod: int = 15             # latent observation size m (RNN hidden size = 2m for the baselines)
    num_basis: int = 15
    bandwidth: int = 3
    enc_hidden: tuple[int, ...] = (120,)
    dec_hidden: tuple[int, ...] = (120,)
    ctrl_hidden: tuple[int, ...] = (120,)
    init_trans_cov: float = 0.1
    act_target: str = "difference"   # inverse: "difference" (a_t - a_{t-1}) | "absolute" (a_t)
    fwd_output: str = "difference"   # ac-RKN forward: one of FWD_OUTPUTS (see AcRknForward)
    base: str = "none"               # forward: "none" | "arx" (learn the residual of ARX(2, 2), models.arx_base)
    residual_clip: bool = False      # base "arx": clip the residual to the training residual's range (models.arx_base)
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.act_target not in ACT_TARGETS:
            raise ValueError(f"act_target must be one of {ACT_TARGETS}, got {self.act_target!r}")
        if self.fwd_output not in FWD_OUTPUTS:
            raise ValueError(f"fwd_output must be one of {FWD_OUTPUTS}, got {self.fwd_output!r}")
        if self.fwd_output in STRUCTURED_OUTPUTS and (self.direction != "forward" or self.obs_dim % 2
                                                      or self.kind not in ("acrkn-fwd", "rkn")):
            raise ValueError(f"fwd_output {self.fwd_output!r} needs an RKN forward model observing [q, qd] "
                             f"(got {self.kind} {self.direction}, obs_dim {self.obs_dim})")
        if self.base not in ("none", "arx"):
            raise ValueError(f"base must be 'none' or 'arx', got {self.base!r}")
        if self.base == "arx" and (self.direction != "forward" or self.kind not in ("acrkn-fwd", "rkn")
                                   or self.fwd_output != "difference"):
            raise ValueError("base 'arx' needs an ac-RKN or RKN forward model with fwd_output 'difference' "
                             f"(got {self.kind} {self.direction}, fwd_output {self.fwd_output})")
        if self.residual_clip and self.base != "arx":
            raise ValueError("residual_clip needs base 'arx' (it bounds the residual on the ARX prediction)")

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("enc_hidden", "dec_hidden", "ctrl_hidden"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        d = dict(d)
        for k in ("enc_hidden", "dec_hidden", "ctrl_hidden"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


class _VarHead(nn.Module):
    """features (B, f) -> variance (B, out) = elu(MLP)+1, floored at 1e-4 (normalized units)."""

    def __init__(self, in_dim: int, hidden: tuple[int, ...], out_dim: int) -> None:
        super().__init__()
        self.net = mlp(in_dim, hidden, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return elup1(self.net(x)) + 1e-4


# ---------------------------------------------------------------------------------------------
# forward models
# ---------------------------------------------------------------------------------------------
class _ForwardUnroll(nn.Module):
    """Shared unrolling of a forward model's ``step`` over a window."""

    def seq(self, obs: Tensor, act: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        """Means and variances (B, T, d) of every step; ``valid`` (B, T, 1) masks observations."""
        state = self.initial_state(obs.shape[0])
        means, vars_ = [], []
        for t in range(obs.shape[1]):
            mu, var, state = self.step(obs[:, t], valid[:, t], act[:, t], state)
            means.append(mu)
            vars_.append(var)
        return torch.stack(means, 1), torch.stack(vars_, 1)


class AcRknForward(_ForwardUnroll):
    """ac-RKN forward model: z-_{t+1} = A z+_t + b(a_t); decodes the next prior into the
    normalized difference o_{t+1} - o_t. With ``concat_actions`` it becomes the plain RKN
    baseline: actions are concatenated to the observation and there is no control model.

    ``cfg.fwd_output``:

    * "difference" (the paper's form): a decoder maps the prior mean z- (2m) to the whole
      normalized difference (d_o).
    * "acceleration" (o = [q, qd], n joints, d_o = 2n): a decoder maps [z- (2m), a_t (d_a),
      o_t (d_o)] (normalized; o_t is the observation, or the last prediction when it is missing)
      to the normalized velocity change nu (n) only, and the rest follows the simulator's
      semi-implicit Euler step by construction::

          qd_{t+1} - qd_t = dt * qdd_t = nu * std_dqd + mean_dqd
          q_{t+1}  - q_t  = dt * qd_{t+1} = dt * (qd_t + (qd_{t+1} - qd_t))

      returned as the same normalized difference vector [(dq - mean_dq) / std_dq, nu], so the
      export, the runtime and the losses are those of the "difference" form. nu = 0 with zero
      mean is constant velocity: the network learns only the acceleration, from belief, torque
      and state. The unit buffers (``obs_mean``/``obs_std``/``dobs_mean``/``dobs_std`` (d_o,),
      ``dt`` (1,) s) are set by :meth:`set_units` from the training statistics.
    * "acceleration_residual": as "acceleration", on top of the constant-acceleration
      extrapolation: the last velocity change g_t = qd_t - qd_{t-1} (rad/s per step; qd_{t-1} is
      the previous step's observation or prediction, carried in the state) is the base and the
      decoder, which also reads g_t / std_dqd and the torque change a_t - a_{t-1} (normalized;
      the physics of a change of acceleration: M^-1 (tau_t - tau_{t-1}) plus state terms),
      predicts only the change of it::

          qd_{t+1} - qd_t = rho * g_t + nu * std_dqd    (g_t = 0 on the first step after a reset)

      rho = sigmoid(``keep_logit``) (n,) per joint, learned, starting at 0.993: below 1 the held
      acceleration fades unless the decoder sustains it, which keeps 1 s free runs bounded (with
      rho = 1 a short training run's free runs grew without bound). nu = 0, rho = 1 is constant
      acceleration, the baseline that beat the "acceleration" form 4-10x
      (docs/predictor.md). The state is the ac-RKN belief plus ``prev`` (B, n + d_a + 1) =
      [qd_{t-1} (rad/s), a_{t-1} (normalized), 1 once a step has run, 0 in the initial state].
    """

    def __init__(self, cfg: ModelConfig, concat_actions: bool = False) -> None:
        super().__init__()
        self.cfg = cfg
        self.concat = concat_actions
        self.structured = cfg.fwd_output in STRUCTURED_OUTPUTS
        self.residual = cfg.fwd_output == "acceleration_residual"
        m = cfg.lod
        enc_in = cfg.obs_dim + (cfg.act_dim if concat_actions else 0)
        self.encoder = Encoder(enc_in, m, cfg.enc_hidden)
        self.cell = RKNCell(m, cfg.num_basis, cfg.bandwidth, init_trans_cov=cfg.init_trans_cov)
        self.control = None if concat_actions else mlp(cfg.act_dim, cfg.ctrl_hidden, 2 * m)
        if self.structured:
            self.n_joints = cfg.obs_dim // 2
            extra = self.n_joints + cfg.act_dim if self.residual else 0
            self.dec_mean = mlp(2 * m + cfg.act_dim + cfg.obs_dim + extra, cfg.dec_hidden, self.n_joints)
            if self.residual:
                self.keep_logit = nn.Parameter(torch.full((self.n_joints,), 5.0))
                # start as (almost) constant acceleration (nu = 0): training moves away from the
                # baseline only where that lowers the loss (a random start fed its own output back
                # through g_t and diverged in free runs)
                nn.init.zeros_(self.dec_mean[-1].weight)
                nn.init.zeros_(self.dec_mean[-1].bias)
            for k in ("obs_mean", "dobs_mean"):
                self.register_buffer(k, torch.zeros(cfg.obs_dim))
            for k in ("obs_std", "dobs_std"):
                self.register_buffer(k, torch.ones(cfg.obs_dim))
            self.register_buffer("dt", torch.ones(1))
        else:
            self.dec_mean = mlp(2 * m, cfg.dec_hidden, cfg.obs_dim)
        self.dec_var = _VarHead(3 * m, cfg.dec_hidden, cfg.obs_dim)

    def set_units(self, stats, dt: float) -> None:
        """Copy the training statistics (``Stats``: obs / dobs mean and std, (d_o,)) and the
        sample period ``dt`` (s) into the structured form's buffers (no-op for "difference")."""
        if not self.structured:
            return
        for k in ("obs_mean", "obs_std", "dobs_mean", "dobs_std"):
            getattr(self, k).copy_(torch.as_tensor(getattr(stats, k), dtype=torch.float32).reshape(-1))
        self.dt.fill_(float(dt))

    def initial_state(self, batch: int) -> tuple[Tensor, ...]:
        """The cell's initial belief (z, cu, cl, cs); with "acceleration_residual" also ``prev``
        (B, n + d_a + 1) zeros (no previous velocity and torque yet)."""
        belief = self.cell.initial_belief(batch)
        if self.residual:
            return (*belief, torch.zeros(batch, self.n_joints + self.cfg.act_dim + 1))
        return belief

    def step(self, obs: Tensor, valid: Tensor, act: Tensor, state: tuple[Tensor, ...]
             ) -> tuple[Tensor, Tensor, tuple[Tensor, ...]]:
        """obs (B, d_o) (the observation, or the last prediction where valid = 0), valid (B, 1),
        act (B, d_a), state = prior belief at t (see :meth:`initial_state`) -> delta mean, delta
        var (B, d_o), prior belief at t+1 (all normalized)."""
        enc_in = torch.cat([obs, act], -1) if self.concat else obs
        w, w_var = self.encoder(enc_in)
        post = self.cell.update(state[:4], w, w_var, valid)
        ctrl = None if self.control is None else self.control(act)
        prior = self.cell.predict(post, ctrl)
        z, cu, cl, cs = prior
        var = self.dec_var(torch.cat([cu, cl, cs], -1))
        if not self.structured:
            return self.dec_mean(z), var, prior
        if not self.residual:
            return self.structured_delta(obs, self.dec_mean(torch.cat([z, act, obs], -1))), var, prior
        n = self.n_joints
        prev = state[4]
        has = prev[:, -1:]                                                     # 0 right after a reset
        qd = obs[:, n:] * self.obs_std[n:] + self.obs_mean[n:]                 # rad/s
        base = has * torch.sigmoid(self.keep_logit) * (qd - prev[:, :n])     # rad/s per step
        dact = has * (act - prev[:, n:-1])                                     # normalized
        nu = self.dec_mean(torch.cat([z, act, obs, base / self.dobs_std[n:], dact], -1))
        delta = self.structured_delta(obs, nu, base)
        return delta, var, (*prior, torch.cat([qd, act, torch.ones_like(has)], -1))

    def structured_delta(self, obs: Tensor, nu: Tensor, base: Tensor | None = None) -> Tensor:
        """Normalized difference (B, 2n) from the normalized observation (B, 2n) and the
        normalized velocity change nu (B, n), by the semi-implicit Euler step (class docstring);
        with ``base`` (B, n) rad/s per step (the last velocity change) nu is the residual on it."""
        n = self.n_joints
        qd = obs[:, n:] * self.obs_std[n:] + self.obs_mean[n:]                 # rad/s
        if base is None:
            dqd = nu * self.dobs_std[n:] + self.dobs_mean[n:]                  # rad/s per step
            nu_out = nu
        else:
            dqd = base + nu * self.dobs_std[n:]
            nu_out = (dqd - self.dobs_mean[n:]) / self.dobs_std[n:]
        dq = self.dt * (qd + dqd)                                              # rad per step
        return torch.cat([(dq - self.dobs_mean[:n]) / self.dobs_std[:n], nu_out], -1)

    def seq(self, obs: Tensor, act: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        """Means and variances (B, T, d_o); ``valid`` (B, T, 1). The structured form reads its own
        last prediction where an observation is missing (as the runtime feeds it), so a masked
        stretch is a real free run: o~_{t+1} = o~_t + delta_t in normalized observation units."""
        if not self.structured:
            return super().seq(obs, act, valid)
        state = self.initial_state(obs.shape[0])
        to_obs = self.dobs_std / self.obs_std
        shift = self.dobs_mean / self.obs_std
        means, vars_ = [], []
        o_hat = obs[:, 0]
        for t in range(obs.shape[1]):
            v = valid[:, t]
            o_in = v * obs[:, t] + (1 - v) * o_hat
            mu, var, state = self.step(o_in, v, act[:, t], state)
            means.append(mu)
            vars_.append(var)
            o_hat = o_in + mu * to_obs + shift
        return torch.stack(means, 1), torch.stack(vars_, 1)


class RnnForward(_ForwardUnroll):
    """LSTM / GRU forward baseline. Input [enc(o~_t), a_t] where o~_t is the observation if valid,
    else the model's own previous prediction of it; output the normalized next difference.

    ``delta_scale``, ``delta_shift`` (d_o,) convert a normalized difference into normalized
    observation units (o_n += mu * delta_scale + delta_shift, i.e. std_d / std_o and
    mean_d / std_o); set by the trainer from the training statistics."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        hidden = 2 * cfg.lod
        self.encoder = mlp(cfg.obs_dim, cfg.enc_hidden)
        enc_out = cfg.enc_hidden[-1] if cfg.enc_hidden else cfg.obs_dim
        self.lstm = cfg.kind == "lstm"
        cell_cls = nn.LSTMCell if self.lstm else nn.GRUCell
        self.rnn = cell_cls(enc_out + cfg.act_dim, hidden)
        self.dec_mean = mlp(hidden, cfg.dec_hidden, cfg.obs_dim)
        self.dec_var = _VarHead(hidden, cfg.dec_hidden, cfg.obs_dim)
        self.register_buffer("delta_scale", torch.ones(cfg.obs_dim))
        self.register_buffer("delta_shift", torch.zeros(cfg.obs_dim))
        self.hidden = hidden

    def initial_state(self, batch: int) -> tuple[Tensor, ...]:
        """(h, c, o_hat) for the LSTM, (h, o_hat) for the GRU."""
        h = torch.zeros(batch, self.hidden)
        o_hat = torch.zeros(batch, self.cfg.obs_dim)
        return (h, h.clone(), o_hat) if self.lstm else (h, o_hat)

    def step(self, obs: Tensor, valid: Tensor, act: Tensor, state: tuple[Tensor, ...]):
        o_hat = state[-1]
        o_in = valid * obs + (1 - valid) * o_hat
        x = torch.cat([self.encoder(o_in), act], -1)
        if self.lstm:
            h, c = self.rnn(x, (state[0], state[1]))
            hid: tuple[Tensor, ...] = (h, c)
        else:
            h = self.rnn(x, state[0])
            hid = (h,)
        mu = self.dec_mean(h)
        var = self.dec_var(h)
        return mu, var, (*hid, o_in + mu * self.delta_scale + self.delta_shift)


# ---------------------------------------------------------------------------------------------
# inverse models
# ---------------------------------------------------------------------------------------------
class _DesiredChange(nn.Module):
    """The desired next observation enters every inverse model as the normalized change
    d = ((o_{t+1} - o_t) * std_o - mean_d) / std_d: at 1 kHz o_{t+1} and o_t differ by ~1e-3 of
    their spread, so handing the network both raw values would bury the information that fixes
    the acceleration (and hence the torque) in rounding. ``dnext_scale`` = std_o / std_d and
    ``dnext_shift`` = mean_d / std_d (d_o,) are set by the trainer from the training statistics."""

    def _init_desired(self, obs_dim: int) -> None:
        self.register_buffer("dnext_scale", torch.ones(obs_dim))
        self.register_buffer("dnext_shift", torch.zeros(obs_dim))

    def desired_change(self, obs: Tensor, obs_next: Tensor) -> Tensor:
        return (obs_next - obs) * self.dnext_scale - self.dnext_shift


def _check_own(cfg: ModelConfig, own_mask: Tensor | None) -> None:
    if own_mask is not None and cfg.act_target != "absolute":
        raise ValueError("own-action feedback needs act_target='absolute' (a prediction in action units)")


def _fed_back(recorded: Tensor, mu: Tensor | None, own_mask: Tensor | None, t: int) -> Tensor:
    """The previous action step t reads (B, d_a): the recorded a_{t-1}, or where ``own_mask[:, t]``
    is 1 the model's own previous prediction ``mu`` (normalized action units)."""
    if own_mask is None or mu is None:
        return recorded
    return own_mask[:, t] * mu + (1.0 - own_mask[:, t]) * recorded


class AcRknInverse(_DesiredChange):
    """ac-RKN inverse model.

    One step t: prior_t = A z+_{t-1} + b(a_{t-1}) (the executed action fed back);
    forward head decodes prior_t into o_t - o_{t-1} (auxiliary loss); posterior z+_t after the
    update with o_t; the action decoder reads [z+_t, o_{t+1}^des] and predicts a_t - a_{t-1}
    (or a_t, ``cfg.act_target``); a variance head reads the posterior covariance [cu, cl, cs] and
    gives the variance of that prediction.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        m = cfg.lod
        self.encoder = Encoder(cfg.obs_dim, m, cfg.enc_hidden)
        self.cell = RKNCell(m, cfg.num_basis, cfg.bandwidth, init_trans_cov=cfg.init_trans_cov)
        self.control = mlp(cfg.act_dim, cfg.ctrl_hidden, 2 * m)
        self.dec_fwd = mlp(2 * m, cfg.dec_hidden, cfg.obs_dim)
        self.dec_act = mlp(2 * m + cfg.obs_dim, cfg.dec_hidden, cfg.act_dim)
        self.dec_var = _VarHead(3 * m, cfg.dec_hidden, cfg.act_dim)
        self._init_desired(cfg.obs_dim)

    def initial_state(self, batch: int) -> Belief:
        return self.cell.initial_belief(batch)

    def step(self, obs: Tensor, obs_next: Tensor, act_prev: Tensor, state: Belief,
             with_fwd: bool = False):
        """obs, obs_next (B, d_o), act_prev (B, d_a), state = posterior at t-1
        -> action-difference mean, var (B, d_a), posterior at t [, forward difference (B, d_o)]."""
        prior = self.cell.predict(state, self.control(act_prev))
        w, w_var = self.encoder(obs)
        post = self.cell.update(prior, w, w_var)
        z, cu, cl, cs = post
        mu = self.dec_act(torch.cat([z, self.desired_change(obs, obs_next)], -1))
        var = self.dec_var(torch.cat([cu, cl, cs], -1))
        if with_fwd:
            return mu, var, post, self.dec_fwd(prior[0])
        return mu, var, post

    def seq(self, obs: Tensor, act: Tensor, own_mask: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
        """Teacher-forced unroll; ``own_mask`` (B, W, 1) in {0, 1} (``act_target`` "absolute" only):
        where 1, step t reads the model's own prediction of a_{t-1} instead of the recorded one
        (scheduled sampling). In closed loop the action fed back is the model's own output plus the
        PD correction; training on its own outputs makes the action -> belief -> action loop one
        the model has seen, so it does not run away when nothing corrects it (the observation
        update alone did not, for a model trained teacher-forced only)."""
        _check_own(self.cfg, own_mask)
        state = self.initial_state(obs.shape[0])
        means, vars_, fwds = [], [], []
        mu = None
        for t in range(1, obs.shape[1] - 1):
            a_in = _fed_back(act[:, t - 1], mu, own_mask, t)
            mu, var, state, fwd = self.step(obs[:, t], obs[:, t + 1], a_in, state, with_fwd=True)
            means.append(mu)
            vars_.append(var)
            fwds.append(fwd)
        return torch.stack(means, 1), torch.stack(vars_, 1), torch.stack(fwds, 1)


class RnnInverse(_DesiredChange):
    """LSTM / GRU inverse baseline: input [enc(o_t, o_{t+1}^des), a_{t-1}] per step."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        hidden = 2 * cfg.lod
        self.encoder = mlp(2 * cfg.obs_dim, cfg.enc_hidden)
        enc_out = cfg.enc_hidden[-1] if cfg.enc_hidden else 2 * cfg.obs_dim
        self.lstm = cfg.kind == "lstm"
        self.rnn = (nn.LSTMCell if self.lstm else nn.GRUCell)(enc_out + cfg.act_dim, hidden)
        self.dec_act = mlp(hidden, cfg.dec_hidden, cfg.act_dim)
        self.dec_var = _VarHead(hidden, cfg.dec_hidden, cfg.act_dim)
        self.hidden = hidden
        self._init_desired(cfg.obs_dim)

    def initial_state(self, batch: int) -> tuple[Tensor, ...]:
        h = torch.zeros(batch, self.hidden)
        return (h, h.clone()) if self.lstm else (h,)

    def step(self, obs: Tensor, obs_next: Tensor, act_prev: Tensor, state: tuple[Tensor, ...]):
        x = torch.cat([self.encoder(torch.cat([obs, self.desired_change(obs, obs_next)], -1)), act_prev], -1)
        if self.lstm:
            h, c = self.rnn(x, (state[0], state[1]))
            new: tuple[Tensor, ...] = (h, c)
        else:
            h = self.rnn(x, state[0])
            new = (h,)
        return self.dec_act(h), self.dec_var(h), new

    def seq(self, obs: Tensor, act: Tensor, own_mask: Tensor | None = None) -> tuple[Tensor, Tensor, None]:
        """Teacher-forced unroll; ``own_mask`` as :meth:`AcRknInverse.seq` (absolute target only)."""
        _check_own(self.cfg, own_mask)
        state = self.initial_state(obs.shape[0])
        means, vars_ = [], []
        mu = None
        for t in range(1, obs.shape[1] - 1):
            mu, var, state = self.step(obs[:, t], obs[:, t + 1], _fed_back(act[:, t - 1], mu, own_mask, t), state)
            means.append(mu)
            vars_.append(var)
        return torch.stack(means, 1), torch.stack(vars_, 1), None


class FfnnInverse(_DesiredChange):
    """Feed-forward baseline: [o_t, o_{t+1}^des, a_{t-1}] -> a_t - a_{t-1} (no memory)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        in_dim = 2 * cfg.obs_dim + cfg.act_dim
        hid = (*cfg.enc_hidden, *cfg.dec_hidden)
        self.body = mlp(in_dim, hid)
        self.dec_act = nn.Linear(hid[-1], cfg.act_dim)
        self.dec_var = _VarHead(hid[-1], (), cfg.act_dim)
        self._init_desired(cfg.obs_dim)

    def initial_state(self, batch: int) -> tuple[Tensor, ...]:
        return ()

    def step(self, obs: Tensor, obs_next: Tensor, act_prev: Tensor, state: tuple = ()):
        h = self.body(torch.cat([obs, self.desired_change(obs, obs_next), act_prev], -1))
        return self.dec_act(h), self.dec_var(h), ()

    def seq(self, obs: Tensor, act: Tensor, own_mask: Tensor | None = None) -> tuple[Tensor, Tensor, None]:
        """All steps at once; with ``own_mask`` (absolute target only) step by step, reading the
        model's own previous prediction where the mask is 1 (as :meth:`AcRknInverse.seq`)."""
        _check_own(self.cfg, own_mask)
        if own_mask is None:
            mu, var, _ = self.step(obs[:, 1:-1], obs[:, 2:], act[:, :-2])
            return mu, var, None
        means, vars_ = [], []
        mu = None
        for t in range(1, obs.shape[1] - 1):
            mu, var, _ = self.step(obs[:, t], obs[:, t + 1], _fed_back(act[:, t - 1], mu, own_mask, t))
            means.append(mu)
            vars_.append(var)
        return torch.stack(means, 1), torch.stack(vars_, 1), None


def build_model(cfg: ModelConfig) -> nn.Module:
    """Model for ``cfg.kind`` and ``cfg.direction``."""
    if cfg.direction == "forward":
        if cfg.base == "arx":
            from dynlearn_ros.learning.models.arx_base import ArxBaseForward

            return ArxBaseForward(cfg, concat_actions=cfg.kind == "rkn")
        if cfg.kind == "acrkn-fwd":
            return AcRknForward(cfg)
        if cfg.kind == "rkn":
            return AcRknForward(cfg, concat_actions=True)
        if cfg.kind in ("lstm", "gru"):
            return RnnForward(cfg)
        raise ValueError(f"no forward model '{cfg.kind}'; choose from {FORWARD_KINDS}")
    if cfg.direction == "inverse":
        if cfg.kind == "acrkn-inv":
            return AcRknInverse(cfg)
        if cfg.kind in ("lstm", "gru"):
            return RnnInverse(cfg)
        if cfg.kind == "ffnn":
            return FfnnInverse(cfg)
        raise ValueError(f"no inverse model '{cfg.kind}'; choose from {INVERSE_KINDS}")
    raise ValueError(f"direction must be 'forward' or 'inverse', got {cfg.direction!r}")
