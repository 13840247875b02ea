"""``dynlearn-ros bench soak --minutes M --json PATH``: the soak run of docs/safety.md (realtime
bridge and controller for M minutes: new references, payload changes, bursts of bad states from a
second publisher, model announcements; crashes, commands beyond the limits, memory). Not in CI."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, default=10.0, help="how long (default 10)")
    parser.add_argument("--json", default=None, metavar="PATH", help="write the figures here")
    parser.add_argument("--workdir", default=None, help="keep the nodes' logs here (default: a temporary directory)")
    parser.add_argument("--model-plant", action="store_true",
                        help="simulate the plant the shipped SVDKL model was trained for (5 kg, friction; payload "
                             "changes 3.5-6.5 kg) instead of the bare arm with 0-3 kg")


def run(args: argparse.Namespace) -> int:
    from dynlearn_ros.faults.soak import run_soak

    if not args.minutes > 0:
        raise ValueError(f"--minutes must be > 0, got {args.minutes}")
    with tempfile.TemporaryDirectory(prefix="dynlearn_soak_") as tmp:
        out = run_soak(args.minutes, Path(args.workdir) if args.workdir else Path(tmp), model_plant=args.model_plant)
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text)
    ok = out["crashes"] == 0 and out["beyond_limits"] == 0 and out["non_finite"] == 0
    return 0 if ok else 1
