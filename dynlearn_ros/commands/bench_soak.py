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
    parser.add_argument("--change-s", type=float, default=3.0,
                        help="seconds between events (default 3; 0.3 sends ten times as many, to find a grower)")
    parser.add_argument("--events", default="trajectory,payload,bad_states,model",
                        help="comma-separated events to send (default all: trajectory,payload,bad_states,model)")
    parser.add_argument("--mem-every-s", type=float, default=10.0, help="RSS sampling period in s (default 10)")
    burst = parser.add_mutually_exclusive_group()
    burst.add_argument("--burst-publisher-only", action="store_true",
                       help="a bad-state burst creates only a publisher on one node kept for the run (the default "
                            "since the ninth session)")
    burst.add_argument("--burst-new-node", action="store_true",
                       help="a new node per bad-state burst, with its rosout and parameter services (the default "
                            "before the ninth session): every process on the domain keeps ~8 kB of the middleware's "
                            "per-participant state for each (docs/safety.md)")
    parser.add_argument("--heaptrack", default="", metavar="NODES",
                        help="comma-separated nodes (controller, bridge) to run under heaptrack (native allocation "
                             "stacks in <workdir>/<node>.heaptrack.zst; needs --workdir)")
    parser.add_argument("--trace", action="store_true",
                        help="the bridge writes its per-step trace (velocities, brakes, held commands) to "
                             "<workdir>/bridge-trace.npz, ~4 MB per minute; needs --workdir")


def run(args: argparse.Namespace) -> int:
    from dynlearn_ros.faults.soak import run_soak

    if not args.minutes > 0:
        raise ValueError(f"--minutes must be > 0, got {args.minutes}")
    if not args.change_s > 0 or not args.mem_every_s > 0:
        raise ValueError(f"--change-s and --mem-every-s must be > 0, got {args.change_s}, {args.mem_every_s}")
    kinds = tuple(k.strip() for k in args.events.split(",") if k.strip())
    heap = tuple(k.strip() for k in args.heaptrack.split(",") if k.strip())
    if set(heap) - {"controller", "bridge"}:
        raise ValueError(f"--heaptrack takes controller and/or bridge, got {args.heaptrack!r}")
    if args.trace and not args.workdir:
        raise ValueError("--trace needs --workdir (the trace is written there)")
    if heap and not args.workdir:
        raise ValueError("--heaptrack needs --workdir (the profiles are written there)")
    with tempfile.TemporaryDirectory(prefix="dynlearn_soak_") as tmp:
        out = run_soak(args.minutes, Path(args.workdir) if args.workdir else Path(tmp), model_plant=args.model_plant,
                       change_s=args.change_s, events_kinds=kinds, mem_every_s=args.mem_every_s,
                       heaptrack=heap, burst_node=args.burst_new_node, trace=args.trace)
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text)
    ok = out["crashes"] == 0 and out["beyond_limits"] == 0 and out["non_finite"] == 0
    return 0 if ok else 1
