"""Training loop shared by every model kind: windows, masking, losses, best-on-validation.

Losses (normalized units, y = target, mu / var = prediction):
    RMSE(mu, y) = sqrt(mean((mu - y)^2))
    NLL(var)    = 0.5 * mean(log var + (y - stopgrad(mu))^2 / var)   (trains only the variance head)
Forward: RMSE(delta) + NLL, with a fraction ``mask_frac`` of observations removed (t = 0 always kept).
Inverse: RMSE(action difference, or action with ``act_target="absolute"``)
         + lambda * RMSE(forward difference) [ac-RKN] + NLL.

Free-run training (forward, ``rollout_frac`` > 0): in that fraction of the windows every
observation after the first ``rollout_context`` is removed, so the model rolls on the actions
alone, and the loss gains ``rollout_weight`` * RMSE of the accumulated state error
e_t = sum_{s=C-1}^{t} (mu_s - y_s) * std_d / std_o (normalized observation units), the error a
free run adds up: a per-step RMSE barely sees a small bias in the differences, which grows
linearly in a free run.

Schedule: ``lr_schedule`` "cosine" decays the learning rate from ``lr`` to ``lr`` / 100 over the
run's progress (epochs done / ``epochs``, or CPU seconds used / ``time_budget_s`` when that is
further along); ``patience`` stops after that many epochs without a better validation loss;
``time_budget_s`` stops when this process has used that many CPU seconds (checked after each
batch; the epoch in progress is validated and kept like any other).
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor

from dynlearn_ros.datasets.format import TrajectoryData
from dynlearn_ros.datasets.normalize import Stats
from dynlearn_ros.datasets.windows import gather, model_arrays, window_starts
from dynlearn_ros.learning.models.sequence import ModelConfig, build_model


@dataclass
class TrainConfig:
    kind: str
    direction: str
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0
    window: int = 40
    stride: int = 10
    mask_frac: float = 0.75
    lam: float = 0.1
    grad_clip: float = 10.0
    obs_qd: bool = False
    lod: int = 15
    num_basis: int = 15
    hidden: int = 120
    act_target: str = "difference"
    own_action_frac: float = 0.0   # ac-RKN inverse, absolute target: windows fed their own prediction
    max_train_samples: int | None = None
    threads: int = 1
    mask_keep: int = 1            # forward: the first rows of every window always observed (paper: 5)
    ctrl_layers: int = 1          # hidden layers of the control MLP (paper: 3 x 120)
    lr_schedule: str = "none"     # "none" | "cosine"
    patience: int | None = None   # early stopping: epochs without a better validation loss
    time_budget_s: float | None = None   # CPU seconds of this process for the whole fit
    rollout_frac: float = 0.0     # forward: fraction of windows run free after rollout_context rows
    rollout_context: int = 10
    rollout_weight: float = 1.0
    fwd_output: str = "difference"  # ac-RKN forward decoder: "difference" | "acceleration" (models.sequence)
    base: str = "none"            # forward ac-RKN / RKN: "arx" = learn the residual of ARX(2, 2) (models.arx_base)
    residual_clip: bool = False   # base "arx": clip the residual to the training residual's range


def data_hash(data: TrajectoryData) -> str:
    """sha256 (first 16 hex digits) of q, qd, tau, episode: identifies the training data."""
    h = hashlib.sha256()
    for arr in (data.q, data.qd, data.tau, data.episode):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:16]


def truncate(data: TrajectoryData, max_rows: int | None) -> TrajectoryData:
    """The first ``max_rows`` rows (whole episodes first, contiguous; no shuffling)."""
    if max_rows is None or len(data) <= max_rows:
        return data
    mask = np.zeros(len(data), dtype=bool)
    mask[:max_rows] = True
    return data.select(mask)


class WindowSet:
    """Normalized float32 windows of one split: obs (k, W, d_o), act (k, W, d_a) and raw diffs."""

    def __init__(self, data: TrajectoryData, stats: Stats, tcfg: TrainConfig) -> None:
        obs, act = model_arrays(data, tcfg.direction, tcfg.obs_qd)
        starts = window_starts(data.episode, tcfg.window, tcfg.stride)
        if len(starts) == 0:
            raise ValueError(f"no window of {tcfg.window} rows fits in any episode ({len(data)} rows)")
        ow, aw = gather(obs, starts, tcfg.window), gather(act, starts, tcfg.window)
        f = lambda x: torch.as_tensor(x, dtype=torch.float32)  # noqa: E731
        self.obs = f((ow - stats.obs_mean) / stats.obs_std)
        self.act = f((aw - stats.act_mean) / stats.act_std)
        self.dobs = f((np.diff(ow, axis=1) - stats.dobs_mean) / stats.dobs_std)   # (k, W-1, d_o)
        self.dact = f((np.diff(aw, axis=1) - stats.dact_mean) / stats.dact_std)   # (k, W-1, d_a)
        # a normalized difference times this is a change in normalized observation units (d_o,)
        self.delta_to_obs = f(np.asarray(stats.dobs_std / stats.obs_std)) if tcfg.direction == "forward" else None
        self.rows = len(starts) * tcfg.window

    def __len__(self) -> int:
        return int(self.obs.shape[0])


def rmse(mu: Tensor, y: Tensor) -> Tensor:
    return torch.sqrt(torch.mean((mu - y) ** 2))


def nll(mu: Tensor, var: Tensor, y: Tensor) -> Tensor:
    return 0.5 * torch.mean(torch.log(var) + (y - mu.detach()) ** 2 / var)


def inverse_action_target(act: Tensor, dact: Tensor, act_target: str) -> Tensor:
    """Target (B, W-2, d_a) of an inverse model's outputs t = 1 .. W-2 of a window of W rows.

    act (B, W, d_a): normalized a_0 .. a_{W-1}; dact (B, W-1, d_a): normalized differences with
    dact[:, j] = a_{j+1} - a_j. ``act_target`` "absolute": a_t = act[:, t], t = 1 .. W-2;
    "difference": a_t - a_{t-1} = dact[:, t-1], t = 1 .. W-2, i.e. dact[:, :-1] (the step's
    own torque change, which evaluation, export and runtime add to a_{t-1}).
    """
    if act_target == "absolute":
        return act[:, 1:-1]
    return dact[:, :-1]


def inverse_forward_target(dobs: Tensor) -> Tensor:
    """Target (B, W-2, d_o) of the ac-RKN inverse model's auxiliary forward head, which decodes
    the prior at t (after a_{t-1}) into o_t - o_{t-1}, t = 1 .. W-2: dobs[:, t-1] with
    dobs[:, j] = o_{j+1} - o_j (B, W-1, d_o)."""
    return dobs[:, :-1]


def forward_target(dobs: Tensor) -> Tensor:
    """Target (B, W-1, d_o) of a forward model fed o_t, a_t for t = 0 .. W-2: o_{t+1} - o_t =
    dobs[:, t] (all of dobs)."""
    return dobs


def batch_loss(model: torch.nn.Module, ws: WindowSet, idx: Tensor, tcfg: TrainConfig,
               gen: torch.Generator) -> tuple[Tensor, dict]:
    obs, act = ws.obs[idx], ws.act[idx]
    if tcfg.direction == "forward":
        x_obs, x_act, y = obs[:, :-1], act[:, :-1], forward_target(ws.dobs[idx])
        valid = (torch.rand(x_obs.shape[0], x_obs.shape[1], 1, generator=gen) >= tcfg.mask_frac).float()
        valid[:, :max(1, tcfg.mask_keep)] = 1.0
        free = None
        if tcfg.rollout_frac > 0:
            free = torch.rand(x_obs.shape[0], generator=gen) < tcfg.rollout_frac
            valid[free, tcfg.rollout_context:] = 0.0
        mu, var = model.seq(x_obs, x_act, valid)
        r, n = rmse(mu, y), nll(mu, var, y)
        parts = {"rmse": float(r.detach()), "nll": float(n.detach())}
        loss = r + n
        if free is not None and bool(free.any()):
            rs = rmse(rollout_state_error(mu[free], y[free], ws.delta_to_obs, tcfg.rollout_context),
                      torch.zeros(()))
            loss = loss + tcfg.rollout_weight * rs
            parts["rollout_rmse"] = float(rs.detach())
        return loss, parts
    if tcfg.own_action_frac > 0:
        mu, var, fwd = model.seq(obs, act, own_mask=own_action_mask(obs.shape[0], obs.shape[1], tcfg.own_action_frac, gen))
    else:
        mu, var, fwd = model.seq(obs, act)
    y = inverse_action_target(act, ws.dact[idx], model.cfg.act_target)
    r, n = rmse(mu, y), nll(mu, var, y)
    loss = r + n
    parts = {"rmse": float(r.detach()), "nll": float(n.detach())}
    if fwd is not None:
        rf = rmse(fwd, inverse_forward_target(ws.dobs[idx]))
        loss = loss + tcfg.lam * rf
        parts["fwd_rmse"] = float(rf.detach())
    return loss, parts


def rollout_state_error(mu: Tensor, y: Tensor, delta_to_obs: Tensor, context: int) -> Tensor:
    """Accumulated state error (B, W-1-(context-1), d_o) of a free run from ``context`` observed
    rows: e_t = sum_{s=context-1}^{t} (mu_s - y_s) * delta_to_obs, t = context-1 .. W-2, for
    predicted / true normalized differences mu, y (B, W-1, d_o) (step s predicts o_{s+1} - o_s,
    so e_t is the error of o_hat_{t+1} in normalized observation units; the normalization's mean
    cancels in mu - y)."""
    return torch.cumsum((mu[:, context - 1:] - y[:, context - 1:]) * delta_to_obs, dim=1)


def own_action_mask(batch: int, window: int, frac: float, gen: torch.Generator) -> Tensor:
    """(batch, window, 1) in {0, 1}: a fraction ``frac`` of the windows feed the model its own
    action predictions from a random step t0 in [2, window/2] to the window's end, the rest none.
    Whole runs, not scattered steps: a belief -> action -> belief loop that runs away does so
    over tens of steps, which scattered single steps would never show the loss."""
    t = torch.arange(window)[None, :]
    t0 = torch.randint(2, max(3, window // 2 + 1), (batch, 1), generator=gen)
    chosen = torch.rand(batch, 1, generator=gen) < frac
    return ((t >= t0) & chosen).float()[..., None]


def model_config(tcfg: TrainConfig, obs_dim: int, act_dim: int) -> ModelConfig:
    h = (tcfg.hidden,)
    return ModelConfig(kind=tcfg.kind, direction=tcfg.direction, obs_dim=obs_dim, act_dim=act_dim,
                       lod=tcfg.lod, num_basis=tcfg.num_basis, enc_hidden=h, dec_hidden=h,
                       ctrl_hidden=(tcfg.hidden,) * max(1, tcfg.ctrl_layers),
                       act_target=tcfg.act_target, fwd_output=tcfg.fwd_output, base=tcfg.base,
                       residual_clip=tcfg.residual_clip)


def set_delta_buffers(model: torch.nn.Module, stats: Stats) -> None:
    """Unit conversions from the training statistics (RNN forward feedback, inverse desired change)."""
    if hasattr(model, "dnext_scale"):
        model.dnext_scale.copy_(torch.as_tensor(stats.obs_std / stats.dobs_std, dtype=torch.float32))
        model.dnext_shift.copy_(torch.as_tensor(stats.dobs_mean / stats.dobs_std, dtype=torch.float32))
    if hasattr(model, "delta_scale"):
        model.delta_scale.copy_(torch.as_tensor(stats.dobs_std / stats.obs_std, dtype=torch.float32))
        model.delta_shift.copy_(torch.as_tensor(stats.dobs_mean / stats.obs_std, dtype=torch.float32))


def fit(train: TrajectoryData, val: TrajectoryData, tcfg: TrainConfig, progress: bool = True,
        data_name: str = "") -> dict:
    """Train; return a checkpoint dict (best validation epoch's weights, config, statistics)."""
    if tcfg.own_action_frac > 0 and (tcfg.direction != "inverse" or tcfg.act_target != "absolute"):
        raise ValueError("own_action_frac > 0 needs an inverse model with act_target 'absolute'")
    if not 0.0 <= tcfg.own_action_frac <= 1.0:
        raise ValueError(f"own_action_frac must be in [0, 1], got {tcfg.own_action_frac}")
    check_schedule(tcfg)
    torch.manual_seed(tcfg.seed)
    np.random.seed(tcfg.seed)
    torch.set_num_threads(max(1, tcfg.threads))
    train = truncate(train, tcfg.max_train_samples)
    obs, act = model_arrays(train, tcfg.direction, tcfg.obs_qd)
    stats = Stats.fit(obs, act, train.episode)
    tr, va = WindowSet(train, stats, tcfg), WindowSet(val, stats, tcfg)
    mcfg = model_config(tcfg, obs.shape[1], act.shape[1])
    model = build_model(mcfg)
    set_delta_buffers(model, stats)
    if hasattr(model, "set_units"):   # structured forward output: statistics and dt in the model
        model.set_units(stats, train.dt)
    if hasattr(model, "set_arx"):     # ARX base: least squares on the training rows, then frozen
        from dynlearn_ros.learning.models.arx_base import normalized_arx_weights

        w_arx = normalized_arx_weights(obs, act, train.episode, stats)
        model.set_arx(w_arx)
        if mcfg.residual_clip:
            from dynlearn_ros.learning.models.arx_base import arx_residual_bound

            model.set_residual_bound(arx_residual_bound(obs, act, train.episode, stats, w_arx))
    opt = torch.optim.Adam(model.parameters(), lr=tcfg.lr)
    gen = torch.Generator().manual_seed(tcfg.seed)
    best = (math.inf, -1, copy.deepcopy(model.state_dict()))
    history = []
    t_start = time.perf_counter()
    cpu_start = time.process_time()
    stopped = ""
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=tcfg.epochs, desc=f"{tcfg.kind} ({tcfg.direction})", unit="epoch")
    for epoch in range(tcfg.epochs):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(len(tr), generator=gen)
        tot, nb = 0.0, 0
        n_batches = max(1, math.ceil(len(tr) / tcfg.batch_size))
        for b in range(0, len(tr), tcfg.batch_size):
            for g in opt.param_groups:
                g["lr"] = scheduled_lr(tcfg, epoch + nb / n_batches, time.process_time() - cpu_start)
            loss, _ = batch_loss(model, tr, perm[b:b + tcfg.batch_size], tcfg, gen)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip)
            opt.step()
            tot += float(loss.detach())
            nb += 1
            if tcfg.time_budget_s is not None and time.process_time() - cpu_start >= tcfg.time_budget_s:
                stopped = f"time budget of {tcfg.time_budget_s:g} CPU s reached in epoch {epoch}"
                break
        train_s = time.perf_counter() - t0
        val_loss, val_parts = validate(model, va, tcfg)
        history.append({"epoch": epoch, "train_loss": tot / max(nb, 1), "val_loss": val_loss,
                        **{f"val_{k}": v for k, v in val_parts.items()}, "epoch_s": train_s,
                        "lr": opt.param_groups[0]["lr"], "batches": nb})
        if val_loss < best[0]:
            best = (val_loss, epoch, copy.deepcopy(model.state_dict()))
        if bar is not None:
            bar.set_postfix(train=f"{tot / max(nb, 1):.4f}", val=f"{val_loss:.4f}", best=best[1])
            bar.update(1)
        if not stopped and tcfg.patience is not None and epoch - best[1] >= tcfg.patience:
            stopped = f"early stop: no better validation loss for {tcfg.patience} epochs after epoch {best[1]}"
        if stopped:
            break
    if bar is not None:
        bar.close()
    model.load_state_dict(best[2])
    return {
        "model_config": mcfg.to_dict(), "train_config": asdict(tcfg), "state_dict": model.state_dict(),
        "stats": stats.to_dict(), "history": history, "best_epoch": best[1], "best_val_loss": best[0],
        "train_rows": len(train), "train_window_rows": tr.rows, "wall_s": time.perf_counter() - t_start,
        "cpu_s": time.process_time() - cpu_start, "epochs_run": len(history), "stopped": stopped,
        "joint_names": list(train.joint_names), "dt": train.dt, "data": data_name,
    }


