"""Evaluation of sequence-model runs (and of the analytic model) on the test split of a data set
(``dynlearn-ros eval``): forward runs by multi-step RMSE per horizon, inverse runs by torque RMSE
(N*m) with NLL and calibration. Baselines computed here on the same rows: inverse - the previous
torque tau_{t-1} (the reference every model handed tau_{t-1} must beat), the training mean and
the least-squares linear model in [1, q, sin q, cos q, qd, sign qd, qdd]; forward - the
previous state (in ``forward_multistep``) and an ARX(2, 2) model fitted by least squares
(``linear_baselines``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np


def analytic_errors(data_name: str, test, urdf: str | Path | None = None) -> dict:
    """Torque errors of Pinocchio RNEA on the rows 1 .. T-2 of each test episode, with ``urdf`` or
    the robot table's baseline robot of the data set; ValueError when neither gives a URDF."""
    from dynlearn_ros.datasets.rbd_baseline import analytic_torque, baseline_urdf
    from dynlearn_ros.datasets.windows import inverse_rows
    from dynlearn_ros.learning.evaluation.sequence import torque_errors

    try:
        path = baseline_urdf(dataset=Path(data_name).stem, urdf=urdf)
    except (KeyError, FileNotFoundError) as exc:
        raise ValueError(f"--model analytic: {exc.args[0]}") from exc
    tau_hat = np.asarray(analytic_torque(test, urdf=path))
    rows = inverse_rows(test.episode)
    return torque_errors(tau_hat[rows], test.tau[rows])


