"""Training and evaluation of the GP inverse models (SVDKL, SVGP, DKL).

Inputs are ``x = [q, qd, qdd]`` (rad, rad/s, rad/s^2; shape (N, 3n)), targets ``tau`` (N*m,
shape (N, n)). Everything below works in standardized units; metrics are reported in N*m (RMSE)
and in standardized units (NLL, so joints with different torque scales are comparable).
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import gpytorch
import numpy as np
import torch

from dynlearn_ros.datasets.format import TrajectoryData
from dynlearn_ros.datasets.normalize import Normalizer
from dynlearn_ros.learning.models.gp import GPConfig, GPInverseModel


def inputs_targets(data: TrajectoryData) -> tuple[np.ndarray, np.ndarray]:
    """``x = [q, qd, qdd]`` (N, 3n) and ``tau`` (N, n) from a data set that has accelerations."""
    if data.qdd is None or not np.isfinite(data.qdd).all():
        raise ValueError("inverse-dynamics models need joint accelerations (qdd) for every row")
    return np.concatenate([data.q, data.qd, data.qdd], axis=1), data.tau.copy()


def data_hash(data: TrajectoryData) -> str:
    """sha256 (first 16 hex digits) of the arrays the model was trained on."""
    h = hashlib.sha256()
    for arr in (data.q, data.qd, data.qdd if data.qdd is not None else np.zeros(0), data.tau):
        h.update(np.ascontiguousarray(arr, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


def fit_normalization(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Column means and stds (float64) of inputs (N, 3n) and targets (N, n), through the
    project's :class:`~dynlearn_ros.datasets.normalize.Normalizer` (std floored at its min_std)."""
    nx, ny = Normalizer.fit(x), Normalizer.fit(y)
    return {"x_mean": nx.mean, "x_std": nx.std, "y_mean": ny.mean, "y_std": ny.std}


@dataclass
class TrainResult:
    model: GPInverseModel
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0


def gaussian_metrics(y: np.ndarray, mean: np.ndarray, std: np.ndarray, y_std: np.ndarray) -> dict:
    """Metrics of predictions ``mean``/``std`` (N*m, (N, n)) against targets ``y`` (N*m, (N, n)).

    rmse: pooled over every row and joint (N*m; the package's one "all", issue 9 - before it this
    was the mean of the per-joint RMSEs, kept as rmse_mean_joint) and per joint; nmse: MSE / var(y)
    per joint and their mean;
    nll: mean Gaussian negative log-likelihood per sample and joint, in units standardized by
    the training target std ``y_std`` (n,) (= raw NLL - log y_std); coverage95: fraction of
    |y - mean| <= 1.959964 std, per joint and overall; mean_std: mean predictive std (N*m)."""
    err = y - mean
    std = np.maximum(std, 1e-12)
    rmse = np.sqrt(np.mean(err**2, axis=0))
    var_y = np.maximum(np.var(y, axis=0), 1e-12)
    nll_raw = 0.5 * np.log(2 * np.pi * std**2) + 0.5 * (err / std) ** 2
    nll = nll_raw - np.log(y_std)[None, :]
    inside = np.abs(err) <= 1.959964 * std
    return {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "rmse_per_joint": rmse.tolist(),
        "rmse_mean_joint": float(rmse.mean()),
        "nmse": float((rmse**2 / var_y).mean()),
        "nmse_per_joint": (rmse**2 / var_y).tolist(),
        "nll": float(nll.mean()),
        "coverage95": float(inside.mean()),
        "coverage95_per_joint": inside.mean(axis=0).tolist(),
        "mean_std": float(std.mean()),
        "n_samples": int(y.shape[0]),
    }


def evaluate_model(model: GPInverseModel, x: np.ndarray, y: np.ndarray) -> dict:
    """:func:`gaussian_metrics` of ``model`` on raw inputs x (N, 3n) and torques y (N, n)."""
    mean, std = model.predict(x)
    return gaussian_metrics(y, mean, std, model.y_std.numpy())


def _val_nll(model: GPInverseModel, xv: np.ndarray, yv: np.ndarray) -> tuple[float, float]:
    mean, std = model.predict(xv)
    m = gaussian_metrics(yv, mean, std, model.y_std.numpy())
    return m["nll"], m["rmse"]


