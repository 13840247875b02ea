"""``dynlearn-ros eval``: evaluate trained runs (and the analytic model) on the test split of a
data set; writes JSON (``--json``) and a markdown table (``--md``).

Examples::

    dynlearn-ros eval --data pneumatic --runs runs/pneumatic/*-forward-s0 --json r.json --md r.md
    dynlearn-ros eval --data panda_gaz2019 --runs runs/panda_gaz2019/* --model analytic --md r.md
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from dynlearn_ros.commands._common import GP_KINDS, add_common, gp_dispatch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser)
    parser.set_defaults(model=None)
    parser.add_argument("--runs", nargs="*", default=[], help="run directories written by train")
    parser.add_argument("--subsample", type=int, default=1,
                        help="rate of the analytic / previous-torque rows (each run uses its own)")
    parser.add_argument("--urdf", default=None, help="--model analytic: URDF of your robot (default: "
                        "the robot table's baseline robot for the data set, config/robots.yaml)")


def _analytic(data_name: str, test, urdf: str | None = None) -> dict:
    from dynlearn_ros.datasets.analytic import analytic_torque, baseline_urdf
    from dynlearn_ros.learning.data import episode_slices
    from dynlearn_ros.learning.evaluate import torque_errors

    try:
        path = baseline_urdf(dataset=Path(data_name).stem, urdf=urdf)
    except (KeyError, FileNotFoundError) as exc:
        raise SystemExit(f"--model analytic: {exc.args[0]}") from exc
    tau_hat = np.asarray(analytic_torque(test, urdf=path))
    rows = np.concatenate([np.arange(sl.start + 1, sl.stop - 1) for sl in episode_slices(test.episode)])
    return torque_errors(tau_hat[rows], test.tau[rows])


def run(args: argparse.Namespace) -> int:
    if args.model in GP_KINDS:
        return gp_dispatch(args, "evaluate")
    from dynlearn_ros.learning.data import Stats, load_data, split, subsample
    from dynlearn_ros.learning.evaluate import forward_multistep, inverse_eval
    from dynlearn_ros.learning.train import load_checkpoint

    data = load_data(args.data)
    _tr, _va, test = split(data, seed=args.seed)
    results: dict = {"data": str(args.data), "split_seed": args.seed, "test_rows": len(test),
                     "date": datetime.now(UTC).strftime("%Y-%m-%d"), "models": {}}
    direction = None
    for run_dir in args.runs:
        model, ckpt = load_checkpoint(Path(run_dir) / "checkpoint.pt")
        stats = Stats.from_dict(ckpt["stats"])
        tc = ckpt["train_config"]
        direction = tc["direction"]
        k = int(ckpt.get("subsample", 1))
        if direction == "forward":
            res = forward_multistep(model, stats, subsample(test, k), obs_qd=tc["obs_qd"])
        else:
            res = inverse_eval(model, stats, subsample(test, k))
        res.update({"run": str(run_dir), "subsample": k, "seed": tc["seed"], "epochs": tc["epochs"], "best_epoch": ckpt["best_epoch"],
                    "train_rows": ckpt["train_rows"], "train_wall_s": round(ckpt["wall_s"], 1)})
        results["models"][f"{tc['kind']} s{tc['seed']}" + (f" (1/{k} rate)" if k > 1 else "")] = res
    k = int(getattr(args, "subsample", 1) or 1)
    test = subsample(test, k)
    if args.model == "analytic":
        results["models"]["analytic (Pinocchio)"] = _analytic(str(args.data), test, getattr(args, "urdf", None))
        direction = "inverse"
    if direction == "inverse":
        # the reference every learned inverse model must beat: it is handed tau_{t-1}
        from dynlearn_ros.learning.data import episode_slices
        from dynlearn_ros.learning.evaluate import torque_errors

        rows = np.concatenate([np.arange(sl.start + 1, sl.stop - 1) for sl in episode_slices(test.episode)])
        results["models"]["previous torque"] = torque_errors(test.tau[rows - 1], test.tau[rows])
    if not results["models"]:
        raise SystemExit("nothing to evaluate: give --runs and/or --model analytic")
    text = json.dumps(results, indent=1)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text)
    md = markdown(results, direction or "inverse", data.joint_names)
    if args.md:
        Path(args.md).parent.mkdir(parents=True, exist_ok=True)
        Path(args.md).write_text(md)
    print(md)
    return 0


def markdown(results: dict, direction: str, joint_names) -> str:
    lines = []
    if direction == "forward":
        hs = None
        for res in results["models"].values():
            hs = list(res["rmse"])
            break
        lines.append("| model | " + " | ".join(f"h={h}" for h in hs) + " | NLL (1-step) | epochs (best) |")
        lines.append("|---" * (len(hs) + 3) + "|")
        prev = None
        for name, res in results["models"].items():
            lines.append(f"| {name} | " + " | ".join(f"{res['rmse'][h]:.4f}" for h in hs)
                         + f" | {res['nll_1step']:.3f} | {res['epochs']} ({res['best_epoch']}) |")
            prev = res["prev_state_rmse"]
        if prev is not None:
            lines.append("| previous state | " + " | ".join(f"{prev[h]:.4f}" for h in hs) + " | - | - |")
    else:
        lines.append("| model | " + " | ".join(joint_names) + " | all | NLL | within 2 std |")
        lines.append("|---" * (len(joint_names) + 4) + "|")
        for name, res in results["models"].items():
            nll = f"{res['nll']:.3f}" if "nll" in res else "-"
            w2 = f"{res['within_2std']:.3f}" if "within_2std" in res else "-"
            lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in res["rmse_per_joint"])
                         + f" | {res['rmse']:.3f} | {nll} | {w2} |")
    return "\n".join(lines) + "\n"
