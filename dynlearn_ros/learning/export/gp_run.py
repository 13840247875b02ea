"""A trained GP run (SVDKL / SVGP) -> ONNX model directory, with its test metrics and
provenance in metadata.json (the graph itself: :mod:`dynlearn_ros.learning.export.gp`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dynlearn_ros.learning.training.gp_runs import GPRunConfig

#: the metric keys stored in metadata.json
METRIC_KEYS = ("rmse", "rmse_per_joint", "nll", "coverage95", "mean_std", "n_samples")


def _unquote_prog(cmd: str | None) -> str | None:
    """Commands recorded before the ``python -m`` prefix stopped being shell-quoted (old runs)."""
    if cmd is None:
        return None
    for prog in ("python -m dynlearn_ros.learning.gp.cli", "python -m dynlearn_ros.learning.gp.report"):
        cmd = cmd.replace(f"'{prog}'", prog)
    return cmd


def export_run(cfg: GPRunConfig, run: str | Path, out: str | Path | None = None, novelty: bool = False,
               metrics: bool = True, model_version: int | None = None) -> Path:
    """Export the run directory ``run`` (checkpoint.pt) to the model directory ``out`` (default
    ``models/<model>_<data stem>``). Test metrics on the run's own data set and split seed
    (``cfg.data`` / ``cfg.seed`` when the run does not record them) go into the metadata unless
    ``metrics`` is False; with ``novelty`` the run's calibrated novelty term
    (``<run>/novelty.json``) joins the graph's variance and the metrics. Returns ``out``.

    Raises ValueError for DKL (no ONNX export) and FileNotFoundError when ``novelty`` is asked
    for and the run has no novelty.json."""
    from dynlearn_ros.datasets.splits import load_splits
    from dynlearn_ros.learning.export.gp import export_model_dir
    from dynlearn_ros.learning.models.novelty import NOVELTY_FILE, load_term, predict_with_term
    from dynlearn_ros.learning.training.gp import (
        evaluate_model,
        gaussian_metrics,
        inputs_targets,
        load_checkpoint,
    )

    if cfg.model == "dkl":
        raise ValueError("--model dkl: the exact-GP baseline has no ONNX export (use svdkl or svgp)")
    run = Path(run)
    model, extra = load_checkpoint(run / "checkpoint.pt")
    data, tr, _va, te = load_splits(str(extra.get("data", cfg.data)), int(extra.get("seed", cfg.seed)))
    xte, yte = inputs_targets(te)
    term = None
    if novelty:
        term = load_term(run, model, inputs_targets(tr)[0])
        if term is None:
            raise FileNotFoundError(f"--novelty: {run / NOVELTY_FILE} does not exist (run dynlearn-ros novelty "
                                    f"--runs {run} first)")
    if not metrics:
        met: dict = {k: None for k in METRIC_KEYS}
    elif term is not None:
        met = gaussian_metrics(yte, *predict_with_term(model, term, xte), model.y_std.numpy())
    else:
        met = evaluate_model(model, xte, yte)
    out = Path(out) if out else Path("models") / f"{cfg.model}_{Path(str(cfg.data)).stem}"
    extra["command"] = _unquote_prog(extra.get("command"))
    meta = {
        "training": {k: extra.get(k) for k in ("data", "data_hash", "seed", "epochs", "batch_size", "lr",
                                               "train_rows", "best_epoch", "wall_s", "command", "date")},
        "training_data_hash": extra.get("data_hash"),
        "metrics": {"test": {k: met[k] for k in METRIC_KEYS}},
        "export_command": cfg.command,
    }
    if term is not None and met["rmse"] is not None:  # the same run without the term, for reference
        plain = evaluate_model(model, xte, yte)
        meta["metrics"]["test_without_novelty"] = {k: plain[k] for k in ("nll", "coverage95", "mean_std")}
    golden = xte[np.linspace(0, len(xte) - 1, 4).astype(int)]
    export_model_dir(model, out, tuple(extra.get("joint_names") or data.joint_names), extra_meta=meta,
                     golden_x=golden, novelty=term, model_version=model_version)
    if met["rmse"] is None:
        print(f"exported {model.cfg.kind} -> {out} (no test metrics)")
    else:
        print(f"exported {model.cfg.kind} -> {out} (test RMSE {met['rmse']:.3f} N*m, "
              f"coverage {met['coverage95']:.3f})")
    return out
