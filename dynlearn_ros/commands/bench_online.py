"""``dynlearn-ros bench online --json PATH``: seconds per online-learning cycle and control ticks
late / missed during model swaps against a no-swap stretch (:mod:`dynlearn_ros.benchmarks.online`).
With ``--trainer-ab``: the realtime bridge/controller pair in interleaved stretches without and
with a trainer process training beside it (:mod:`dynlearn_ros.benchmarks.trainer_ab`)."""

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
                        help="the interpreter's thread switch interval in that loop, for every arm (default: "
                             "the arm's; the node's is runtime/slot.py CONTROL_SWITCH_INTERVAL_S)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="tick loops of --tick-s each; the summary gives medians and spreads over them")
    parser.add_argument("--arms", default="node",
                        help="comma-separated tick-loop arms, each round runs one loop of each in turn: node (as the "
                             "controller node runs: versions loaded and plant-checked in a loader process at nice 19), "
                             "process_nice0 / process_nice19 / process_idle (node, with the loader's loads at the "
                             "controller's priority / at nice 19 / under SCHED_IDLE), node_switch50us (node at a 0.05 ms thread "
                             "switch interval), plant_in_worker (node, with the plant check in "
                             "the slot's worker thread: session 11's node), thread (the whole load and check in the "
                             "slot's worker thread: model_loader thread, before session 11), "
                             "before (thread at Python's 5 ms thread switch interval: before session 9), "
                             "nice (thread, with the slot's worker at nice 19), "
                             "per_version (before, with a session per version: before session 8)")
    parser.add_argument("--compare-per-version", action="store_true",
                        help="add the per_version arm to --arms")
    parser.add_argument("--trainer-ab", action="store_true",
                        help="instead: the realtime bridge/controller pair with and without a trainer process "
                             "training beside it, interleaved stretches (benchmarks/trainer_ab.py; issue 10 section 1)")
    parser.add_argument("--ab-seconds", type=float, default=10.0, help="--trainer-ab: sim seconds per stretch")
    parser.add_argument("--ab-repeat", type=int, default=3, help="--trainer-ab: (without, with) pairs of stretches")
    parser.add_argument("--rt-priority", type=int, default=0, metavar="P",
                        help="--trainer-ab: bridge and controller under SCHED_FIFO P (as rt_priority:=P in the "
                             "launch; the trainer stays normal); 0 = normal scheduling")


def run(args: argparse.Namespace) -> int:
    if args.rounds < 1:
        raise SystemExit("--rounds must be >= 1")
    if args.trainer_ab:
        return _run_trainer_ab(args)
    from dynlearn_ros.benchmarks.online import TICK_ARMS, run_bench

    arms = tuple(a for a in args.arms.split(",") if a) + (("per_version",) if args.compare_per_version else ())
    bad = [a for a in arms if a not in TICK_ARMS]
    if bad or not arms or len(set(arms)) != len(arms):
        raise SystemExit(f"--arms: {args.arms!r} (known: {', '.join(TICK_ARMS)}; each at most once)")

    result = {"command_line": command_line(args),
              **run_bench(args.payload_kg, args.collect_s, args.chunk, args.tick_s, args.swap_every_s,
                          switch_interval_s=args.switch_interval_s, rounds=args.rounds, arms=arms)}
    write_outputs(result, None, args.json, None)
    print(json.dumps({k: v for k, v in result.items() if k not in ("cycles", "ticks_rounds")}
                     | {"cycle_seconds": result["cycles"]["seconds"]}, indent=1))
    return 0


def _run_trainer_ab(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from dynlearn_ros.benchmarks.loop import LoopBenchError
    from dynlearn_ros.benchmarks.trainer_ab import format_summary, run_trainer_ab

    if args.ab_seconds <= 0 or args.ab_repeat < 1 or not 0 <= args.rt_priority <= 99:
        raise SystemExit("--ab-seconds must be > 0, --ab-repeat >= 1, --rt-priority in 0..99")
    try:
        result = run_trainer_ab(args.ab_seconds, args.ab_repeat, rt_priority=args.rt_priority,
                                progress=lambda s: print(s, file=sys.stderr, flush=True))
    except LoopBenchError as exc:
        print(f"bench online --trainer-ab failed: {exc}", file=sys.stderr)
        return 1
    result["command_line"] = command_line(args)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(format_summary(result))
    print(f"wrote {out}")
    return 0
