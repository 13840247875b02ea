"""``dynlearn-ros eval``: evaluate trained runs (and the analytic model) on the test split of a
data set (by default the split recorded by ``train``; ``--split/--gap/--test-file`` override
it); writes JSON (``--json``) and a markdown table (``--md``).

Examples::

    dynlearn-ros eval --data pneumatic --runs runs/pneumatic/*-forward-s0 --json r.json --md r.md
    dynlearn-ros eval --data panda_gaz2019 --runs runs/panda_gaz2019/* --model analytic --md r.md
"""

from __future__ import annotations

import argparse

from dynlearn_ros.commands._common import GP_KINDS, add_common, gp_dispatch
from dynlearn_ros.commands.train import add_split_arguments, add_task_argument, split_spec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser)
    add_split_arguments(parser)
    add_task_argument(parser)
    parser.set_defaults(model=None)
    parser.add_argument("--runs", nargs="*", default=[], help="run directories written by train")
    parser.add_argument("--subsample", type=int, default=1,
                        help="rate of the analytic / previous-torque rows (each run uses its own)")
    parser.add_argument("--urdf", default=None, help="--model analytic: URDF of your robot (default: "
                        "the robot table's baseline robot for the data set, config/robots.yaml)")
    parser.add_argument("--residual-clip", action="store_true",
                        help="forward runs on the ARX base (train --base arx) trained without "
                        "--residual-clip: also score each with its residual clipped to the training "
                        "residual's range (learning/models/arx_base.py), as a second row")


def run(args: argparse.Namespace) -> int:
    if args.task == "static":
        return _eval_static(args)
    if args.model in GP_KINDS:
        if split_spec(args, default_none=True) is not None:
            raise SystemExit("--split/--gap/--test-file apply to the sequence models; the GP models use their own split")
        return gp_dispatch(args, "evaluate")
    from dynlearn_ros.learning.evaluation.sequence_runs import evaluate_runs
    from dynlearn_ros.reporting.markdown import write_outputs
    from dynlearn_ros.reporting.tables import sequence_eval_table

    # ValueError (nothing to evaluate, no URDF, another robot's run): one line, exit 2 (cli.main)
    results = evaluate_runs(str(args.data), args.runs, args.seed, args.subsample, analytic=args.model == "analytic",
                                urdf=args.urdf, split=split_spec(args, default_none=True), threads=args.threads,
                                residual_clip=args.residual_clip)
    table = sequence_eval_table(results, results["direction"], results["joint_names"])
    if "metric" in results:
        table = f"h = k columns: {results['metric']}.\n\n{table}"
    write_outputs(results, table, args.json, args.md)
    return 0


def _eval_static(args: argparse.Namespace) -> int:
    """``eval --task static``: static FFNN and GP runs, training mean, linear model (and with
    ``--model analytic`` Pinocchio RNEA) on every test row."""
    from dynlearn_ros.learning.evaluation.static import evaluate_static
    from dynlearn_ros.reporting.markdown import write_outputs
    from dynlearn_ros.reporting.tables import sequence_eval_table

    results = evaluate_static(str(args.data), args.runs, args.seed, split=split_spec(args, default_none=True),
                              analytic=args.model == "analytic", urdf=args.urdf)
    write_outputs(results, "static task: every test row on its own.\n\n"
                  + sequence_eval_table(results, "inverse", results["joint_names"]), args.json, args.md)
    return 0