def evaluate_runs(data_name: str, runs: Sequence[str | Path], seed: int = 0, subsample: int = 1,
                  analytic: bool = False, urdf: str | Path | None = None, split=None, threads: int = 1,
                  residual_clip: bool = False) -> dict:
    """Metrics of each run directory on the test split of ``data_name`` (split seed ``seed``; each
    run at its own training rate), the analytic model when ``analytic`` (``urdf``: your robot's;
    default: the robot table's baseline robot of the data set), and for inverse
    dynamics the previous torque, training mean and linear model (forward: ARX), at 1/``subsample``
    of the rate. Returns {"data", "split_seed", "split", "test_rows", "date", "direction",
    "joint_names", "models": {name: metrics}}; ValueError when
    there is nothing to evaluate. ``split``: a :class:`~dynlearn_ros.datasets.splits.SplitSpec`;
    default the split recorded in the first run's checkpoint (else 0.7 / 0.15 / 0.15). ``threads``:
    torch intra-op threads (default 1: torch's default of one per core made every small op of the
    recurrent rollouts wait for a second thread, and on a loaded 2-core machine that multiplied the
    evaluation's CPU time, ``docs/results.md``). ``residual_clip``: every forward run on the ARX
    base trained without the clip is scored a second time with it (row "<name> + residual clip";
    the bound from the run's training split, ``models.arx_base.arx_residual_bound``)."""
    import torch

    from dynlearn_ros.datasets.catalog import load_dataset
    from dynlearn_ros.datasets.filtering import subsample as keep_every
    from dynlearn_ros.datasets.normalize import Stats
    from dynlearn_ros.datasets.splits import MIN_EPISODES_FOR_EPISODE_SPLIT, SplitSpec, split_data
    from dynlearn_ros.datasets.windows import inverse_rows
    from dynlearn_ros.learning.evaluation.sequence import (
        forward_free_run,
        forward_multistep,
        inverse_eval,
        torque_errors,
    )
    from dynlearn_ros.learning.training.sequence import load_checkpoint

    torch.set_num_threads(max(1, int(threads)))
    if split is None and runs:
        first = torch.load(Path(runs[0]) / "checkpoint.pt", map_location="cpu", weights_only=False)
        split = SplitSpec.from_dict(first.get("split"))
    split = split or SplitSpec()
    data = load_dataset(data_name)
    _tr, _va, test = split_data(data, seed=seed, spec=split)
    # the test rows depend on the split seed (shuffled windows, or episodes drawn by the seed;
    # not a test file, not a contiguous split): a run trained with another seed has trained on
    # some of them
    seeded_test = split.protocol == "paper-leaky" or (
        split.test_file is None and data.episodes().size >= MIN_EPISODES_FOR_EPISODE_SPLIT)
    results: dict = {"data": str(data_name), "split_seed": seed, "split": split.to_dict(), "test_rows": len(test),
                     "date": datetime.now(UTC).strftime("%Y-%m-%d"), "models": {}}
    direction = None
    for run_dir in runs:
        model, ckpt = load_checkpoint(Path(run_dir) / "checkpoint.pt")
        trained_on = tuple(ckpt.get("joint_names") or ())
        if trained_on and trained_on != tuple(data.joint_names):   # another robot, or another order
            raise ValueError(f"{run_dir} was trained on joints {list(trained_on)} ({ckpt.get('data', '?')}); "
                             f"data set {data_name} has {list(data.joint_names)}: evaluate it on its own robot's data")
        stats = Stats.from_dict(ckpt["stats"])
        tc = ckpt["train_config"]
        if seeded_test and int(tc.get("seed", seed)) != int(seed):
            raise ValueError(f"{run_dir} was trained with --seed {tc['seed']}, whose split of {data_name} differs from "
                             f"--seed {seed}'s: its test rows would include rows it trained on. Evaluate it with "
                             f"--seed {tc['seed']} (one eval per seed; `report aggregate` joins them)")
        direction = tc["direction"]
        k = int(ckpt.get("subsample", 1))
        if direction == "forward":
            from dynlearn_ros.datasets.windows import model_arrays
            from dynlearn_ros.learning.evaluation.linear_baselines import ARX

            te_k, tr_k = keep_every(test, k), keep_every(_tr, k)
            res = forward_multistep(model, stats, te_k, obs_qd=tc["obs_qd"])
            arx_k = ARX().fit(*model_arrays(tr_k, "forward", tc["obs_qd"]), tr_k.episode)
            res["free_run"] = forward_free_run(model, stats, te_k, obs_qd=tc["obs_qd"], arx=arx_k)
            if split.protocol == "paper-leaky":   # the paper's metric replaces the context-30 one
                from dynlearn_ros.learning.evaluation.paper_metric import paper_multistep

                res["rmse_context30"], res["prev_state_rmse_context30"] = res["rmse"], res["prev_state_rmse"]
                pm = paper_multistep(model, stats, te_k, obs_qd=tc["obs_qd"], arx=arx_k)
                res["paper_multistep"] = pm
                res["rmse"], res["prev_state_rmse"] = pm["rmse"], pm["prev_state_rmse"]
        else:
            res = inverse_eval(model, stats, keep_every(test, k))
        res.update({"run": str(run_dir), "subsample": k, "obs_qd": bool(tc.get("obs_qd", False)),
                    "seed": tc["seed"], "epochs": tc["epochs"], "best_epoch": ckpt["best_epoch"], "train_rows": ckpt["train_rows"],
                    "train_wall_s": round(ckpt["wall_s"], 1)})
        name = f"{tc['kind']} s{tc['seed']}" + (f" (1/{k} rate)" if k > 1 else "")
        if name in results["models"]:   # two runs of one kind and seed (e.g. two training options)
            name = f"{name} [{Path(run_dir).name}]"
        results["models"][name] = res
        if residual_clip and direction == "forward" and hasattr(model, "set_residual_bound") \
                and model.res_bound is None:
            results["models"][f"{name} + residual clip"] = _clipped_scores(model, stats, tr_k, te_k, tc, arx_k, res)
    test = keep_every(test, int(subsample or 1))
    train = keep_every(_tr, int(subsample or 1))
    if direction == "forward":
        from dynlearn_ros.learning.evaluation.linear_baselines import arx_multistep

        obs_qd = any(r.get("obs_qd", False) for r in results["models"].values())
        arx = arx_multistep(train, test, obs_qd=obs_qd)
        if split.protocol == "paper-leaky":
            from dynlearn_ros.learning.evaluation.paper_metric import paper_multistep

            pm = next((r["paper_multistep"] for r in results["models"].values() if "paper_multistep" in r), None)
            if pm is not None:
                arx["rmse_context30"], arx["rmse"] = arx["rmse"], pm["arx_rmse"]
            results["metric"] = ("paper multi-step: every position with >= 5 observed rows of each 40-row test "
                                 "window (leaky split)")
        free = [r["free_run"] for r in results["models"].values() if "free_run" in r]
        if free:   # the ARX and previous-state free runs on the same episodes as the models'
            arx["free_run"] = {"rmse": free[0]["arx_rmse"], "curve": free[0]["arx_curve"]}
        results["models"]["ARX(2, 2)"] = arx
    if analytic:
        results["models"]["analytic (Pinocchio)"] = analytic_errors(str(data_name), test, urdf)
        direction = "inverse"
    if direction == "inverse":
        # the reference every learned inverse model must beat: it is handed tau_{t-1}
        rows = inverse_rows(test.episode)
        results["models"]["previous torque"] = torque_errors(test.tau[rows - 1], test.tau[rows])
        from dynlearn_ros.learning.evaluation.linear_baselines import inverse_baselines

        for name, tau_hat in inverse_baselines(train, test).items():
            results["models"][name] = torque_errors(tau_hat, test.tau[rows])
    if not results["models"]:
        raise ValueError("nothing to evaluate: give --runs and/or --model analytic")
    results["direction"] = direction or "inverse"
    results["joint_names"] = list(data.joint_names)
    return results


def _clipped_scores(model, stats, train, test, tc: dict, arx, unclipped: dict) -> dict:
    """The forward scores of an ARX-base ``model`` with its residual clipped to the range of
    ``train`` (normalized units of ``stats``); the run's bookkeeping fields copied from
    ``unclipped``, plus "residual_bound" (d_o,)."""
    from dynlearn_ros.datasets.windows import model_arrays
    from dynlearn_ros.learning.evaluation.sequence import forward_free_run, forward_multistep
    from dynlearn_ros.learning.models.arx_base import arx_residual_bound

    obs, act = model_arrays(train, "forward", tc["obs_qd"])
    bound = arx_residual_bound(obs, act, train.episode, stats, model.arx_w.double().numpy())
    model.set_residual_bound(bound)
    res = forward_multistep(model, stats, test, obs_qd=tc["obs_qd"])
    res["free_run"] = forward_free_run(model, stats, test, obs_qd=tc["obs_qd"], arx=arx)
    res.update({k: unclipped[k] for k in ("run", "subsample", "obs_qd", "seed", "epochs", "best_epoch",
                                          "train_rows", "train_wall_s")})
    res["residual_bound"] = bound.tolist()
    return res
