"""Evaluation of GP runs (SVDKL, SVGP, DKL) on the test split of a data set: RMSE (N*m), NLL
(standardized by the training torque std), 95 % coverage, mean predictive std."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import torch

from dynlearn_ros.learning.training.gp_runs import GPRunConfig, train_run


def evaluate_runs(cfg: GPRunConfig, runs: Sequence[str | Path]) -> dict:
    """Metrics of each run directory in ``runs`` (default: ``cfg.default_run_dir()``) on the test
    split of ``cfg.data`` (split seed ``cfg.seed``); a run directory without a checkpoint is
    trained first with ``cfg``. Returns {"data", "split_seed", "test_rows", "date", "command",
    "joint_names", "models": {"<kind> s<seed>": metrics}}."""
    from dynlearn_ros.datasets.splits import load_splits
    from dynlearn_ros.learning.training.gp import evaluate_model, inputs_targets, load_checkpoint

    torch.set_num_threads(int(cfg.threads or 1))
    data, _tr, _va, te = load_splits(str(cfg.data), cfg.seed)
    xte, yte = inputs_targets(te)
    results: dict = {"data": str(cfg.data), "split_seed": cfg.seed, "test_rows": len(te),
                     "date": datetime.now(UTC).strftime("%Y-%m-%d"), "command": cfg.command,
                     "joint_names": list(data.joint_names), "models": {}}
    for run in [Path(r) for r in runs] or [cfg.default_run_dir()]:
        if not (run / "checkpoint.pt").is_file():
            train_run(cfg, run)
        model, extra = load_checkpoint(run / "checkpoint.pt")
        res = evaluate_model(model, xte, yte)
        res.update({"run": str(run), "seed": extra.get("seed"), "best_epoch": extra.get("best_epoch"),
                    "train_rows": extra.get("train_rows"), "train_wall_s": extra.get("wall_s")})
        results["models"][f"{model.cfg.kind} s{extra.get('seed')}"] = res
    return results
