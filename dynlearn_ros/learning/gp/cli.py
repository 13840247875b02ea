"""``dynlearn-ros train|eval|export --model svdkl|svgp|dkl``: the GP side of the CLI.

``dynlearn_ros/commands/{train,eval,export}.py`` hand these models to :func:`train`,
:func:`evaluate` and :func:`export` with their argparse namespace. The common parser's defaults
(batch 32 windows, lr 1e-3, 10 epochs) are tuned for the recurrent models; where a value equals
that common default, the GP default below is used instead (say so explicitly on the command line
to override). Run directories follow the learning core's layout:
``runs/<data>/<model>-inverse-s<seed>/{checkpoint.pt, train.json}``.

Examples::

    dynlearn-ros train --data panda_gaz2019 --model svdkl --seed 0
    dynlearn-ros eval --data panda_gaz2019 --model svdkl --runs runs/panda_gaz2019/svdkl-inverse-s0 \
        --json svdkl.json --md svdkl.md
    dynlearn-ros export --data panda_gaz2019 --model svdkl --runs runs/panda_gaz2019/svdkl-inverse-s0 \
        --out models/svdkl_panda
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from dynlearn_ros.learning.gp.models import GPConfig
from dynlearn_ros.learning.gp.options import add_architecture_arguments

#: GP defaults: (epochs, batch_size, lr); DKL "epochs" are full-batch iterations
GP_DEFAULTS = {"svdkl": (40, 256, 1e-2), "svgp": (40, 256, 1e-2), "dkl": (100, 0, 2e-2)}
#: size of the random training subset the exact GP (DKL) sees
DKL_SUBSET = 800


def _common_defaults() -> dict:
    try:
        from dynlearn_ros.commands._common import add_common
    except ImportError:
        return {}
    p = argparse.ArgumentParser()
    add_common(p)
    return {k: p.get_default(k) for k in ("epochs", "batch_size", "lr")}


def resolve_hparams(args: argparse.Namespace) -> tuple[int, int, float]:
    """(epochs, batch_size, lr) for args.model: values equal to the common defaults or None are
    replaced by :data:`GP_DEFAULTS`."""
    common = _common_defaults()
    out = []
    for i, key in enumerate(("epochs", "batch_size", "lr")):
        val = getattr(args, key, None)
        if val is None or (key in common and val == common[key]):
            val = GP_DEFAULTS[args.model][i]
        out.append(val)
    return int(out[0]), int(out[1]), float(out[2])


def model_config(args: argparse.Namespace) -> GPConfig:
    """Architecture from optional args (gp_hidden, gp_features, gp_inducing, gp_input,
    gp_lengthscale_max) or the defaults."""
    cfg = GPConfig(kind=args.model)
    hidden = getattr(args, "gp_hidden", None)
    if hidden:
        cfg.hidden = tuple(int(h) for h in str(hidden).split(","))
    cfg.feature_dim = int(getattr(args, "gp_features", None) or cfg.feature_dim)
    cfg.num_inducing = int(getattr(args, "gp_inducing", None) or cfg.num_inducing)
    cfg.gp_input = str(getattr(args, "gp_input", None) or cfg.gp_input)
    ls_max = getattr(args, "gp_lengthscale_max", None)
    cfg.lengthscale_max = float(ls_max) if ls_max is not None else None
    return cfg


def default_run_dir(args: argparse.Namespace) -> Path:
    return Path(f"runs/{Path(str(args.data)).stem}/{args.model}-inverse-s{args.seed}")


def load_splits(data_name: str, seed: int, max_train_samples: int | None = None):
    """(data, train, val, test) TrajectoryData of a named data set or .npz, no leakage between
    parts; ``max_train_samples`` keeps the first N rows of the training split."""
    from dynlearn_ros.datasets.registry import load_dataset
    from dynlearn_ros.datasets.splits import train_val_test

    data = load_dataset(data_name)
    train, val, test = train_val_test(data, seed=seed)
    if max_train_samples is not None and len(train) > max_train_samples:
        mask = np.zeros(len(train), dtype=bool)
        mask[:max_train_samples] = True
        train = train.select(mask)
    return data, train, val, test


def command_line() -> str:
    """The command that is running, for metadata (``dynlearn-ros`` when run through the CLI)."""
    argv = list(sys.argv)
    prog = argv[0] if argv else ""
    if prog.endswith("dynlearn_ros/learning/gp/cli.py"):
        prog = "python -m dynlearn_ros.learning.gp.cli"
    elif prog.endswith("dynlearn_ros/learning/gp/report.py"):
        prog = "python -m dynlearn_ros.learning.gp.report"
    elif prog.endswith("dynlearn_ros/learning/gp/novelty.py"):
        prog = "python -m dynlearn_ros.learning.gp.novelty"
    elif prog.endswith(("dynlearn-ros", "dynlearn_ros/cli.py", "__main__.py")):
        prog = "dynlearn-ros"
    else:
        prog = shlex.quote(prog)
    return " ".join([prog, shlex.join(argv[1:])]).strip()


def _unquote_prog(cmd: str | None) -> str | None:
    """Commands recorded before command_line() stopped quoting the ``python -m`` prefix."""
    if cmd is None:
        return None
    for prog in ("python -m dynlearn_ros.learning.gp.cli", "python -m dynlearn_ros.learning.gp.report"):
        cmd = cmd.replace(f"'{prog}'", prog)
    return cmd


def train(args: argparse.Namespace) -> int:
    """Train ``args.model`` on the training split of ``args.data``; write checkpoint.pt and
    train.json to ``args.out`` (default :func:`default_run_dir`). Returns 0."""
    from dynlearn_ros.learning.gp.training import data_hash, inputs_targets, save_checkpoint, train_gp

    torch.set_num_threads(int(getattr(args, "threads", 1) or 1))
    epochs, batch_size, lr = resolve_hparams(args)
    data, tr, va, _te = load_splits(str(args.data), args.seed, getattr(args, "max_train_samples", None))
    xtr, ytr = inputs_targets(tr)
    xva, yva = inputs_targets(va)
    cfg = model_config(args)
    quiet = getattr(args, "no_progress", False)
    res = train_gp(cfg, xtr, ytr, xva, yva, epochs=epochs, batch_size=batch_size, lr=lr, seed=args.seed,
                   dkl_subset=DKL_SUBSET, log=None if quiet else (lambda s: print(s, flush=True)))
    out = Path(args.out) if getattr(args, "out", None) else default_run_dir(args)
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "kind": args.model, "direction": "inverse", "data": str(args.data), "data_hash": data_hash(data),
        "joint_names": list(data.joint_names), "seed": args.seed, "epochs": epochs, "batch_size": batch_size,
        "lr": lr, "train_rows": len(tr), "val_rows": len(va), "best_epoch": res.best_epoch,
        "wall_s": round(res.seconds, 1), "config": res.model.cfg.to_dict(), "history": res.history,
        "command": command_line(), "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }
    save_checkpoint(out / "checkpoint.pt", res.model, extra=summary)
    (out / "train.json").write_text(json.dumps(summary, indent=1))
    print(f"{args.model}: best epoch {res.best_epoch} of {epochs}, {res.seconds:.1f} s -> {out}")
    return 0


def _run_dirs(args: argparse.Namespace) -> list[Path]:
    runs = list(getattr(args, "runs", None) or [])
    for key in ("run", "checkpoint"):
        if getattr(args, key, None):
            runs.append(getattr(args, key))
    if not runs:
        runs = [default_run_dir(args)]
    out = []
    for r in runs:
        p = Path(r)
        out.append(p.parent if p.suffix == ".pt" else p)
    return out


def markdown(results: dict, joint_names) -> str:
    """Inverse-dynamics table: RMSE per joint (N*m), mean RMSE, NLL (standardized), 95 % coverage."""
    lines = ["| model | " + " | ".join(joint_names) + " | all | NLL | 95 % coverage | mean std |",
             "|---" * (len(joint_names) + 5) + "|"]
    for name, res in results["models"].items():
        lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in res["rmse_per_joint"])
                     + f" | {res['rmse']:.3f} | {res['nll']:.3f} | {res['coverage95']:.3f} | {res['mean_std']:.3f} |")
    return "\n".join(lines) + "\n"


def evaluate(args: argparse.Namespace) -> int:
    """Evaluate GP run directories (``args.runs``, default :func:`default_run_dir`) on the test
    split of ``args.data``: RMSE (N*m), NLL, 95 % coverage; JSON to ``args.json``, markdown to
    ``args.md``. A run directory that does not exist yet is trained first. Returns 0."""
    from dynlearn_ros.learning.gp.training import evaluate_model, inputs_targets, load_checkpoint

    torch.set_num_threads(int(getattr(args, "threads", 1) or 1))
    data, _tr, _va, te = load_splits(str(args.data), args.seed)
    xte, yte = inputs_targets(te)
    results: dict = {"data": str(args.data), "split_seed": args.seed, "test_rows": len(te),
                     "date": datetime.now(UTC).strftime("%Y-%m-%d"), "command": command_line(), "models": {}}
    for run in _run_dirs(args):
        if not (run / "checkpoint.pt").is_file():
            ns = argparse.Namespace(**vars(args))
            ns.out = str(run)
            train(ns)
        model, extra = load_checkpoint(run / "checkpoint.pt")
        res = evaluate_model(model, xte, yte)
        res.update({"run": str(run), "seed": extra.get("seed"), "best_epoch": extra.get("best_epoch"),
                    "train_rows": extra.get("train_rows"), "train_wall_s": extra.get("wall_s")})
        results["models"][f"{model.cfg.kind} s{extra.get('seed')}"] = res
    text = json.dumps(results, indent=1)
    if getattr(args, "json", None):
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text)
    md = markdown(results, data.joint_names)
    if getattr(args, "md", None):
        Path(args.md).parent.mkdir(parents=True, exist_ok=True)
        Path(args.md).write_text(md)
    print(md)
    return 0


def export(args: argparse.Namespace) -> int:
    """Export a trained SVDKL/SVGP run (``args.runs[0]``/``args.run``/default run dir) to the
    model directory ``args.out`` (model.onnx + metadata.json); test metrics of the run on
    ``args.data`` go into the metadata (with ``args.novelty``: the run's calibrated novelty term,
    ``<run>/novelty.json``, joins the graph's variance and the metrics). Returns 0."""
    from dynlearn_ros.learning.gp.export import export_model_dir
    from dynlearn_ros.learning.gp.training import evaluate_model, inputs_targets, load_checkpoint

    if args.model == "dkl":
        raise SystemExit("--model dkl: the exact-GP baseline has no ONNX export (use svdkl or svgp)")
    run = _run_dirs(args)[0]
    model, extra = load_checkpoint(run / "checkpoint.pt")
    _data, tr, _va, te = load_splits(str(extra.get("data", args.data)), int(extra.get("seed", args.seed)))
    xte, yte = inputs_targets(te)
    term = None
    if getattr(args, "novelty", False):
        from dynlearn_ros.learning.gp.novelty import NOVELTY_FILE, load_term

        term = load_term(run, model, inputs_targets(tr)[0])
        if term is None:
            raise SystemExit(f"--novelty: {run / NOVELTY_FILE} does not exist (run python -m "
                             "dynlearn_ros.learning.gp.novelty --runs <run> first)")
    if getattr(args, "no_metrics", False):
        metrics = {k: None for k in ("rmse", "rmse_per_joint", "nll", "coverage95", "mean_std", "n_samples")}
    elif term is not None:
        from dynlearn_ros.learning.gp.novelty import predict_with_term
        from dynlearn_ros.learning.gp.training import gaussian_metrics

        metrics = gaussian_metrics(yte, *predict_with_term(model, term, xte), model.y_std.numpy())
    else:
        metrics = evaluate_model(model, xte, yte)
    out = Path(args.out) if getattr(args, "out", None) else Path("models") / f"{args.model}_{Path(str(args.data)).stem}"
    extra["command"] = _unquote_prog(extra.get("command"))
    meta = {
        "training": {k: extra.get(k) for k in ("data", "data_hash", "seed", "epochs", "batch_size", "lr",
                                               "train_rows", "best_epoch", "wall_s", "command", "date")},
        "training_data_hash": extra.get("data_hash"),
        "metrics": {"test": {k: metrics[k] for k in ("rmse", "rmse_per_joint", "nll", "coverage95", "mean_std",
                                                    "n_samples")}},
        "export_command": command_line(),
    }
    if term is not None and metrics["rmse"] is not None:  # the same run without the term, for reference
        plain = evaluate_model(model, xte, yte)
        meta["metrics"]["test_without_novelty"] = {k: plain[k] for k in ("nll", "coverage95", "mean_std")}
    golden = xte[np.linspace(0, len(xte) - 1, 4).astype(int)]
    export_model_dir(model, out, tuple(extra.get("joint_names") or _data.joint_names), extra_meta=meta,
                     golden_x=golden, novelty=term, model_version=getattr(args, "model_version", None))
    if metrics["rmse"] is None:
        print(f"exported {model.cfg.kind} -> {out} (no test metrics)")
    else:
        print(f"exported {model.cfg.kind} -> {out} (test RMSE {metrics['rmse']:.3f} N*m, "
              f"coverage {metrics['coverage95']:.3f})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Stand-alone parser (``python -m dynlearn_ros.learning.gp.cli``): the same options as
    ``dynlearn-ros train|eval|export`` for the GP models plus the architecture options."""
    p = argparse.ArgumentParser(prog="python -m dynlearn_ros.learning.gp.cli", description=__doc__.splitlines()[0])
    p.add_argument("command", choices=("train", "eval", "export"))
    p.add_argument("--data", default="panda_gaz2019", help="data set name or generic .npz path")
    p.add_argument("--model", choices=("svdkl", "svgp", "dkl"), default="svdkl")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None, help="default: GP_DEFAULTS")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--max-train-samples", type=int, default=None)
    p.add_argument("--out", default=None, help="train: run directory; export: model directory")
    p.add_argument("--runs", nargs="*", default=[], help="eval/export: run directories")
    p.add_argument("--json", default=None)
    p.add_argument("--md", default=None)
    add_architecture_arguments(p)
    p.add_argument("--novelty", action="store_true",
                   help="export: add the run's calibrated novelty term (<run>/novelty.json) to the variance")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return {"train": train, "eval": evaluate, "export": export}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
