"""``dynlearn-ros report vgain-inproc``: the closed-loop scenario's plant and control law in one
process (no ROS), a quick screen of models (``dynlearn_ros.scenarios.vgain_inproc``); per-joint
RMSE within 0.01 mrad of ``report vgain`` (docs/results_closed_loop.md)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help="scenario YAML (default: config/scenario_vgain.yaml)")
    parser.add_argument("--configs", default=None, help="comma-separated keys (default: all not marked skip)")
    parser.add_argument("--duration", type=float, default=None, help="sim seconds per configuration")
    parser.add_argument("--model-dir", default=None, help="override the learned configurations' model_dir")
    parser.add_argument("--json", default=None, help="write the summaries here")


def run(args: argparse.Namespace) -> int:
    from dynlearn_ros.scenarios.vgain_inproc import screen

    rows = screen(args.config, args.configs.split(",") if args.configs else None, args.duration, args.model_dir)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0
