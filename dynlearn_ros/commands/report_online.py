"""``dynlearn-ros report online``: the payload-schedule scenario with the online learner
(:mod:`dynlearn_ros.scenarios.online_inproc`; docs/results_closed_loop.md, "Learning while it
controls")."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from dynlearn_ros.scenarios.online_inproc import CONFIGS, DEFAULT_CONFIGS

    parser.add_argument("--config", default=None, help="scenario YAML (default: config/scenario_vgain.yaml)")
    parser.add_argument("--phases", default="5:21,12:21,0:21,15:21,8:21",
                        help="payload schedule kg:seconds,... (21 s: T_a = 10.7 s, then one 10 s loop)")
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help=f"comma-separated, from {list(CONFIGS)}")
    parser.add_argument("--cycle-s", type=float, default=0.5, help="sim seconds between learner cycles")
    parser.add_argument("--seed", type=int, default=0, help="draw of the learner's random features")
    parser.add_argument("--learner", default="", help="learner options (OnlineConfig), e.g. 'features=0,linear=0'; "
                        "a per-joint tuple with ';' between values, e.g. 'k_max=900;900;500;500;100;100;50'")
    parser.add_argument("--payload-margin-kg", type=float, default=15.0,
                        help="controller gain floor: the payload change (kg) every joint must hold within "
                             "half the following-error limit (core/gain_floor.py); 0 = off")
    parser.add_argument("--json", default=None, help="write the phase table and learner metrics here")
    parser.add_argument("--png", default=None, help="write the plot here")
    parser.add_argument("--series", default=None, help="write the logged series (100 Hz) of every run here (.npz)")


def run(args: argparse.Namespace) -> int:
    from dynlearn_ros.scenarios.online_inproc import main

    argv = ["--phases", args.phases, "--configs", args.configs, "--cycle-s", str(args.cycle_s),
            "--seed", str(args.seed), "--learner", args.learner,
            "--payload-margin-kg", str(args.payload_margin_kg)]
    for flag, value in (("--config", args.config), ("--json", args.json), ("--png", args.png),
                        ("--series", args.series)):
        if value:
            argv += [flag, value]
    return main(argv)
