"""GP training runs (SVDKL, SVGP, DKL) from a typed configuration.

A run directory follows the learning core's layout,
``runs/<data>/<model>-inverse-s<seed>/{checkpoint.pt, train.json}``. ``dynlearn-ros train
--model svdkl|svgp|dkl`` builds a :class:`GPRunConfig` from its options and calls
:func:`train_run`; ``dynlearn-ros eval`` / ``export`` use the same configuration
(:mod:`dynlearn_ros.learning.evaluation.gp_runs`, :mod:`dynlearn_ros.learning.export.gp_run`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch

from dynlearn_ros.learning.models.gp import GPConfig

#: GP defaults: (epochs, batch_size, lr); DKL "epochs" are full-batch iterations
GP_DEFAULTS = {"svdkl": (40, 256, 1e-2), "svgp": (40, 256, 1e-2), "dkl": (100, 0, 2e-2)}
#: size of the random training subset the exact GP (DKL) sees
DKL_SUBSET = 800


@dataclass
class GPRunConfig:
    """One GP run. ``epochs`` / ``batch_size`` / ``lr`` None: :data:`GP_DEFAULTS` of ``model``.
    Architecture (None: the :class:`GPConfig` defaults): ``gp_hidden`` extractor widths,
    ``gp_features`` feature dimension D, ``gp_inducing`` inducing points M per joint, ``gp_input``
    'features' | 'features+x', ``gp_lengthscale_max`` (standardized units). ``command``: the
    command line recorded for provenance."""

    data: str = "panda_gaz2019"
    model: str = "svdkl"
    seed: int = 0
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    max_train_samples: int | None = None
    gp_hidden: tuple[int, ...] | None = None
    gp_features: int | None = None
    gp_inducing: int | None = None
    gp_input: str | None = None
    gp_lengthscale_max: float | None = None
    threads: int = 1
    progress: bool = True
    command: str = ""

    def hparams(self) -> tuple[int, int, float]:
        """(epochs, batch_size, lr): the given values, :data:`GP_DEFAULTS` where None."""
        if self.model not in GP_DEFAULTS:
            raise ValueError(f"unknown GP kind {self.model!r}; choose from {sorted(GP_DEFAULTS)}")
        given = (self.epochs, self.batch_size, self.lr)
        out = [d if v is None else v for v, d in zip(given, GP_DEFAULTS[self.model], strict=True)]
        return int(out[0]), int(out[1]), float(out[2])

    def architecture(self) -> GPConfig:
        """The model architecture: the given options over the :class:`GPConfig` defaults."""
        cfg = GPConfig(kind=self.model)
        if self.gp_hidden:
            cfg.hidden = tuple(int(h) for h in self.gp_hidden)
        cfg.feature_dim = int(self.gp_features or cfg.feature_dim)
        cfg.num_inducing = int(self.gp_inducing or cfg.num_inducing)
        cfg.gp_input = str(self.gp_input or cfg.gp_input)
        cfg.lengthscale_max = float(self.gp_lengthscale_max) if self.gp_lengthscale_max is not None else None
        return cfg

    def default_run_dir(self) -> Path:
        return Path(f"runs/{Path(str(self.data)).stem}/{self.model}-inverse-s{self.seed}")


def train_run(cfg: GPRunConfig, out: str | Path | None = None) -> dict:
    """Train ``cfg.model`` on the training split of ``cfg.data``; write checkpoint.pt and
    train.json to ``out`` (default :meth:`GPRunConfig.default_run_dir`). Returns the summary
    (train.json's content) with the run directory under ``"run"``."""
    from dynlearn_ros.datasets.splits import load_splits
    from dynlearn_ros.learning.training.gp import data_hash, inputs_targets, save_checkpoint, train_gp

    torch.set_num_threads(int(cfg.threads or 1))
    epochs, batch_size, lr = cfg.hparams()
    data, tr, va, _te = load_splits(str(cfg.data), cfg.seed, cfg.max_train_samples)
    xtr, ytr = inputs_targets(tr)
    xva, yva = inputs_targets(va)
    res = train_gp(cfg.architecture(), xtr, ytr, xva, yva, epochs=epochs, batch_size=batch_size, lr=lr,
                   seed=cfg.seed, dkl_subset=DKL_SUBSET, log=(lambda s: print(s, flush=True)) if cfg.progress else None)
    run = Path(out) if out else cfg.default_run_dir()
    run.mkdir(parents=True, exist_ok=True)
    summary = {
        "kind": cfg.model, "direction": "inverse", "data": str(cfg.data), "data_hash": data_hash(data),
        "joint_names": list(data.joint_names), "seed": cfg.seed, "epochs": epochs, "batch_size": batch_size,
        "lr": lr, "train_rows": len(tr), "val_rows": len(va), "best_epoch": res.best_epoch,
        "wall_s": round(res.seconds, 1), "config": res.model.cfg.to_dict(), "history": res.history,
        "command": cfg.command, "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }
    if "excitation" in data.meta:  # a converted bag's per-joint excitation (bags/excitation.py)
        summary["data_excitation"] = data.meta["excitation"]
    save_checkpoint(run / "checkpoint.pt", res.model, extra=summary)
    (run / "train.json").write_text(json.dumps(summary, indent=1))
    print(f"{cfg.model}: best epoch {res.best_epoch} of {epochs}, {res.seconds:.1f} s -> {run}")
    return {**summary, "run": str(run)}
