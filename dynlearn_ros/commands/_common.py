"""Arguments shared by ``train``, ``eval`` and ``export`` (learning core + the GP helper)."""

from __future__ import annotations

import argparse
import importlib

GP_KINDS = ("svdkl", "svgp", "dkl")
MODEL_CHOICES = ("acrkn-fwd", "acrkn-inv", "rkn", "lstm", "gru", "ffnn", "analytic", *GP_KINDS)
FORWARD_DATA = ("pneumatic", "kuka_lwr", "baxter")


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default="pneumatic",
                        help="data set name (pneumatic, panda_gaz2019, ur10, ...) or a generic .npz path")
    parser.add_argument("--model", choices=MODEL_CHOICES, default="acrkn-inv", help="model kind")
    parser.add_argument("--direction", choices=("forward", "inverse"), default=None,
                        help="forward or inverse dynamics (default: from --model, lstm/gru from --data)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (weights, masks, split)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", default=None, help="output directory")
    parser.add_argument("--batch-size", type=int, default=32, help="windows per batch")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--max-train-samples", type=int, default=None,
                        help="use only the first N rows of the training split")
    parser.add_argument("--json", default=None, help="JSON output path")
    parser.add_argument("--md", default=None, help="markdown table output path")


def direction_of(args: argparse.Namespace) -> str:
    if args.direction:
        return args.direction
    if args.model in ("acrkn-fwd", "rkn"):
        return "forward"
    if args.model in ("acrkn-inv", "ffnn", "analytic"):
        return "inverse"
    return "forward" if str(args.data) in FORWARD_DATA else "inverse"


def gp_dispatch(args: argparse.Namespace, func: str) -> int:
    """Hand --model svdkl|svgp|dkl to ``dynlearn_ros.learning.gp.cli.<func>(args)``."""
    try:
        mod = importlib.import_module("dynlearn_ros.learning.gp.cli")
    except ImportError as exc:
        raise SystemExit(f"--model {args.model}: the GP module dynlearn_ros.learning.gp.cli is not "
                         f"available ({exc})") from exc
    return int(getattr(mod, func)(args) or 0)
