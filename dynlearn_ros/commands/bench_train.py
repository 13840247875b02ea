"""``dynlearn-ros bench train --json PATH``: training seconds per epoch
(:mod:`dynlearn_ros.benchmarks.training`)."""

from __future__ import annotations

import argparse

from dynlearn_ros.reporting.markdown import write_outputs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", required=True, help="output JSON path")
    parser.add_argument("--samples", type=int, default=100_000, help="rows per epoch")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts")
    parser.add_argument("--models", nargs="+", default=["acrkn-inv", "acrkn-fwd", "lstm", "ffnn"])
    parser.add_argument("--batch-size", type=int, default=32)


def run(args: argparse.Namespace) -> int:
    from dynlearn_ros.benchmarks.training import bench_training

    out = bench_training(args.samples, tuple(args.threads), tuple(args.models), args.batch_size)
    write_outputs(out, None, args.json, None)
    print(f"-> {args.json}")
    return 0
