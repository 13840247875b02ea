"""``dynlearn-ros report inverse-table``: one inverse-dynamics table for every model family on
one data set's test rows (:mod:`dynlearn_ros.learning.evaluation.inverse_table`), in two regimes:
(i) the controller form (each sequence run fed its own previous torque) and (ii) the measured
previous torque.

    dynlearn-ros report inverse-table --data vgain_iiwa2.npz \\
        --runs ffnn=runs/ffnn lstm=runs/lstm acrkn-inv=runs/acrkn svgp=runs/svgp svdkl+x=runs/x \\
        --novelty --json t.json --md t.md
    dynlearn-ros report inverse-table --data panda_gaz2019 \
        --runs acrkn-inv=runs/a lstm=runs/l ffnn=runs/f svdkl=runs/s --json panda.json --md panda.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dynlearn_ros.commands._common import command_line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="data set name or .npz path")
    parser.add_argument("--runs", nargs="+", required=True, help="name=run_dir (sequence-model or GP runs)")
    parser.add_argument("--seed", type=int, default=0, help="split seed")
    parser.add_argument("--novelty", action="store_true", help="also '<name> + novelty' for GP runs with novelty.json")
    parser.add_argument("--no-analytic", action="store_true", help="leave out the rigid-body baseline")
    parser.add_argument("--urdf", default=None, help="URDF of the rigid-body baseline (default: the data set's robot)")
    parser.add_argument("--json", default=None, help="JSON output path")
    parser.add_argument("--md", default=None, help="markdown table output path")


def run(args: argparse.Namespace) -> int:
    import torch

    from dynlearn_ros.learning.evaluation.inverse_table import build_table
    from dynlearn_ros.reporting.markdown import write_outputs
    from dynlearn_ros.reporting.tables import inverse_table

    torch.set_num_threads(1)
    runs = []
    for spec in args.runs:
        name, _, run_dir = spec.partition("=")
        runs.append((name, run_dir) if run_dir else (Path(spec).name, spec))
    res = build_table(args.data, runs, args.seed, args.novelty, not args.no_analytic, args.urdf)
    res["command"] = command_line(args)
    write_outputs(res, inverse_table(res), args.json, args.md)
    return 0
