"""Training runs of the sequence models (ac-RKN, RKN, LSTM, GRU, FFNN) from a typed configuration:
load and split a data set, optionally lower its rate, fit, and write the run directory
``<out>/{checkpoint.pt, train.json}`` (``dynlearn-ros train``)."""

from __future__ import annotations

import json
from pathlib import Path

from dynlearn_ros.learning.training.sequence import TrainConfig


def default_run_dir(data: str, tcfg: TrainConfig) -> Path:
    return Path(f"runs/{Path(str(data)).stem}/{tcfg.kind}-{tcfg.direction}-s{tcfg.seed}")


def data_warnings(data, train, val, tcfg: TrainConfig) -> list[str]:
    """The data checks of :mod:`dynlearn_ros.datasets.check` for a training run: time series at
    dt, units, and whether the training and validation splits hold windows of ``tcfg.window``."""
    from dynlearn_ros.datasets.check import check_time_series, check_windows

    return [*check_time_series(data), *check_windows(train, tcfg.window, tcfg.stride, "training split"),
            *check_windows(val, tcfg.window, tcfg.stride, "validation split")]


def train_run(data_name: str, tcfg: TrainConfig, out: str | Path | None = None, subsample: int = 1,
              progress: bool = True, command: str = "", split=None) -> dict:
    """Fit ``tcfg`` on the training split of ``data_name`` (validation split for the best epoch),
    both kept every ``subsample``-th row of each episode; ``split``: a
    :class:`~dynlearn_ros.datasets.splits.SplitSpec` (default fractions 0.7 / 0.15 / 0.15, no gap),
    recorded in the checkpoint for ``eval``. Prints the data checks' warnings first. Writes
    checkpoint.pt and train.json to ``out`` (default :func:`default_run_dir`). Returns the
    checkpoint dict (with ``"run"``)."""
    import sys

    from dynlearn_ros.datasets.catalog import load_dataset
    from dynlearn_ros.datasets.filtering import subsample as keep_every
    from dynlearn_ros.datasets.splits import SplitSpec, split_data
    from dynlearn_ros.learning.training.sequence import data_hash, fit, save_checkpoint

    split = split or SplitSpec()
    data = load_dataset(data_name)
    train, val, _test = split_data(data, seed=tcfg.seed, spec=split)
    train, val = keep_every(train, subsample), keep_every(val, subsample)
    warnings = data_warnings(keep_every(data, subsample), train, val, tcfg)
    for w in warnings:
        print(f"data check: {w}", file=sys.stderr)
    ckpt = fit(train, val, tcfg, progress=progress, data_name=str(data_name))
    ckpt["data_hash"] = data_hash(data)
    ckpt["subsample"] = subsample
    ckpt["split"] = split.to_dict()
    ckpt["data_warnings"] = warnings
    if "excitation" in data.meta:  # a converted bag's per-joint excitation (bags/excitation.py)
        ckpt["data_excitation"] = data.meta["excitation"]
    ckpt["train_command"] = command
    run = Path(out) if out else default_run_dir(data_name, tcfg)
    run.mkdir(parents=True, exist_ok=True)
    save_checkpoint(ckpt, run / "checkpoint.pt")
    summary = {k: v for k, v in ckpt.items() if k not in ("state_dict",)}
    (run / "train.json").write_text(json.dumps(summary, indent=1))
    print(f"{tcfg.kind} ({tcfg.direction}): best epoch {ckpt['best_epoch']} val loss {ckpt['best_val_loss']:.4f}, "
          f"{ckpt['wall_s']:.1f} s -> {run}")
    return {**ckpt, "run": str(run)}
