"""``dynlearn-ros bench online --json PATH``: seconds per online-learning cycle and control ticks
late / missed during model swaps against a no-swap stretch (:mod:`dynlearn_ros.benchmarks.online`)."""

from __future__ import annotations

import argparse
import json

from dynlearn_ros.commands._common import command_line
from dynlearn_ros.reporting.markdown import write_outputs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", required=True, help="output JSON path")
    parser.add_argument("--payload-kg", type=float, default=12.0, help="payload the shipped model never saw")
    parser.add_argument("--collect-s", type=float, default=6.0, help="sim seconds of samples for the cycles")
    parser.add_argument("--chunk", type=int, default=500, help="new samples per cycle (0.5 s at 1 kHz)")
    parser.add_argument("--tick-s", type=float, default=10.0, help="seconds of the wall-clock 1 kHz loop")
    parser.add_argument("--swap-every-s", type=float, default=1.0, help="seconds between swaps in that loop")
    parser.add_argument("--switch-interval-s", type=float, default=None,
                        help="the interpreter's thread switch interval in that loop (default: Python's, "
                             "0.005, as in the controller node)")


def run(args: argparse.Namespace) -> int:
    from dynlearn_ros.benchmarks.online import run_bench

    result = {"command_line": command_line(args),
              **run_bench(args.payload_kg, args.collect_s, args.chunk, args.tick_s, args.swap_every_s,
                          **({} if args.switch_interval_s is None else {"switch_interval_s": args.switch_interval_s}))}
    write_outputs(result, None, args.json, None)
    print(json.dumps({k: v for k, v in result.items() if k != "cycles"} | {"cycle_seconds": result["cycles"]["seconds"]},
                     indent=1))
    return 0
