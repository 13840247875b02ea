"""``dynlearn-ros novelty --runs RUN``: calibrate the novelty term of a trained SVDKL/SVGP run's
variance and write ``<run>/novelty.json`` (:mod:`dynlearn_ros.learning.training.novelty`);
``dynlearn-ros export --novelty`` then puts it into the ONNX graph."""

from __future__ import annotations

import argparse

from dynlearn_ros.commands._common import command_line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default="panda_gaz2019", help="data set (default: the run's own)")
    parser.add_argument("--runs", nargs=1, required=True, help="the run directory (checkpoint.pt)")
    parser.add_argument("--scheme", choices=("auto", "forward", "episodes"), default="auto",
                        help="calibration folds inside the training split (auto: episodes if >= 5 episodes)")
    parser.add_argument("--k", type=int, nargs="+", default=[512, 1024, 2048], help="store sizes to try")
    parser.add_argument("--d0", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0, 2.0, 4.0],
                        help="dead zones to try (standardized units)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dynlearn_ros.learning.training.novelty import NoveltyCalibration, calibrate

    if not (Path(args.runs[0]) / "checkpoint.pt").is_file():
        raise SystemExit(f"novelty: no checkpoint.pt in {args.runs[0]} (train the run first)")
    calibrate(NoveltyCalibration(run=args.runs[0], data=args.data, scheme=args.scheme, k=tuple(args.k),
                                 d0=tuple(args.d0), threads=args.threads, command=command_line(args)))
    return 0