def train_gp(
    cfg: GPConfig,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    *,
    epochs: int = 60,
    batch_size: int = 256,
    lr: float = 1e-2,
    seed: int = 0,
    dkl_subset: int = 1000,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train one model; the epoch with the best validation NLL is kept (last epoch if no
    validation set). SVDKL/SVGP: minibatch Adam on the variational ELBO. DKL: full-batch Adam on
    the exact marginal likelihood of a random ``dkl_subset`` of the training rows, ``epochs``
    iterations.

    x_train (N, 3n) raw, y_train (N, n) N*m; returns the model in eval mode."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    norm = fit_normalization(x_train, y_train)
    cfg = copy.deepcopy(cfg)
    cfg.n_joints, cfg.input_dim = y_train.shape[1], x_train.shape[1]
    model = GPInverseModel(cfg, norm["x_mean"], norm["x_std"], norm["y_mean"], norm["y_std"])
    xn = model.normalize_x(x_train)
    yn = model.normalize_y(y_train)
    n_rows = xn.shape[0]
    history: list[dict] = []
    best = (math.inf, None, 0)

    def checkpoint(epoch: int, train_loss: float) -> None:
        nonlocal best
        rec = {"epoch": epoch, "loss": train_loss, "seconds": time.perf_counter() - t0}
        if x_val is not None and y_val is not None:
            rec["val_nll"], rec["val_rmse"] = _val_nll(model, x_val, y_val)
            score = rec["val_nll"]
        else:
            score = -epoch  # no validation: keep the last epoch
        history.append(rec)
        if score < best[0]:
            best = (score, copy.deepcopy(model.state_dict()), epoch)
        if log:
            log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()))

    if cfg.kind == "dkl":
        idx = rng.choice(n_rows, size=min(dkl_subset, n_rows), replace=False)
        model.set_dkl_data(xn[idx], yn[idx])
        mll = gpytorch.mlls.ExactMarginalLogLikelihood(model.likelihood, model.gp)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        every = max(1, epochs // 10)
        for it in range(1, epochs + 1):
            model.train()
            opt.zero_grad()
            with gpytorch.settings.max_cholesky_size(10**5):
                loss = -mll(model.gp(xn[idx]), model.gp.train_targets).sum()
            loss.backward()
            opt.step()
            if it % every == 0 or it == epochs:
                checkpoint(it, float(loss.detach()))
    else:
        # inducing points: features (or inputs) of random training rows, same start for every joint
        init_idx = torch.as_tensor(rng.choice(n_rows, size=cfg.num_inducing, replace=n_rows < cfg.num_inducing))
        with torch.no_grad():
            z0 = model.gp_inputs(xn[init_idx])
        model.gp.variational_strategy.base_variational_strategy.inducing_points.data.copy_(
            z0.unsqueeze(0).expand(cfg.n_joints, -1, -1)
        )
        mll = gpytorch.mlls.VariationalELBO(model.likelihood, model.gp, num_data=n_rows)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1), eta_min=lr / 10)
        gen = torch.Generator().manual_seed(seed)
        for epoch in range(1, epochs + 1):
            model.train()
            perm = torch.randperm(n_rows, generator=gen)
            total = 0.0
            for i in range(0, n_rows, batch_size):
                b = perm[i:i + batch_size]
                opt.zero_grad()
                loss = -mll(model.latent(xn[b]), yn[b])
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(b)
            sched.step()
            checkpoint(epoch, total / n_rows)
    if best[1] is not None:
        model.load_state_dict(best[1])
    model.eval()
    return TrainResult(model=model, history=history, best_epoch=best[2], seconds=time.perf_counter() - t0)


def save_checkpoint(path, model: GPInverseModel, extra: dict | None = None) -> None:
    """One ``.pt`` file: config, state dict (normalization buffers included), DKL training set."""
    blob = {"config": model.cfg.to_dict(), "state_dict": model.state_dict(), "extra": extra or {}}
    if model.cfg.kind == "dkl":
        blob["dkl_train_x"] = model.gp.train_inputs[0]
        blob["dkl_train_y"] = model.gp.train_targets.mT  # (N, n), as set_dkl_data takes it
    torch.save(blob, path)


def load_checkpoint(path) -> tuple[GPInverseModel, dict]:
    """Inverse of :func:`save_checkpoint`: (model in eval mode, extra dict)."""
    blob = torch.load(path, map_location="cpu", weights_only=False)
    cfg = GPConfig.from_dict(blob["config"])
    sd = blob["state_dict"]
    model = GPInverseModel(cfg, sd["x_mean"].numpy(), sd["x_std"].numpy(), sd["y_mean"].numpy(),
                           sd["y_std"].numpy())
    if cfg.kind == "dkl":
        model.set_dkl_data(blob["dkl_train_x"], blob["dkl_train_y"])
    model.load_state_dict(sd)
    model.eval()
    return model, blob.get("extra", {})
