"""``dynlearn-ros data list | rbd-baseline``: the data sets of the data root.

  list          load every known data set and print its size (or which file is missing)
  rbd-baseline  per-joint torque RMSE of the rigid-body model (Pinocchio RNEA on a robot table
                entry's URDF or a URDF file) on inverse-dynamics data sets, as JSON lines
"""

from __future__ import annotations

import argparse
import json
import time

def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="WHAT", required=True)
    sub.add_parser("list", help="load every known data set and print its size",
                   description="load every known data set and print its size")
    p = sub.add_parser("rbd-baseline", help="torque RMSE of the rigid-body model on inverse-dynamics data",
                       description="per-joint torque RMSE (N*m) of Pinocchio RNEA on a realistic URDF")
    p.add_argument("pairs", nargs="*", metavar="DATASET ROBOT_OR_URDF",
                   help="data set and robot pairs; the robot is a robot table entry (config/robots.yaml) "
                   "or a URDF file (default: every data set the table names a baseline robot for)")


def _list() -> int:
    from dynlearn_ros.datasets.catalog import list_datasets, load_dataset

    for name, desc in list_datasets().items():
        t0 = time.perf_counter()
        try:
            d = load_dataset(name)
        except FileNotFoundError as exc:
            print(f"{name:20s} MISSING: {exc}")
            continue
        print(f"{name:20s} rows={len(d):7d} episodes={d.episodes().size:5d} joints={d.n_joints} "
              f"tau_cols={d.tau.shape[1]} dt={d.dt:g}s qdd={'yes' if d.qdd is not None else 'no '} "
              f"load={time.perf_counter() - t0:.2f}s  {desc}")
    return 0


def _rbd_baseline(pairs: list[str]) -> int:
    from pathlib import Path

    from dynlearn_ros.core.robots import robot_table
    from dynlearn_ros.datasets.catalog import load_dataset
    from dynlearn_ros.datasets.rbd_baseline import torque_rmse

    if len(pairs) % 2:
        raise SystemExit(f"rbd-baseline takes DATASET ROBOT pairs, got an odd count: {pairs}")
    default = [(d, name) for name, e in robot_table().robots.items() for d in e.datasets]
    for name, robot in list(zip(pairs[::2], pairs[1::2], strict=True)) or default:
        is_file = robot.endswith(".urdf") or Path(robot).is_file()
        r = torque_rmse(load_dataset(name), None if is_file else robot, robot if is_file else None)
        print(json.dumps({name: {k: [round(x, 4) for x in v] if k != "joints" else v for k, v in r.items()}}))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.data_command == "list":
        return _list()
    return _rbd_baseline(args.pairs)
