"""``dynlearn-ros collect``: simulate exciting trajectories on the PyBullet plant, write a .npz.

Example (20 episodes x 10 s at 1 kHz, 5 kg payload, friction on every joint)::

    dynlearn-ros collect --robot iiwa --episodes 20 --seconds 10 --payload-kg 5 \\
        --friction-viscous 0.3 --friction-coulomb 0.05 --seed 1 --out iiwa_5kg.npz

The output is :func:`dynlearn_ros.datasets.format.save_npz` (t, q, qd, qdd, tau, episode); its
``meta`` holds every setting, per-episode tracking stats and the command line.
"""

from __future__ import annotations

import argparse
import shlex
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--robot", choices=("iiwa", "panda"), default="iiwa")
    parser.add_argument("--episodes", type=int, default=10, help="number of episodes (default 10)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each episode, s (default 10)")
    parser.add_argument("--dt", type=float, default=1e-3, help="sample and physics period, s (default 1e-3)")
    parser.add_argument("--payload-kg", type=float, nargs="+", default=[0.0],
                        help="point mass at the end-effector link's centre of mass, kg (default 0); several "
                             "values: episode e uses value e mod their count")
    parser.add_argument("--friction-viscous", type=float, nargs="+", default=None, metavar="B",
                        help="viscous friction b, N*m*s/rad: one value or one per joint (default 0)")
    parser.add_argument("--friction-coulomb", type=float, nargs="+", default=None, metavar="FC",
                        help="Coulomb friction f_c, N*m: one value or one per joint (default 0)")
    parser.add_argument("--coulomb-eps", type=float, default=0.1,
                        help="tanh smoothing velocity of the Coulomb term, rad/s (default 0.1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--omega", type=float, default=30.0, help="PD bandwidth, rad/s (default 30)")
    parser.add_argument("--zeta", type=float, default=1.0, help="PD damping ratio (default 1)")
    parser.add_argument("--base-freq", type=float, default=0.1, help="Fourier base frequency, Hz (default 0.1)")
    parser.add_argument("--harmonics", type=int, default=5, help="Fourier harmonics per joint (default 5)")
    parser.add_argument("--max-velocity", type=float, nargs="+", default=[1.5],
                        help="reference |qd| bound, rad/s (several: cycled over the episodes as --payload-kg)")
    parser.add_argument("--max-acceleration", type=float, nargs="+", default=[6.0],
                        help="reference |qdd| bound, rad/s^2 (several: cycled over the episodes as --payload-kg)")
    parser.add_argument("--out", required=True, help="output .npz path")
    parser.add_argument("--quiet", action="store_true", help="no per-episode lines")


def run(args: argparse.Namespace) -> int:
    import time

    from dynlearn_ros.datasets.format import save_npz
    from dynlearn_ros.sim.collect import collect_dataset

    def progress(e: int, st: dict) -> None:
        if not args.quiet:
            print(f"episode {e + 1}/{args.episodes}: tracking rmse {st['tracking_rmse_rad'] * 1e3:.2f} mrad, "
                  f"max {st['tracking_max_rad'] * 1e3:.2f} mrad, clamped steps {st['clamped_steps']}, "
                  f"rows at a joint limit {st['limit_rows']}", flush=True)

    t0 = time.perf_counter()
    try:
        data = collect_dataset(
            robot=args.robot, episodes=args.episodes, seconds=args.seconds, dt=args.dt,
            payload_kg=args.payload_kg, friction_viscous=args.friction_viscous,
            friction_coulomb=args.friction_coulomb, coulomb_velocity_eps=args.coulomb_eps, seed=args.seed,
            omega=args.omega, zeta=args.zeta, base_freq_hz=args.base_freq, harmonics=args.harmonics,
            max_velocity=args.max_velocity, max_acceleration=args.max_acceleration, progress=progress,
        )
    except ValueError as exc:
        print(f"collect: {exc}", file=sys.stderr)
        return 2
    data.meta["command_line"] = shlex.join(getattr(args, "command_line", ["dynlearn-ros", *sys.argv[1:]]))
    path = save_npz(args.out, data)
    wall = time.perf_counter() - t0
    stats = data.meta["episode_stats"]
    limit_rows = sum(st["limit_rows"] for st in stats)
    if limit_rows:
        print(f"warning: {limit_rows} rows touch a joint limit (constraint torque not in tau); lower the "
              "excitation or the payload", file=sys.stderr)
    print(f"wrote {path}: {len(data)} rows x {data.n_joints} joints, {args.episodes} episodes, "
          f"{wall:.1f} s wall ({len(data) / wall:.0f} rows/s), clamped steps "
          f"{sum(st['clamped_steps'] for st in stats)}")
    return 0