def check_schedule(tcfg: TrainConfig) -> None:
    """ValueError naming the first invalid schedule / free-run option of ``tcfg``."""
    if tcfg.lr_schedule not in ("none", "cosine"):
        raise ValueError(f"lr_schedule must be 'none' or 'cosine', got {tcfg.lr_schedule!r}")
    if tcfg.patience is not None and tcfg.patience < 1:
        raise ValueError(f"patience must be >= 1 epoch, got {tcfg.patience}")
    if tcfg.time_budget_s is not None and tcfg.time_budget_s <= 0:
        raise ValueError(f"time_budget_s must be > 0, got {tcfg.time_budget_s}")
    if not 0.0 <= tcfg.rollout_frac <= 1.0:
        raise ValueError(f"rollout_frac must be in [0, 1], got {tcfg.rollout_frac}")
    if tcfg.rollout_frac > 0 and (tcfg.direction != "forward" or not 1 <= tcfg.rollout_context < tcfg.window - 1):
        raise ValueError(f"rollout_frac > 0 needs a forward model and 1 <= rollout_context < window - 1 "
                         f"(got {tcfg.direction}, context {tcfg.rollout_context}, window {tcfg.window})")
    if not 0 <= tcfg.mask_keep < tcfg.window:
        raise ValueError(f"mask_keep must be in [0, window), got {tcfg.mask_keep}")


