"""``dynlearn-ros eval``: evaluate trained runs (and the analytic model) on the test split of a
data set; writes JSON (``--json``) and a markdown table (``--md``).

Examples::

    dynlearn-ros eval --data pneumatic --runs runs/pneumatic/*-forward-s0 --json r.json --md r.md
    dynlearn-ros eval --data panda_gaz2019 --runs runs/panda_gaz2019/* --model analytic --md r.md
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from dynlearn_ros.commands._common import GP_KINDS, add_common, gp_dispatch

ANALYTIC_ROBOT = {"panda_gaz2019": "panda", "ur10": "ur10"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser)
    parser.set_defaults(model=None)
    parser.add_argument("--runs", nargs="*", default=[], help="run directories written by train")
    parser.add_argument("--subsample", type=int, default=1,
                        help="rate of the analytic / previous-torque rows (each run uses its own)")


def _analytic(data_name: str, test) -> dict:
    from dynlearn_ros.datasets.rbd_baseline import analytic_torque
    from dynlearn_ros.datasets.windows import inverse_rows
    from dynlearn_ros.learning.evaluation.sequence import torque_errors

    robot = ANALYTIC_ROBOT.get(data_name)
    if robot is None:
        raise SystemExit(f"--model analytic: no URDF for data set '{data_name}' (have {sorted(ANALYTIC_ROBOT)})")
    tau_hat = np.asarray(analytic_torque(test, robot))
    rows = inverse_rows(test.episode)
    return torque_errors(tau_hat[rows], test.tau[rows])


def run(args: argparse.Namespace) -> int:
    if args.model in GP_KINDS:
        return gp_dispatch(args, "evaluate")
    from dynlearn_ros.datasets.catalog import load_dataset
    from dynlearn_ros.datasets.filtering import subsample
    from dynlearn_ros.datasets.normalize import Stats
    from dynlearn_ros.datasets.splits import train_val_test
    from dynlearn_ros.learning.evaluation.sequence import forward_multistep, inverse_eval
    from dynlearn_ros.learning.training.sequence import load_checkpoint
    from dynlearn_ros.reporting.markdown import write_outputs
    from dynlearn_ros.reporting.tables import sequence_eval_table

    data = load_dataset(args.data)
    _tr, _va, test = train_val_test(data, seed=args.seed)
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
        results["models"]["analytic (Pinocchio)"] = _analytic(str(args.data), test)
        direction = "inverse"
    if direction == "inverse":
        # the reference every learned inverse model must beat: it is handed tau_{t-1}
        from dynlearn_ros.datasets.windows import inverse_rows
        from dynlearn_ros.learning.evaluation.sequence import torque_errors

        rows = inverse_rows(test.episode)
        results["models"]["previous torque"] = torque_errors(test.tau[rows - 1], test.tau[rows])
    if not results["models"]:
        raise SystemExit("nothing to evaluate: give --runs and/or --model analytic")
    write_outputs(results, sequence_eval_table(results, direction or "inverse", data.joint_names), args.json,
                  args.md)
    return 0

