"""``dynlearn-ros bench svdkl --json PATH``: latency of one SVDKL mean+variance prediction
(:mod:`dynlearn_ros.benchmarks.svdkl`)."""

from __future__ import annotations

import argparse
import json

from dynlearn_ros.reporting.markdown import write_outputs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", default=None, help="write the result here (it is printed too)")
    parser.add_argument("--n-calls", type=int, default=5000, help="timed calls per entry")


def run(args: argparse.Namespace) -> int:
    from dynlearn_ros.benchmarks.svdkl import bench

    res = bench(args.n_calls)
    write_outputs(res, None, args.json, None)
    print(json.dumps(res, indent=1))
    return 0
