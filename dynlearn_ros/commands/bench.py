"""``dynlearn-ros bench {loop,model,train,svdkl,plant,online,recorder,predictor,soak} --json PATH``: benchmarks that write JSON.

Figures are medians / percentiles of one run, with a baseline measured in the same run
(these machines are shared and noisy): compare ratios, not absolute numbers. The measuring
code lives in ``dynlearn_ros/benchmarks/``; these modules only parse options."""

from __future__ import annotations

import argparse
import importlib

BENCHES = {
    "loop": ("bench_loop", "bridge (realtime, 1 kHz) <-> controller round trip over DDS"),
    "model": ("bench_model", "per-step latency of exported models in onnxruntime vs torch / RNEA (and SVDKL)"),
    "train": ("bench_train", "training seconds per epoch over 100k samples"),
    "svdkl": ("bench_svdkl", "SVDKL mean+variance latency: onnxruntime, numpy, gpytorch, shipped models"),
    "plant": ("bench_plant", "PyBullet plant speed and its match to the analytic model"),
    "online": ("bench_online", "online learning: seconds per cycle, ticks late during model swaps"),
    "recorder": ("bench_recorder", "the control loop with and without the bag recorder (ratios, one run)"),
    "predictor": ("bench_predictor", "the predictor node's per-message cost at 1 kHz input vs the bare ONNX step"),
    "soak": ("bench_soak", "soak: realtime graph for minutes under changing references and bad input (not CI)"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)
    for name, (module, help_text) in BENCHES.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_bench_module=module)
        try:
            importlib.import_module(f"dynlearn_ros.commands.{module}").add_arguments(p)
        except ImportError as exc:
            p.set_defaults(_bench_import_error=exc)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "_bench_import_error", None) is not None:
        raise SystemExit(f"bench {args.bench} is unavailable: {args._bench_import_error}")
    return int(importlib.import_module(f"dynlearn_ros.commands.{args._bench_module}").run(args) or 0)
