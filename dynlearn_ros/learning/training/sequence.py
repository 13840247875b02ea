"""Training loop shared by every model kind: windows, masking, losses, best-on-validation.

Losses (normalized units, y = target, mu / var = prediction):
    RMSE(mu, y) = sqrt(mean((mu - y)^2))
    NLL(var)    = 0.5 * mean(log var + (y - stopgrad(mu))^2 / var)   (trains only the variance head)
Forward: RMSE(delta) + NLL, with a fraction ``mask_frac`` of observations removed (t = 0 always kept).
Inverse: RMSE(action difference, or action with ``act_target="absolute"``)
         + lambda * RMSE(forward difference) [ac-RKN] + NLL.
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
        valid[:, 0] = 1.0
        mu, var = model.seq(x_obs, x_act, valid)
        r, n = rmse(mu, y), nll(mu, var, y)
        return r + n, {"rmse": float(r.detach()), "nll": float(n.detach())}
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
                       lod=tcfg.lod, num_basis=tcfg.num_basis, enc_hidden=h, dec_hidden=h, ctrl_hidden=h,
                       act_target=tcfg.act_target)


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
    if tcfg.own_action_frac > 0 and (tcfg.kind != "acrkn-inv" or tcfg.act_target != "absolute"):
        raise ValueError("own_action_frac > 0 needs kind acrkn-inv with act_target 'absolute'")
    if not 0.0 <= tcfg.own_action_frac <= 1.0:
        raise ValueError(f"own_action_frac must be in [0, 1], got {tcfg.own_action_frac}")
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
    opt = torch.optim.Adam(model.parameters(), lr=tcfg.lr)
    gen = torch.Generator().manual_seed(tcfg.seed)
    best = (math.inf, -1, copy.deepcopy(model.state_dict()))
    history = []
    t_start = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=tcfg.epochs, desc=f"{tcfg.kind} ({tcfg.direction})", unit="epoch")
    for epoch in range(tcfg.epochs):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(len(tr), generator=gen)
        tot, nb = 0.0, 0
        for b in range(0, len(tr), tcfg.batch_size):
            loss, _ = batch_loss(model, tr, perm[b:b + tcfg.batch_size], tcfg, gen)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip)
            opt.step()
            tot += float(loss.detach())
            nb += 1
        train_s = time.perf_counter() - t0
        val_loss, val_parts = validate(model, va, tcfg)
        history.append({"epoch": epoch, "train_loss": tot / max(nb, 1), "val_loss": val_loss,
                        **{f"val_{k}": v for k, v in val_parts.items()}, "epoch_s": train_s})
        if val_loss < best[0]:
            best = (val_loss, epoch, copy.deepcopy(model.state_dict()))
        if bar is not None:
            bar.set_postfix(train=f"{tot / max(nb, 1):.4f}", val=f"{val_loss:.4f}", best=best[1])
            bar.update(1)
    if bar is not None:
        bar.close()
    model.load_state_dict(best[2])
    return {
        "model_config": mcfg.to_dict(), "train_config": asdict(tcfg), "state_dict": model.state_dict(),
        "stats": stats.to_dict(), "history": history, "best_epoch": best[1], "best_val_loss": best[0],
        "train_rows": len(train), "train_window_rows": tr.rows, "wall_s": time.perf_counter() - t_start,
        "joint_names": list(train.joint_names), "dt": train.dt, "data": data_name,
    }


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
