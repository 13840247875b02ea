"""``dynlearn-ros bench loop --seconds 30 --json PATH``: sim_bridge (realtime, 1 kHz) <->
computed_torque round trip over DDS, each node its own process on a claimed ROS_DOMAIN_ID.

Writes JSON with round_trip_us {p50, p99, max, n} (joint_states published -> command received
by the bridge), deadline_miss_ratio, controller_tick_us {p50, p99, n}, cpu_percent per process
(100 = one core), machine facts (nproc, load average before/after, python, git commit) and two
baselines measured in the same run (lockstep pair, pipe echo) with ratios; prints a short
summary. Goals (issue 2, section 6): round-trip p99 <= 1000 us, deadline misses <= 0.1 %.
Exit code 1 with the nodes' log tails when a node fails. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dynlearn_ros.core.robots import ROBOTS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=30.0,
                        help="sim seconds per phase (realtime run and lockstep baseline; 1000 ticks per s)")
    parser.add_argument("--robot", default="iiwa", choices=list(ROBOTS))
    parser.add_argument("--json", required=True, help="output JSON path")
    parser.add_argument("--executor", default="events", choices=["events", "single"],
                        help="controller executor (DYNLEARN_EXECUTOR); the bridge always uses events")
    parser.add_argument("--repeat", type=int, default=1, help="runs; medians are reported")
    parser.add_argument("--no-baseline", action="append", default=[], choices=["rclpy_echo", "lockstep", "pipe_echo"],
                        help="skip a baseline (repeatable)")
    parser.add_argument("--rt-priority", type=int, default=0, metavar="P",
                        help="run the nodes and the pipe echo under SCHED_FIFO priority P (chrt -f; needs "
                             "CAP_SYS_NICE); 0 = normal scheduling")
    parser.add_argument("--controller-param", action="append", default=[], metavar="NAME:=VALUE",
                        help="extra computed_torque parameter (repeatable), e.g. model_kind:=svdkl "
                             "model_dir:=svdkl_iiwa_sim")


def run(args: argparse.Namespace) -> int:
    from dynlearn_ros.benchmarks.loop import LoopBenchConfig, LoopBenchError, bench_loop, format_summary

    params: dict[str, str] = {}
    for item in args.controller_param:
        name, sep, value = item.partition(":=")
        if not sep or not name:
            raise SystemExit(f"--controller-param {item!r}: expected NAME:=VALUE")
        params[name] = value
    if args.seconds <= 0 or args.repeat < 1 or not 0 <= args.rt_priority <= 99:
        raise SystemExit("--seconds must be > 0, --repeat >= 1, --rt-priority in 0..99")
    baselines = tuple(b for b in ("rclpy_echo", "lockstep", "pipe_echo") if b not in args.no_baseline)
    cfg = LoopBenchConfig(seconds=args.seconds, robot=args.robot, executor=args.executor, repeat=args.repeat,
                          controller_params=params, baselines=baselines, rt_priority=args.rt_priority)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        result = bench_loop(cfg, progress=lambda s: print(s, file=sys.stderr, flush=True))
    except LoopBenchError as exc:
        print(f"bench loop failed: {exc}", file=sys.stderr)
        return 1
    cmd = ["dynlearn-ros", "bench", "loop", "--seconds", f"{args.seconds:g}", "--robot", args.robot,
           "--executor", args.executor, "--repeat", str(args.repeat), "--json", str(out)]
    if args.rt_priority:
        cmd += ["--rt-priority", str(args.rt_priority)]
    cmd += [f"--no-baseline={b}" for b in args.no_baseline]
    cmd += [f"--controller-param={c}" for c in args.controller_param]
    result["command"] = " ".join(cmd)
    out.write_text(json.dumps(result, indent=2))
    print(format_summary(result))
    print(f"wrote {out}")
    return 0
