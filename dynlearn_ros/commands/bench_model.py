"""``dynlearn-ros bench model --json PATH``: per-step latency of the exported models
(:mod:`dynlearn_ros.benchmarks.model`)."""

from __future__ import annotations

import argparse

from dynlearn_ros.reporting.markdown import write_outputs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", required=True, help="output JSON path")
    parser.add_argument("--inverse-dir", default=None,
                        help="inverse model directory (default: models/acrkn_panda_inv, else a fresh export)")
    parser.add_argument("--forward-dir", default=None,
                        help="forward model directory (default: models/acrkn_pneumatic_fwd, else a fresh export)")
    parser.add_argument("--steps", type=int, default=5000, help="timed calls per entry")
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--n-calls", type=int, default=5000, help="calls per SVDKL entry")


def run(args: argparse.Namespace) -> int:
    from dynlearn_ros.benchmarks.model import bench_model

    out = bench_model(args.steps, args.warmup, args.inverse_dir, args.forward_dir, args.n_calls)
    write_outputs(out, None, args.json, None)
    for k, v in out.items():
        if isinstance(v, dict) and "p50_us" in v:
            print(f"{k:32s} p50 {v['p50_us']:8.1f} us  p99 {v['p99_us']:8.1f} us")
    print(f"-> {args.json}")
    return 0
