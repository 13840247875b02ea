"""``dynlearn-ros bench predictor --json PATH``: the predictor node's per-message cost at 1 kHz
input in a real ROS graph, with the bare ONNX step as the same-run baseline
(:mod:`dynlearn_ros.benchmarks.predictor`)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", required=True, help="output JSON path")
    parser.add_argument("--model-dir", default="acrkn_iiwa_fwd", help="forward model directory")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of 1 kHz joint states sent")
    parser.add_argument("--publish-rate", type=float, default=10.0, help="the node's publish_rate_hz")
    parser.add_argument("--horizon", type=int, default=100, help="the node's horizon (points of 1 ms)")
    parser.add_argument("--workdir", default=None, help="keep the node's log and summary here")
    parser.add_argument("--inline-rollouts", action="store_true",
                        help="the node's rollout_thread:=false (rollouts on the executor's thread, the "
                             "first design): the baseline for the rollout thread")
    parser.add_argument("--state-depth", type=int, default=None,
                        help="the node's joint_states subscription depth (QoS override; default: the node's)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dynlearn_ros.benchmarks.predictor import bench_predictor
    from dynlearn_ros.reporting.markdown import write_outputs

    out = bench_predictor(args.model_dir, args.seconds, args.publish_rate, args.horizon,
                          Path(args.workdir) if args.workdir else None, rollout_thread=not args.inline_rollouts, state_depth=args.state_depth)
    write_outputs(out, None, args.json, None)
    node = out["node"]
    for key in ("state_us", "rollout_us"):
        v = node.get(key) or {}
        print(f"node {key:11s} p50 {v.get('p50') or float('nan'):8.1f} us  p99 {v.get('p99') or float('nan'):8.1f} us")
    b = out["baseline_onnx_step_us"]["before"]
    print(f"bare ONNX step   p50 {b['p50']:8.1f} us  p99 {b['p99']:8.1f} us")
    print(f"ratios: state p50 / step p50 {out['ratio_state_p50_to_onnx_p50']:.2f}, state p99 / step p99 "
          f"{out['ratio_state_p99_to_onnx_p99']:.2f}; node CPU {100 * (out['node_cpu_share'] or 0):.0f} % of a core")
    print(f"states: {out['states_observed']} observed of {out['states_sent']} sent; "
          f"{node.get('published')} predictions published")
    print(f"-> {args.json}")
    return 0
