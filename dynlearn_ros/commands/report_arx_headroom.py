"""``dynlearn-ros report arx-headroom``: how much of the ARX(2, 2) h-step error any model could
still remove (:mod:`dynlearn_ros.learning.evaluation.arx_headroom`), on the forward tables'
windows (context 30, stride 10) of one data set's split.

    dynlearn-ros report arx-headroom --data pneumatic --seed 0 --horizon 10 \\
        --extra-data pneumatic_pressure --extra-action-sum --json h.json --md h.md

``--extra-data NAME``: a data set with the same rows (same q) whose ``tau`` at the last context
row is appended to the features of a second set of fits (the pneumatic arm's measured muscle
pressures, which its ``action`` increments only drive); ``--extra-action-sum``: also the running
sum of the actions since the episode's start (what the increments add up to; a window does not
show it).
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from dynlearn_ros.commands._common import command_line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default="pneumatic", help="data set name or .npz path (forward: q, tau = action)")
    parser.add_argument("--seed", type=int, default=0, help="split seed (as train / eval)")
    parser.add_argument("--context", type=int, default=30, help="observed rows per window (eval: 30)")
    parser.add_argument("--horizon", type=int, default=10, help="steps after the context (eval's largest: 10)")
    parser.add_argument("--stride", type=int, default=10, help="rows between window starts (eval: 10)")
    parser.add_argument("--extra-data", default=None, help="data set with the same rows; its tau joins the '+extra' fits")
    parser.add_argument("--extra-action-sum", action="store_true",
                        help="'+extra' fits also read the running sum of the actions since the episode start")
    parser.add_argument("--no-trees", action="store_true", help="linear fits only (no scikit-learn)")
    parser.add_argument("--json", default=None, help="JSON output path")
    parser.add_argument("--md", default=None, help="markdown table output path")


def _action_sum(data) -> np.ndarray:
    from dynlearn_ros.datasets.filtering import episode_bounds

    out = np.empty_like(data.tau)
    for a, b in episode_bounds(data.episode):
        out[a:b] = np.cumsum(data.tau[a:b], axis=0)
    return out


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")      # the trees' OpenMP pool: one thread, as the rest
    from dynlearn_ros.datasets.catalog import load_dataset
    from dynlearn_ros.datasets.splits import train_val_test
    from dynlearn_ros.learning.evaluation.arx_headroom import headroom
    from dynlearn_ros.reporting.markdown import md_table, write_outputs

    data = load_dataset(args.data)
    parts = dict(zip(("train", "val", "test"), train_val_test(data, seed=args.seed), strict=True))
    extra = None
    if args.extra_data or args.extra_action_sum:
        extra = {k: np.zeros((len(v), 0)) for k, v in parts.items()}
        if args.extra_data:
            other = load_dataset(args.extra_data)
            if other.q.shape != data.q.shape or not np.array_equal(other.q, data.q):
                raise ValueError(f"--extra-data {args.extra_data}: its rows are not those of {args.data}")
            for k, v in zip(("train", "val", "test"), train_val_test(other, seed=args.seed), strict=True):
                extra[k] = np.concatenate([extra[k], v.tau], axis=1)
        if args.extra_action_sum:
            for k, v in parts.items():
                extra[k] = np.concatenate([extra[k], _action_sum(v)], axis=1)
    res = headroom((parts["train"].q, parts["train"].tau, parts["train"].episode),
                   {k: (parts[k].q, parts[k].tau, parts[k].episode) for k in ("val", "test")},
                   context=args.context, horizon=args.horizon, stride=args.stride, extra=extra,
                   seed=args.seed, trees=not args.no_trees)
    res["command"] = command_line(args)
    rows = list(res["rmse"]["test"])
    prev = {k: res["rmse"][k]["previous state"] for k in res["rmse"]}
    table = md_table([f"h = {args.horizon}, context {args.context}"]
                     + [f"{k} RMSE (ratio to previous state)" for k in res["rmse"]] + ["test R^2 of the ARX error"],
                     [[r] + [f"{res['rmse'][k][r]:.4f} ({res['rmse'][k][r] / prev[k]:.2f})" for k in res["rmse"]]
                      + [f"{res['r2']['test'][r]:.3f}" if r in res["r2"]["test"] else "-"] for r in rows])
    ac = np.asarray(res["autocorr"])
    table += "\n\nARX one-step residual autocorrelation (training split), per dimension:\n\n" + md_table(
        ["lag"] + [f"dim {j}" for j in range(ac.shape[1])],
        [[k + 1] + [f"{v:+.3f}" for v in ac[k]] for k in range(ac.shape[0])])
    table += f"\n\nwindows: {res['windows']}; features: {res['features']}\n"
    write_outputs(res, table, args.json, args.md)
    return 0
