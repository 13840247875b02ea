"""``dynlearn-ros bench plant --json PATH``: PyBullet plant speed and model-match figures
(:mod:`dynlearn_ros.benchmarks.plant`)."""

from __future__ import annotations

import argparse
import json

from dynlearn_ros.commands._common import command_line
from dynlearn_ros.reporting.markdown import write_outputs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", required=True, help="output JSON path")
    parser.add_argument("--robots", nargs="+", default=["iiwa", "panda"])
    parser.add_argument("--steps", type=int, default=20000, help="steps per speed repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--states", type=int, default=200, help="random states of the match figures")


def run(args: argparse.Namespace) -> int:
    from dynlearn_ros.benchmarks.plant import run_bench

    result = {"command_line": command_line(args),
              "robots": [run_bench(r, args.steps, args.repeats, args.states) for r in args.robots]}
    write_outputs(result, None, args.json, None)
    print(json.dumps(result, indent=2))
    return 0
