"""Arguments shared by ``train``, ``eval`` and ``export`` (sequence models and GP models), and
the translation of parsed options into the learning package's configuration objects."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from dynlearn_ros.learning.models import GP_INPUTS, GP_KINDS

if TYPE_CHECKING:  # torch-free at run time: the parser of every verb imports this module
    from dynlearn_ros.learning.training.gp_runs import GPRunConfig

MODEL_CHOICES = ("acrkn-fwd", "acrkn-inv", "rkn", "lstm", "gru", "ffnn", "analytic", *GP_KINDS)
FORWARD_DATA = ("pneumatic", "pneumatic_raw", "pneumatic_pressure", "kuka_lwr", "baxter")
#: sequence models' (epochs, batch_size, lr) when not given; the GP models have their own
#: (learning.training.gp_runs.GP_DEFAULTS)
SEQUENCE_DEFAULTS = (10, 32, 1e-3)


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default="pneumatic",
                        help="data set name (pneumatic, panda_gaz2019, ur10, ...) or a generic .npz path")
    parser.add_argument("--model", choices=MODEL_CHOICES, default="acrkn-inv", help="model kind")
    parser.add_argument("--direction", choices=("forward", "inverse"), default=None,
                        help="forward or inverse dynamics (default: from --model, lstm/gru from --data)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (weights, masks, split)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="default 10; svdkl/svgp 40, dkl 100 full-batch iterations")
    parser.add_argument("--out", default=None, help="output directory")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="windows per batch (default 32); svdkl/svgp rows per batch (default 256)")
    parser.add_argument("--lr", type=float, default=None, help="default 1e-3; svdkl/svgp 1e-2, dkl 2e-2")
    parser.add_argument("--max-train-samples", type=int, default=None,
                        help="use only the first N rows of the training split")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--json", default=None, help="JSON output path")
    parser.add_argument("--md", default=None, help="markdown table output path")


def add_gp_architecture_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The GP architecture options (an ArgumentParser or argument group)."""
    parser.add_argument("--gp-hidden", default=None, help="extractor hidden widths, e.g. 128,128")
    parser.add_argument("--gp-features", type=int, default=None, help="feature dimension D")
    parser.add_argument("--gp-inducing", type=int, default=None, help="inducing points M per joint")
    parser.add_argument("--gp-input", choices=GP_INPUTS, default=None,
                        help="the GP's input: 'features' (phi(x), default) or 'features+x' ([phi(x), x]: "
                             "distance-aware variance; svdkl/dkl)")
    parser.add_argument("--gp-lengthscale-max", type=float, default=None,
                        help="upper bound on the ARD lengthscales (standardized units; default none)")


def sequence_hparams(args: argparse.Namespace) -> tuple[int, int, float]:
    """(epochs, batch_size, lr) of a sequence model: the options, :data:`SEQUENCE_DEFAULTS` where
    not given."""
    given = (args.epochs, args.batch_size, args.lr)
    e, b, lr = (d if v is None else v for v, d in zip(given, SEQUENCE_DEFAULTS, strict=True))
    return int(e), int(b), float(lr)


def direction_of(args: argparse.Namespace) -> str:
    if args.direction:
        return args.direction
    if args.model in ("acrkn-fwd", "rkn"):
        return "forward"
    if args.model in ("acrkn-inv", "ffnn", "analytic"):
        return "inverse"
    return "forward" if str(args.data) in FORWARD_DATA else "inverse"


def command_line(args: argparse.Namespace) -> str:
    """The command line as given (``dynlearn-ros ...``), recorded for provenance."""
    return shlex.join(getattr(args, "command_line", None) or ["dynlearn-ros", *sys.argv[1:]])


def gp_run_config(args: argparse.Namespace) -> GPRunConfig:
    """A :class:`~dynlearn_ros.learning.training.gp_runs.GPRunConfig` from parsed options (those a
    parser lacks take the config's defaults)."""
    from dynlearn_ros.learning.training.gp_runs import GPRunConfig

    hidden = getattr(args, "gp_hidden", None)
    return GPRunConfig(
        data=str(args.data), model=args.model, seed=args.seed, epochs=getattr(args, "epochs", None),
        batch_size=getattr(args, "batch_size", None), lr=getattr(args, "lr", None),
        max_train_samples=getattr(args, "max_train_samples", None),
        gp_hidden=tuple(int(h) for h in str(hidden).split(",")) if hidden else None,
        gp_features=getattr(args, "gp_features", None), gp_inducing=getattr(args, "gp_inducing", None),
        gp_input=getattr(args, "gp_input", None), gp_lengthscale_max=getattr(args, "gp_lengthscale_max", None),
        threads=int(getattr(args, "threads", 1) or 1), progress=not getattr(args, "no_progress", False),
        command=command_line(args),
    )


def gp_run_dirs(args: argparse.Namespace) -> list[Path]:
    """Run directories from ``--runs`` / ``--run`` (a ``checkpoint.pt`` path counts as its
    directory); empty when none is given."""
    runs = list(getattr(args, "runs", None) or [])
    if getattr(args, "run", None):
        runs.append(args.run)
    return [Path(r).parent if Path(r).suffix == ".pt" else Path(r) for r in runs]


def gp_dispatch(args: argparse.Namespace, func: str) -> int:
    """``train`` / ``evaluate`` / ``export`` of --model svdkl|svgp|dkl: the options as a
    GPRunConfig, handed to the learning package; a refused request exits with its reason."""
    from dynlearn_ros.reporting.markdown import write_outputs
    from dynlearn_ros.reporting.tables import gp_eval_table

    cfg = gp_run_config(args)
    runs = gp_run_dirs(args)
    if func == "train":
        from dynlearn_ros.learning.training.gp_runs import train_run

        train_run(cfg, args.out)
    elif func == "evaluate":
        from dynlearn_ros.learning.evaluation.gp_runs import evaluate_runs

        res = evaluate_runs(cfg, runs)
        write_outputs(res, gp_eval_table(res, res["joint_names"]), args.json, args.md)
    elif func == "export":
        from dynlearn_ros.learning.export.gp_run import export_run

        try:
            export_run(cfg, runs[0] if runs else cfg.default_run_dir(), args.out,
                       novelty=bool(getattr(args, "novelty", False)), metrics=not getattr(args, "no_metrics", False),
                       model_version=getattr(args, "model_version", None))
        except (ValueError, FileNotFoundError) as exc:  # dkl, or --novelty without a calibration
            raise SystemExit(f"export: {exc}") from exc
    else:
        raise ValueError(f"unknown GP function {func!r}")
    return 0
