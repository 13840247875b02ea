"""Training, checkpoints and runs of the static inverse task (``dynlearn-ros train --task
static``): every row (q, qd, qdd -> tau) stands alone, so a log need not be a time series.

Loss per minibatch of rows (normalized torque units): RMSE + Gaussian NLL of the variance head
(as the sequence models); the epoch with the lowest validation RMSE is kept. A run directory holds
``checkpoint.pt`` (``static_config``, ``state_dict``, the training record) and ``train.json``.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from dynlearn_ros.learning.models.static import StaticConfig, StaticFFNN


@dataclass
class StaticTrainConfig:
    """kind "ffnn"; ``hidden`` width of each of ``layers`` ReLU layers; Adam at ``lr`` on
    minibatches of ``batch_size`` rows for ``epochs``; ``time_budget_s``: stop after that many CPU
    seconds of this process; ``patience``: stop after that many epochs without a better
    validation RMSE."""

    kind: str = "ffnn"
    hidden: int = 128
    layers: int = 2
    epochs: int = 50
    batch_size: int = 256
    lr: float = 1e-3
    seed: int = 0
    threads: int = 1
    max_train_samples: int | None = None
    time_budget_s: float | None = None
    patience: int | None = None


def fit_static(train, val, cfg: StaticTrainConfig, progress: bool = False) -> dict:
    """Fit a :class:`StaticFFNN` on the rows of ``train`` (TrajectoryData with qdd), best epoch on
    ``val``; returns the checkpoint dict."""
    from dynlearn_ros.learning.training.gp import inputs_targets

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(max(1, cfg.threads))
    xtr, ytr = inputs_targets(train)
    xva, yva = inputs_targets(val)
    if cfg.max_train_samples:
        xtr, ytr = xtr[:cfg.max_train_samples], ytr[:cfg.max_train_samples]
    if len(xtr) < 2 or len(xva) < 1:
        raise ValueError(f"the static task needs >= 2 training and >= 1 validation rows, got {len(xtr)}, {len(xva)}")
    model = StaticFFNN(StaticConfig(n_joints=ytr.shape[1], hidden=(cfg.hidden,) * max(1, cfg.layers), kind=cfg.kind))
    model.set_normalization(xtr, ytr)
    xt, yt = torch.as_tensor(xtr, dtype=torch.float32), torch.as_tensor(ytr, dtype=torch.float32)
    yt_n = (yt - model.y_mean) / model.y_std
    xv = torch.as_tensor(xva, dtype=torch.float32)
    yv_n = (torch.as_tensor(yva, dtype=torch.float32) - model.y_mean) / model.y_std
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    best = (math.inf, -1, copy.deepcopy(model.state_dict()))
    history, t0, cpu0, stopped = [], time.perf_counter(), time.process_time(), "epochs"
    for epoch in range(cfg.epochs):
        model.train()
        perm = torch.randperm(len(xt), generator=gen)
        tot = 0.0
        for i in range(0, len(xt), cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            mu, var = model.normalized(xt[idx])
            err = mu - yt_n[idx]
            loss = torch.sqrt((err**2).mean()) + 0.5 * (torch.log(var) + err**2 / var).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * len(idx)
        model.eval()
        with torch.no_grad():
            val_rmse = float(torch.sqrt(((model.normalized(xv)[0] - yv_n) ** 2).mean()))
        history.append({"epoch": epoch, "train_loss": tot / len(xt), "val_rmse": val_rmse})
        if progress:
            print(f"epoch {epoch}: train loss {tot / len(xt):.4f} val RMSE (normalized) {val_rmse:.4f}", flush=True)
        if val_rmse < best[0]:
            best = (val_rmse, epoch, copy.deepcopy(model.state_dict()))
        if cfg.patience is not None and epoch - best[1] >= cfg.patience:
            stopped = "patience"
            break
        if cfg.time_budget_s is not None and time.process_time() - cpu0 >= cfg.time_budget_s:
            stopped = "time budget"
            break
    model.load_state_dict(best[2])
    return {"static_config": model.cfg.to_dict(), "train_config": asdict(cfg), "state_dict": model.state_dict(),
            "best_epoch": best[1], "best_val_rmse": best[0], "epochs_run": len(history), "stopped": stopped,
            "history": history, "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - cpu0,
            "train_rows": int(len(xtr)), "val_rows": int(len(xva))}


def load_static(run: str | Path) -> tuple[StaticFFNN, dict]:
    """(model in eval mode, checkpoint dict) of a static run directory (or its checkpoint.pt)."""
    path = Path(run)
    ckpt = torch.load(path / "checkpoint.pt" if path.is_dir() else path, map_location="cpu", weights_only=False)
    if "static_config" not in ckpt:
        raise ValueError(f"{run}: not a static-task run (train --task static)")
    model = StaticFFNN(StaticConfig.from_dict(ckpt["static_config"]))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt


def static_run(data_name: str, cfg: StaticTrainConfig, out: str | Path | None = None, split=None,
               command: str = "", progress: bool = False) -> dict:
    """Train on the training split of ``data_name`` (``split``: a SplitSpec, default 0.7 / 0.15 /
    0.15); write ``out``/checkpoint.pt and train.json (default runs/<data>/<kind>-static-s<seed>).
    Returns the checkpoint dict with ``"run"``."""
    from dynlearn_ros.datasets.catalog import load_dataset
    from dynlearn_ros.datasets.splits import SplitSpec, split_data
    from dynlearn_ros.learning.training.gp import data_hash

    split = split or SplitSpec()
    data = load_dataset(data_name)
    train, val, _te = split_data(data, seed=cfg.seed, spec=split)
    ckpt = fit_static(train, val, cfg, progress=progress)
    ckpt.update({"task": "static", "data": str(data_name), "data_hash": data_hash(data),
                 "joint_names": list(data.joint_names), "split": split.to_dict(), "train_command": command,
                 "date": datetime.now(UTC).strftime("%Y-%m-%d")})
    run = Path(out) if out else Path(f"runs/{Path(str(data_name)).stem}/{cfg.kind}-static-s{cfg.seed}")
    run.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, run / "checkpoint.pt")
    (run / "train.json").write_text(json.dumps({k: v for k, v in ckpt.items() if k != "state_dict"}, indent=1))
    print(f"{cfg.kind} (static): best epoch {ckpt['best_epoch']} of {ckpt['epochs_run']} ({ckpt['stopped']}), "
          f"val RMSE {ckpt['best_val_rmse']:.4f} (normalized), {ckpt['cpu_s']:.1f} CPU s -> {run}")
    return {**ckpt, "run": str(run)}


def static_predict(model: StaticFFNN, data) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (N*m, (N, n)) on every row of ``data``."""
    from dynlearn_ros.learning.training.gp import inputs_targets

    return model.predict(inputs_targets(data)[0])
