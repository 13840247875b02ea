"""``dynlearn-ros data list | rbd-baseline``: the data sets of the data root.

  list          load every known data set and print its size (or which file is missing)
  rbd-baseline  per-joint torque RMSE of the rigid-body model (Pinocchio RNEA on the
                example-robot-data URDF) on inverse-dynamics data sets, as JSON lines
"""

from __future__ import annotations

import argparse
import json
import time

#: data sets with a realistic URDF, and the robot of each (rbd-baseline without arguments)
RBD_DEFAULT = (("panda_gaz2019", "panda"), ("ur10", "ur10"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="WHAT", required=True)
    sub.add_parser("list", help="load every known data set and print its size",
                   description="load every known data set and print its size")
    p = sub.add_parser("rbd-baseline", help="torque RMSE of the rigid-body model on inverse-dynamics data",
                       description="per-joint torque RMSE (N*m) of Pinocchio RNEA on a realistic URDF")
    p.add_argument("pairs", nargs="*", metavar="DATASET ROBOT",
                   help="data set and robot pairs (default: panda_gaz2019 panda ur10 ur10)")


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
    from dynlearn_ros.datasets.catalog import load_dataset
    from dynlearn_ros.datasets.rbd_baseline import torque_rmse

    if len(pairs) % 2:
        raise SystemExit(f"rbd-baseline takes DATASET ROBOT pairs, got an odd count: {pairs}")
    for name, robot in list(zip(pairs[::2], pairs[1::2], strict=True)) or RBD_DEFAULT:
        r = torque_rmse(load_dataset(name), robot)
        print(json.dumps({name: {k: [round(x, 4) for x in v] if k != "joints" else v for k, v in r.items()}}))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.data_command == "list":
        return _list()
    return _rbd_baseline(args.pairs)
