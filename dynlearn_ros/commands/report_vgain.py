"""``dynlearn-ros report vgain``: the variance-scheduled closed-loop comparison
(docs/results_closed_loop.md): lockstep sim_bridge + computed_torque + scenario_recorder processes
for each configuration of config/scenario_vgain.yaml; writes JSON, a markdown table and a PNG.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help="scenario YAML (default: config/scenario_vgain.yaml)")
    parser.add_argument("--configs", default=None,
                        help="comma-separated configuration keys to run (default: those in the YAML without a skip reason)")
    parser.add_argument("--duration", type=float, default=None, help="sim seconds per configuration "
                        "(default: duration_s of the YAML)")
    parser.add_argument("--workdir", default=None, help="keep node logs, summaries and recordings here "
                        "(default: a new temporary directory)")
    parser.add_argument("--json", default=None, help="JSON output path")
    parser.add_argument("--md", default=None, help="markdown table output path")
    parser.add_argument("--png", default=None, help="figure output path (error, K_P, std vs time)")


def run(args: argparse.Namespace) -> int:
    from dynlearn_ros.scenarios.vgain import run_scenario, write_report
    from dynlearn_ros.scenarios.vgain_config import load_config

    cfg = load_config(args.config)
    if args.configs:
        keys = args.configs.split(",")
    else:
        keys = [k for k, c in cfg.configurations.items() if not c.get("skip")]
        for k, c in cfg.configurations.items():
            if c.get("skip"):
                print(f"skipping configuration {k}: {c['skip']} (select it with --configs)")
    unknown = [k for k in keys if k not in cfg.configurations]
    if unknown:
        raise SystemExit(f"unknown configuration(s) {unknown}; the YAML has {list(cfg.configurations)}")
    report = run_scenario(cfg, keys, args.duration, Path(args.workdir) if args.workdir else None)
    write_report(report, cfg, args.json, args.md, args.png)
    failed = {k: r["model_load_error"] for k, r in report["configurations"].items() if r["model_load_error"]}
    for k, err in failed.items():
        print(f"warning: configuration {k} ran without its learned model: {err}")
    if args.md:
        print(Path(args.md).read_text())
    return 0
