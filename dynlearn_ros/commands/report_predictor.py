"""``dynlearn-ros report predictor``: prediction error of the streamed ac-RKN forward model on
held-out simulated iiwa runs with payload and joint friction, against constant-velocity
extrapolation and the Pinocchio forward dynamics (:mod:`dynlearn_ros.benchmarks.predictor`;
docs/predictor.md)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", default="acrkn_iiwa_fwd",
                        help="forward model directory (relative: under the package's models/)")
    parser.add_argument("--payloads", type=float, nargs="+", default=[3.0, 6.0, 0.0],
                        help="payloads of the held-out sets, kg (the shipped model: trained at 0-3 and 5-8 kg)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[101, 102],
                        help="seeds of the held-out trajectories (training used seed 1)")
    parser.add_argument("--friction-viscous", type=float, default=0.3, help="N*m*s/rad on every joint")
    parser.add_argument("--friction-coulomb", type=float, default=0.05, help="N*m on every joint")
    parser.add_argument("--episodes", type=int, default=2, help="episodes per held-out set")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per episode")
    parser.add_argument("--every", type=int, default=50, help="rows between two scored prediction points")
    parser.add_argument("--warmup", type=int, default=200, help="rows streamed before the first scored point")
    parser.add_argument("--calibrate-seeds", type=int, nargs="+", default=None,
                        help="first fit the per-step std scale on validation runs of these seeds (never "
                             "--seeds) and write it into the model's metadata (acrkn.std_scale)")
    parser.add_argument("--calibrate-payload", type=float, nargs="+", default=[3.0],
                        help="payloads of the calibration runs, kg (one set per payload and calibration seed)")
    parser.add_argument("--calibrate-steps", type=int, default=300,
                        help="steps after the last state the scale covers (the node's max_gap + horizon)")
    parser.add_argument("--json", default=None, help="JSON output path")
    parser.add_argument("--md", default=None, help="markdown table output path")


def run(args: argparse.Namespace) -> int:
    from dynlearn_ros.benchmarks.predictor import HeldOut, evaluate_predictor, predictor_markdown
    from dynlearn_ros.reporting.markdown import write_outputs

    sets = [HeldOut(p, s, args.friction_viscous, args.friction_coulomb, args.episodes, args.seconds)
            for p in args.payloads for s in args.seeds]
    cal = None
    if args.calibrate_seeds:
        from dynlearn_ros.benchmarks.predictor import fit_std_scale, write_std_scale

        if set(args.calibrate_seeds) & set(args.seeds):
            raise SystemExit(f"report predictor: --calibrate-seeds {args.calibrate_seeds} overlap the held-out "
                             f"--seeds {args.seeds}: calibrate on other runs than those scored")
        cal = fit_std_scale(args.model_dir, [HeldOut(p, s, args.friction_viscous, args.friction_coulomb,
                                                     args.episodes, args.seconds)
                                             for p in args.calibrate_payload for s in args.calibrate_seeds],
                            steps=args.calibrate_steps)
        write_std_scale(args.model_dir, cal)
    res = evaluate_predictor(args.model_dir, sets, args.every, args.warmup)
    if cal is not None:
        res["calibration"] = {k: v for k, v in cal.items() if k != "scale"}
    res["command"] = " ".join(getattr(args, "command_line", ["dynlearn-ros", "report", "predictor"]))
    write_outputs(res, predictor_markdown(res), args.json, args.md)
    return 0
