"""``dynlearn-ros bag info | to-npz | train``: rosbag2 files (MCAP or sqlite3) as training data.

  info    storage, whether the recording finished, span and messages per topic
  to-npz  joint states aligned with the commands applied between them (docs/bags.md) in the
          generic format (.npz, docs/datasets.md)
  train   ``train`` on a bag: the same options as ``dynlearn-ros train`` (``train --data run.mcap``
          does the same)

A bag is a rosbag2 folder (with metadata.yaml, or the folder a killed recorder left), its
metadata.yaml, or one .mcap / .db3 file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path


def add_alignment_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--states-topic", default=None,
                        help="sensor_msgs/JointState topic (default: the one ending in joint_states)")
    parser.add_argument("--commands-topic", default=None, help="std_msgs/Float64MultiArray command topic "
                        "(default: the one ending in effort_controller/commands)")
    parser.add_argument("--torque-source", choices=("command", "effort"), default="command",
                        help="the torque applied over each step: the commands, aligned by time (default), or "
                             "the effort the next joint state reports")
    parser.add_argument("--qdd-cutoff-hz", type=float, default=0.0,
                        help="causal Butterworth low-pass (Hz) of the accelerations and torques; 0: none "
                             "(simulated data is noise-free)")
    parser.add_argument("--keep-held", action="store_true",
                        help="keep steps without a new command in the bag, labelled with the previous one "
                             "(right if the driver holds commands; wrong if the recorder lost one)")
    parser.add_argument("--require-excitation", action="store_true",
                        help="refuse (exit 2) a bag that leaves a joint unexcited (docs/bags.md 'Excitation'); "
                             "default: a warning naming the joints")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bag_command", metavar="WHAT", required=True)
    p = sub.add_parser("info", help="what a bag holds", description="storage, completeness, messages per topic")
    p.add_argument("bag", help="rosbag2 folder, metadata.yaml, .mcap or .db3")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = sub.add_parser("to-npz", help="a bag in the generic data format",
                       description="joint states aligned with the applied commands, as a .npz data set")
    p.add_argument("bag", help="rosbag2 folder, metadata.yaml, .mcap or .db3")
    p.add_argument("out", help="the .npz to write")
    add_alignment_arguments(p)
    p = sub.add_parser("train", help="train a model on a bag (the options of `dynlearn-ros train`)",
                       description="train on a bag: converted with the options below, then `train`")
    p.add_argument("bag", help="rosbag2 folder, metadata.yaml, .mcap or .db3")
    from dynlearn_ros.commands import train

    train.add_arguments(p)
    add_alignment_arguments(p.add_argument_group("bag alignment"))


def bag_data(args: argparse.Namespace, bag: str):
    """The bag's TrajectoryData with the alignment options of ``args`` (their defaults where
    the parser has none, as for ``train --data``)."""
    from dynlearn_ros.bags.convert import bag_to_data
    from dynlearn_ros.errors import DataFileError

    data = bag_to_data(bag, getattr(args, "states_topic", None), getattr(args, "commands_topic", None),
                       getattr(args, "torque_source", "command"), getattr(args, "qdd_cutoff_hz", 0.0),
                       getattr(args, "keep_held", False))
    unexcited = data.meta["excitation"]["unexcited"]
    if getattr(args, "require_excitation", False) and unexcited:
        raise DataFileError(bag, f"--require-excitation: the data does not excite joints {unexcited} "
                                 f"(docs/bags.md 'Excitation'; `bag info` prints the figures)")
    return data


def resolve_bag_data(args: argparse.Namespace) -> None:
    """The ``--data`` hook of ``train``: a bag is converted to ``<--out>/bag_data.npz`` (without
    --out: the cache directory, named by the bag's path and size) and ``args.data`` points there.
    Anything else is left as it is."""
    from dynlearn_ros.bags.convert import is_bag_path

    if not is_bag_path(str(args.data)):
        return
    from dynlearn_ros.datasets.format import save_npz
    from dynlearn_ros.paths import cache_dir

    bag = Path(str(args.data)).expanduser()
    data = bag_data(args, str(bag))
    if args.out:
        out = Path(args.out) / "bag_data.npz"
    else:
        size = sum(f.stat().st_size for f in ([bag] if bag.is_file() else bag.iterdir()))
        key = hashlib.sha1(f"{bag.resolve()}:{size}".encode()).hexdigest()[:12]
        out = cache_dir() / "bags" / f"{bag.stem}-{key}.npz"
    save_npz(out, data)
    _print_conversion(bag, out, data)
    args.data = str(out)


def _print_conversion(bag: Path, out: Path, data) -> None:
    al = data.meta["alignment"]
    state = "complete" if data.meta["bag"]["complete"] else f"PARTIAL ({data.meta['bag']['problem']})"
    print(f"bag {bag} ({state}): {len(data)} rows, {al['counts'].get('episodes')} episode(s), dt {data.dt:g} s, "
          f"{data.n_joints} joints, torque from {al['torque_source']}; counts {al['counts']} -> {out}")
    if "excitation" in data.meta:
        from dynlearn_ros.bags.excitation import summary_line

        print(summary_line(data.meta["excitation"]))


def _print_excitation(info: dict) -> None:
    from dynlearn_ros.bags.excitation import summary_line

    exc = info.get("excitation")
    if exc is None:
        print(f"  excitation: not computed ({info.get('excitation_problem')})")
        return
    print("  joint                       q std (rad)  needs   qd std (rad/s)  needs   excited")
    for jt in exc["joints"]:
        print(f"  {jt['name']:<26} {jt['q_std']:>11.4f} {jt['q_threshold']:>7.4f} {jt['qd_std']:>15.4f} "
              f"{jt['qd_threshold']:>7.4f}   {'yes' if jt['excited'] else 'NO'}")
    print(summary_line(exc))


def run(args: argparse.Namespace) -> int:
    if args.bag_command == "info":
        from dynlearn_ros.bags.convert import bag_info

        info = bag_info(args.bag)
        if args.json:
            print(json.dumps(info, indent=2))
            return 0
        state = "complete" if info["complete"] else "PARTIAL"
        print(f"{info['path']}: {info['storage']}, {state}, {info['duration_s']:.3f} s, {info['messages']} messages")
        if info["problem"]:
            print(f"  problem: {info['problem']}")
        for name, t in info["topics"].items():
            print(f"  {name:<40} {t['type']:<40} {t['count']:>9}")
        _print_excitation(info)
        return 0
    if args.bag_command == "to-npz":
        from dynlearn_ros.datasets.format import save_npz

        data = bag_data(args, args.bag)
        out = save_npz(args.out, data)
        _print_conversion(Path(args.bag), out, data)
        return 0
    from dynlearn_ros.commands import train

    args.data = args.bag
    return train.run(args)
