"""``dynlearn-ros data list | rbd-baseline``: the data sets of the data root.

  list          load every known data set and print its size (or which file is missing)
  vgain         simulate the closed-loop scenario's plant (config/scenario_vgain.yaml: payload,
                friction) tracking Fourier and pick-and-place episodes: the training set of the
                shipped iiwa models (docs/results_closed_loop.md)
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
    _add_vgain(sub)
    p.add_argument("pairs", nargs="*", metavar="DATASET ROBOT_OR_URDF",
                   help="data set and robot pairs; the robot is a robot table entry (config/robots.yaml) "
                   "or a URDF file (default: every data set the table names a baseline robot for)")


def _add_vgain(sub) -> None:
    p = sub.add_parser("vgain", help="simulate the closed-loop scenario's plant: a training data set (.npz)",
                       description="simulate the closed-loop scenario's plant (payload, friction) tracking "
                       "Fourier and pick-and-place episodes; writes a .npz data set")
    p.add_argument("--config", default=None, help="scenario YAML (default: config/scenario_vgain.yaml)")
    p.add_argument("--fourier-episodes", type=int, default=8)
    p.add_argument("--pick-place-episodes", type=int, default=12)
    p.add_argument("--seconds", type=float, default=20.0, help="length of each episode, s")
    p.add_argument("--keep-every", type=int, default=10, help="keep every k-th 1 kHz row")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--omega", type=float, default=30.0, help="collector PD bandwidth, rad/s")
    p.add_argument("--noise-accel", type=float, default=0.0,
                   help="white exploration torque, std = this x joint inertia at home (rad/s^2); "
                        "0 = none (needed > 0 for ac-RKN inverse training data)")
    p.add_argument("--out", required=True, help="output .npz path")


def _vgain(args: argparse.Namespace) -> int:
    import shlex

    from dynlearn_ros.datasets.format import save_npz
    from dynlearn_ros.scenarios.vgain_config import load_config
    from dynlearn_ros.scenarios.vgain_data import build_dataset

    data = build_dataset(load_config(args.config), args.fourier_episodes, args.pick_place_episodes, args.seconds,
                         args.keep_every, args.seed, args.omega, noise_accel=args.noise_accel,
                         command=shlex.join(getattr(args, "command_line", ["dynlearn-ros", "data", "vgain"])))
    path = save_npz(args.out, data)
    print(json.dumps({"out": str(path), "rows": len(data), "wall_s": data.meta["wall_time_s"]}))
    return 0


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
    if args.data_command == "vgain":
        return _vgain(args)
    return _rbd_baseline(args.pairs)
