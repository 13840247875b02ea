"""``dynlearn-ros bench recorder --json PATH``: the control loop without the recorder node and
with it (bag_time send / receive), in one run, ratios of the medians (docs/bags.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=10.0, help="sim seconds per run")
    parser.add_argument("--pairs", type=int, default=2, help="rounds of (off, send, receive), every other "
                        "round reversed")
    parser.add_argument("--stepping", choices=("realtime", "lockstep"), default="realtime")
    parser.add_argument("--rt-priority", type=int, default=0,
                        help="SCHED_FIFO priority (1..99) of the bridge and the controller (chrt -f), as "
                             "`rt_priority` on a robot; 0: normal scheduling")
    parser.add_argument("--recorder-niceness", type=int, default=None,
                        help="the recorder's niceness parameter (default: the node's, 0)")
    parser.add_argument("--recorder-rt-priority", type=int, default=0,
                        help="run the recorder under SCHED_FIFO at this priority (below --rt-priority); 0: normal")
    parser.add_argument("--json", required=True, help="output JSON path")


def run(args: argparse.Namespace) -> int:
    from dynlearn_ros.benchmarks.recorder import RecorderBenchConfig, bench_recorder, format_summary
    from dynlearn_ros.benchmarks.wakeup import LoopBenchError

    if args.seconds <= 0 or args.pairs < 1:
        raise SystemExit("--seconds must be > 0 and --pairs >= 1")
    if not 0 <= args.rt_priority <= 99 or not 0 <= args.recorder_rt_priority <= 99:
        raise SystemExit("--rt-priority and --recorder-rt-priority must be in 0..99")
    cfg = RecorderBenchConfig(seconds=args.seconds, pairs=args.pairs, stepping=args.stepping,
                              rt_priority=args.rt_priority, recorder_niceness=args.recorder_niceness,
                              recorder_rt_priority=args.recorder_rt_priority)
    try:
        result = bench_recorder(cfg, progress=lambda s: print(s, file=sys.stderr, flush=True))
    except LoopBenchError as exc:
        print(f"bench recorder failed: {exc}", file=sys.stderr)
        return 1
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(format_summary(result))
    return 0
