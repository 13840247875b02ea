"""Evaluation of the static inverse task (``dynlearn-ros eval --task static``): every test row
scored on its own (q, qd, qdd -> tau), no time order, so logs that are not sequences can be
evaluated.

Models: static FFNN runs (``train --task static``) and GP runs (``train --model svdkl|svgp|dkl``,
which are static by construction); baselines on the same rows: the training mean, the
least-squares linear model in [1, q, sin q, cos q, qd, sign qd, qdd]
(:mod:`~dynlearn_ros.learning.evaluation.linear_baselines`) and, when asked, Pinocchio RNEA of a
URDF. Columns as :func:`~dynlearn_ros.learning.evaluation.sequence.torque_errors`: RMSE per joint
and "all" pooled over rows and joints (N*m), NLL (N*m units), fraction within 2 std.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch


def _run_predict(run: str | Path, test) -> tuple[str, np.ndarray, np.ndarray, dict]:
    """(name, mean, std, info) of a static FFNN or GP run on every row of ``test``."""
    from dynlearn_ros.learning.evaluation.inverse_table import run_family

    blob = torch.load(Path(run) / "checkpoint.pt", map_location="cpu", weights_only=False)
    if "static_config" in blob:
        from dynlearn_ros.learning.training.static import load_static, static_predict

        model, ck = load_static(run)
        mean, std = static_predict(model, test)
        tc = ck["train_config"]
        return (f"{tc['kind']} (static) s{tc['seed']}", mean, std,
                {"best_epoch": ck["best_epoch"], "epochs": ck["epochs_run"], "train_cpu_s": round(ck["cpu_s"], 1),
                 "train_rows": ck["train_rows"], "joint_names": ck.get("joint_names")})
    if run_family(run) != "gp":
        raise ValueError(f"{run}: a sequence-model run; evaluate it with `eval` (task sequence)")
    from dynlearn_ros.learning.training.gp import inputs_targets, load_checkpoint

    model, extra = load_checkpoint(Path(run) / "checkpoint.pt")
    mean, std = model.predict(inputs_targets(test)[0])
    return (f"{model.cfg.kind} s{extra.get('seed', 0)}", mean, std,
            {"best_epoch": extra.get("best_epoch"), "epochs": extra.get("epochs"),
             "train_rows": extra.get("train_rows"), "joint_names": extra.get("joint_names")})


def evaluate_static(data_name: str, runs: Sequence[str | Path], seed: int = 0, split=None, analytic: bool = False,
                    urdf: str | Path | None = None) -> dict:
    """Metrics of each run and the baselines on every row of the test split of ``data_name``
    (``split``: a SplitSpec; default the one the first static run recorded, else 0.7/0.15/0.15).
    ValueError when a run was trained on other joints or nothing is evaluated."""
    from dynlearn_ros.datasets.catalog import load_dataset
    from dynlearn_ros.datasets.splits import SplitSpec, split_data
    from dynlearn_ros.learning.evaluation.linear_baselines import inverse_baselines
    from dynlearn_ros.learning.evaluation.sequence import torque_errors

    if split is None and runs:
        first = torch.load(Path(runs[0]) / "checkpoint.pt", map_location="cpu", weights_only=False)
        split = SplitSpec.from_dict(first["split"]) if "split" in first else None
    split = split or SplitSpec()
    data = load_dataset(data_name)
    if data.qdd is None or not np.isfinite(data.qdd).all():
        raise ValueError(f"{data_name}: the static task needs joint accelerations (qdd) on every row")
    train, _val, test = split_data(data, seed=seed, spec=split)
    res: dict = {"data": str(data_name), "task": "static", "split_seed": seed, "split": split.to_dict(),
                 "test_rows": len(test), "date": datetime.now(UTC).strftime("%Y-%m-%d"),
                 "joint_names": list(data.joint_names), "direction": "inverse", "models": {}}
    for run in runs:
        name, mean, std, info = _run_predict(run, test)
        if info.get("joint_names") and tuple(info["joint_names"]) != tuple(data.joint_names):
            raise ValueError(f"{run} was trained on joints {info['joint_names']}; {data_name} has "
                             f"{list(data.joint_names)}")
        if name in res["models"]:
            name = f"{name} [{Path(run).name}]"
        res["models"][name] = {**torque_errors(mean, test.tau, std), **info, "run": str(run)}
    if analytic:
        from dynlearn_ros.datasets.rbd_baseline import analytic_torque, baseline_urdf

        try:
            path = baseline_urdf(dataset=Path(data_name).stem, urdf=urdf)
        except (KeyError, FileNotFoundError) as exc:
            raise ValueError(f"--model analytic: {exc.args[0]}") from exc
        res["models"]["analytic (Pinocchio)"] = torque_errors(np.asarray(analytic_torque(test, urdf=path)), test.tau)
    for name, tau_hat in inverse_baselines(train, test, rows=np.arange(len(test))).items():
        res["models"][name] = torque_errors(tau_hat, test.tau)
    return res