def scheduled_lr(tcfg: TrainConfig, epochs_done: float, cpu_used_s: float) -> float:
    """The learning rate after ``epochs_done`` (fractional) epochs and ``cpu_used_s`` CPU seconds:
    ``tcfg.lr`` without a schedule; "cosine": lr_min + (lr - lr_min) (1 + cos(pi p)) / 2 with
    lr_min = lr / 100 and p = the further along of epochs_done / epochs and cpu_used_s /
    time_budget_s, clipped to [0, 1]."""
    if tcfg.lr_schedule == "none":
        return tcfg.lr
    p = epochs_done / max(tcfg.epochs, 1)
    if tcfg.time_budget_s:
        p = max(p, cpu_used_s / tcfg.time_budget_s)
    p = min(max(p, 0.0), 1.0)
    lr_min = tcfg.lr / 100.0
    return lr_min + (tcfg.lr - lr_min) * 0.5 * (1.0 + math.cos(math.pi * p))


@torch.no_grad()
def validate(model: torch.nn.Module, ws: WindowSet, tcfg: TrainConfig) -> tuple[float, dict]:
    """Mean loss over the validation windows with a fixed mask (seed 12345): comparable epochs."""
    model.eval()
    gen = torch.Generator().manual_seed(12345)
    tot, nb, parts_sum = 0.0, 0, {}
    for b in range(0, len(ws), 256):
        idx = torch.arange(b, min(b + 256, len(ws)))
        loss, parts = batch_loss(model, ws, idx, tcfg, gen)
        tot += float(loss) * len(idx)
        nb += len(idx)
        for k, v in parts.items():
            parts_sum[k] = parts_sum.get(k, 0.0) + v * len(idx)
    return tot / nb, {k: v / nb for k, v in parts_sum.items()}


def load_checkpoint(path) -> tuple[torch.nn.Module, dict]:
    """(model in eval mode, checkpoint dict) from a file written by ``save_checkpoint``."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    model = build_model(ModelConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, ckpt


def save_checkpoint(ckpt: dict, path) -> None:
    torch.save(ckpt, path)
