"""``dynlearn-ros report gp-quality | gp-fractions | gp-compare``: the GP studies of
docs/results_svdkl.md (:mod:`dynlearn_ros.learning.evaluation.gp_studies`).

    dynlearn-ros report gp-quality --data panda_gaz2019 ur10 iiwa.npz --models svdkl svgp dkl \\
        --epochs 40 --runs-root runs/gp --json q.json --md q.md
    dynlearn-ros report gp-fractions --data panda_gaz2019 --model svdkl --fractions 0.2 0.4 0.6 0.8 1.0 \\
        --epochs 40 --png docs/img/svdkl_variance_vs_data.png --json f.json
    dynlearn-ros report gp-compare --data vgain_iiwa2.npz --runs svdkl=runs/a svdkl+x=runs/b --novelty \\
        --json c.json --md c.md
"""

from __future__ import annotations

import argparse

from dynlearn_ros.commands._common import command_line
from dynlearn_ros.learning.models import GP_KINDS


def add_arguments(parser: argparse.ArgumentParser, target: str) -> None:
    """The options of ``target`` ('gp-quality', 'gp-fractions' or 'gp-compare')."""
    many = target == "gp-quality"
    parser.add_argument("--data", nargs="+" if many else 1, default=["panda_gaz2019"],
                        help="data set name(s) or .npz path(s)" if many else "data set name or .npz path")
    parser.add_argument("--seed", type=int, default=0, help="split seed (and training seed of missing runs)")
    parser.add_argument("--json", default=None, help="JSON output path")
    if target in ("gp-quality", "gp-compare"):
        parser.add_argument("--md", default=None, help="markdown table output path")
    if target in ("gp-quality", "gp-fractions"):
        parser.add_argument("--epochs", type=int, default=None, help="of missing runs (default: the GP defaults)")
        parser.add_argument("--runs-root", default="runs/gp", help="where missing runs are trained / found")
    if target == "gp-quality":
        parser.add_argument("--models", nargs="+", choices=GP_KINDS, default=list(GP_KINDS))
        parser.add_argument("--no-train", action="store_true", help="skip (do not train) missing runs")
    if target == "gp-fractions":
        parser.add_argument("--model", choices=GP_KINDS, default="svdkl")
        parser.add_argument("--fractions", type=float, nargs="+", default=[0.2, 0.4, 0.6, 0.8, 1.0])
        parser.add_argument("--plot-rows", type=int, default=3000, help="test rows in the plot")
        parser.add_argument("--joints", type=int, nargs="+", default=[0, 1, 3], help="joints to plot (0-based)")
        parser.add_argument("--png", default=None, help="figure output path")
    if target == "gp-compare":
        parser.add_argument("--runs", nargs="+", required=True, help="name=run_dir (or run_dir) of trained runs")
        parser.add_argument("--novelty", action="store_true",
                            help="also a '<name> + novelty' row for runs with a calibrated novelty.json")
        parser.add_argument("--split-distance", type=float, default=None,
                            help="also test metrics of rows within / beyond this distance (standardized units) "
                                 "of the training inputs")


def run(args: argparse.Namespace) -> int:
    import torch

    from dynlearn_ros.learning.evaluation import gp_studies
    from dynlearn_ros.reporting.markdown import write_outputs
    from dynlearn_ros.reporting.tables import gp_compare_table, gp_quality_table

    torch.set_num_threads(1)
    cfg = gp_studies.GPStudyConfig(data=tuple(args.data), seed=args.seed, command=command_line(args))
    if args.target == "gp-quality":
        cfg.models, cfg.epochs, cfg.runs_root, cfg.no_train = tuple(args.models), args.epochs, args.runs_root, args.no_train
        res = gp_studies.quality(cfg)
        write_outputs(res, gp_quality_table(res), args.json, args.md)
    elif args.target == "gp-fractions":
        cfg.model, cfg.fractions, cfg.epochs, cfg.runs_root = args.model, tuple(args.fractions), args.epochs, args.runs_root
        cfg.plot_rows = args.plot_rows
        if args.png:  # refuse bad joint indices before training anything
            from dynlearn_ros.datasets.catalog import load_dataset

            n = load_dataset(args.data[0]).n_joints
            bad = [j for j in args.joints if not 0 <= j < n]
            if bad:
                raise SystemExit(f"--joints {bad}: {args.data[0]} has joints 0..{n - 1}")
        res, curves = gp_studies.fractions(cfg)
        if args.png:
            from dynlearn_ros.reporting.plots import variance_vs_data

            variance_vs_data(args.png, curves["test"], curves["preds"], curves["rows"], args.joints,
                             curves["joint_names"], args.model)
            res["png"] = args.png
        write_outputs(res, None, args.json, None)
    else:
        cfg.runs, cfg.novelty, cfg.split_distance = tuple(args.runs), args.novelty, args.split_distance
        res = gp_studies.compare(cfg)
        write_outputs(res, gp_compare_table(res), args.json, args.md)
    return 0
