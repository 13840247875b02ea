"""One inverse-dynamics table for every model kind on one data set's test split.

The learning core's runs (``dynlearn-ros train --model ffnn|lstm|acrkn-inv``, ``dynlearn-ros
eval``) and the GP runs (``dynlearn-ros train --model svdkl|svgp|dkl``, ``dynlearn-ros eval``,
``dynlearn-ros report gp-compare``) are evaluated by two different evaluations that do not agree on
rows or on NLL units. This module puts them in one table with one definition of every column:

* rows: rows 1 .. T-2 of every test episode (``train_val_test(data, seed)``), the rows the learning
  core can predict (it needs tau_{t-1} and o_{t+1}); the GP models, which could predict every row,
  are scored on the same rows;
* RMSE per joint (N*m) and "all" = the RMSE pooled over every row and joint (sqrt of the mean
  squared error), the one definition of "all" in every table of the package (``dynlearn-ros
  eval`` and the GP evaluation use it too); the mean of the per-joint RMSEs, the GP tables'
  "all" before issue 9, is kept in the JSON as ``rmse_mean_joint``;
* NLL: mean Gaussian negative log-likelihood per row and joint in units standardized by the
  *training split's* torque std per joint, the same ``y_std`` for every model (= the GP evaluation's
  NLL). ``nll_nm`` is the same quantity in N*m (natural log, includes 0.5 log 2 pi), which is what
  ``dynlearn-ros eval`` prints as "NLL"; ``nll = nll_nm - mean_j log y_std_j``;
* 95 % coverage: fraction of |tau - mean| <= 1.959964 std (std includes the observation noise for
  the GPs; the learning core's variance head has no separate noise term); ``within_2std`` (the
  learning core's column, 2 std) is also kept;
* per kind of test episode (the vgain scenario data: ``fourier`` / ``pick_place``) as ``dynlearn-ros
  report gp-compare`` does;
* two regimes (issue 9, section 4): (ii) every learning-core run as trained, reading the
  *measured* previous torque; (i) the controller form, where no torque is measured: the same run
  reads its *own* previous prediction (tau_0 of each episode measured,
  :func:`~dynlearn_ros.learning.evaluation.sequence.inverse_predict_fed_back`). Models that read
  no torque (GP models, analytic, training mean, linear) are the same in both; "previous torque"
  exists only in (ii). Every row carries ``regime`` ("i", "ii" or "both");
* baselines without a std: the analytic rigid-body model (Pinocchio RNEA on the nominal URDF),
  "previous torque" (tau_hat_t = tau_{t-1}, measured), the reference of regime (ii), "torque
  AR(5)" (tau_{t-1} plus a least-squares function of the last 5 measured torque changes), the training
  mean and the least-squares linear model in [1, q, sin q, cos q, qd, sign qd, qdd]
  (:mod:`~dynlearn_ros.learning.evaluation.linear_baselines`).

What the models are given differs and is part of the table: the learning core's inverse models
read [q, qd], the desired next observation and the *measured previous torque*; the GP models read
[q, qd, qdd] only.

    dynlearn-ros report inverse-table --data vgain_iiwa2.npz \
        --runs ffnn=runs/ffnn lstm=runs/lstm acrkn-inv=runs/acrkn svgp=runs/svgp svdkl+x=runs/x \
        --novelty --json t.json --md t.md
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

#: the reference row of each regime: (i) controller form, (ii) measured previous torque
REGIME_REFERENCE = {"ii": "previous torque", "i": "analytic (Pinocchio)"}
#: the 95 % two-sided Gaussian quantile, as in gp.training.gaussian_metrics
Z95 = 1.959964
CORE_INPUTS = "q, qd, desired next obs., measured tau_{t-1}"
GP_INPUTS = "q, qd, qdd"


def score(y: np.ndarray, mean: np.ndarray, std: np.ndarray | None, y_std: np.ndarray) -> dict:
    """Metrics of ``mean`` (and ``std``, N*m) against ``y`` (N, n); ``y_std`` (n,) the training
    split's torque std that standardizes the NLL. Without a std only the RMSEs."""
    err = mean - y
    rmse = np.sqrt(np.mean(err**2, axis=0))
    out = {"rows": int(len(y)), "rmse": float(np.sqrt(np.mean(err**2))), "rmse_per_joint": rmse.tolist(),
           "rmse_mean_joint": float(rmse.mean())}
    if std is None:
        return out
    std = np.maximum(std, 1e-12)
    nll_nm = 0.5 * np.log(2 * math.pi * std**2) + 0.5 * (err / std) ** 2
    out.update({
        "nll": float((nll_nm - np.log(y_std)[None, :]).mean()),
        "nll_nm": float(nll_nm.mean()),
        "coverage95": float(np.mean(np.abs(err) <= Z95 * std)),
        "coverage95_per_joint": np.mean(np.abs(err) <= Z95 * std, axis=0).tolist(),
        "within_2std": float(np.mean(np.abs(err) <= 2 * std)),
        "mean_std": float(std.mean()),
        "mean_std_per_joint": std.mean(axis=0).tolist(),
        "mean_abs_err_per_joint": np.abs(err).mean(axis=0).tolist(),
    })
    return out


def run_family(run: str | Path) -> str:
    """'core' for a learning-core (sequence) checkpoint, 'static' for a static-task run (``train
    --task static``), 'gp' for a GP checkpoint."""
    blob = torch.load(Path(run) / "checkpoint.pt", map_location="cpu", weights_only=False)
    if "static_config" in blob:
        return "static"
    if "train_config" in blob and "model_config" in blob:
        return "core"
    if "config" in blob and "state_dict" in blob:
        return "gp"
    raise ValueError(f"{run}: neither a learning-core nor a GP checkpoint")


def predict_core(run: str | Path, part, own: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """(mean, std, rows, info) of a learning-core inverse run on a split ``part`` (rows as
    :func:`~dynlearn_ros.datasets.windows.inverse_rows`); ``own``: the controller form, its own
    previous prediction fed back (:func:`~dynlearn_ros.learning.evaluation.sequence.inverse_predict_fed_back`)."""
    from dynlearn_ros.datasets.normalize import Stats
    from dynlearn_ros.learning.evaluation.sequence import inverse_predict, inverse_predict_fed_back
    from dynlearn_ros.learning.training.sequence import load_checkpoint

    model, ckpt = load_checkpoint(Path(run) / "checkpoint.pt")
    tc = ckpt["train_config"]
    if tc["direction"] != "inverse":
        raise ValueError(f"{run}: a {tc['direction']} model; this table is for inverse dynamics")
    if int(ckpt.get("subsample", 1)) != 1:
        raise ValueError(f"{run}: trained with --subsample {ckpt['subsample']}; rows would not match")
    stats = Stats.from_dict(ckpt["stats"])
    mean, std, rows = (inverse_predict_fed_back if own else inverse_predict)(model, stats, part)
    inputs = CORE_INPUTS.replace("measured tau_{t-1}", "own previous prediction (tau_0 measured)") if own \
        else CORE_INPUTS
    info = {"kind": tc["kind"], "family": "core", "inputs": inputs, "best_epoch": ckpt["best_epoch"],
            "epochs": tc["epochs"], "window": tc["window"], "stride": tc["stride"],
            "train_wall_s": round(float(ckpt["wall_s"]), 1), "train_command": ckpt.get("train_command"),
            "act_target": tc.get("act_target", "difference"), "own_action_frac": tc.get("own_action_frac", 0.0),
            "train_cpu_s": ckpt.get("cpu_s"), "stopped": ckpt.get("stopped")}
    return mean, std, rows, info


def load_gp(run: str | Path, x_train: np.ndarray | None, novelty: bool):
    """(model, extra, novelty term or None) of a GP run."""
    from dynlearn_ros.learning.training.gp import load_checkpoint

    model, extra = load_checkpoint(Path(run) / "checkpoint.pt")
    term = None
    if novelty and x_train is not None:
        from dynlearn_ros.learning.models.novelty import load_term

        term = load_term(run, model, x_train)
    return model, extra, term


def predict_gp(model, term, part) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (N*m) of a GP model (with the novelty term when not None) on every row of ``part``."""
    from dynlearn_ros.learning.models.novelty import predict_with_term
    from dynlearn_ros.learning.training.gp import inputs_targets

    return predict_with_term(model, term, inputs_targets(part)[0])


def training_y_std(train) -> np.ndarray:
    """The training split's torque std per joint, exactly as the GP models store it (``y_std``)."""
    from dynlearn_ros.datasets.normalize import Normalizer

    return np.asarray(Normalizer.fit(np.asarray(train.tau, dtype=np.float64)).std, dtype=np.float64)


def _kinds_of_rows(data, part, rows: np.ndarray) -> np.ndarray | None:
    from dynlearn_ros.datasets.format import episode_kinds

    kinds = episode_kinds(data)
    if not kinds:
        return None
    return np.array([kinds.get(int(e), "?") for e in part.episode[rows]])


def _entry(y, mean, std, y_std, kinds, y_val=None, mean_val=None, std_val=None) -> dict:
    ent = {"test": score(y, mean, std, y_std)}
    if kinds is not None:
        ent["test_by_kind"] = {k: score(y[kinds == k], mean[kinds == k], None if std is None else std[kinds == k],
                                        y_std) for k in sorted(set(kinds))}
    if y_val is not None:
        ent["val"] = score(y_val, mean_val, std_val, y_std)
    return ent


def build_table(data_name: str, runs: list[tuple[str, str]], seed: int = 0, novelty: bool = False,
                analytic: bool = True, urdf: str | Path | None = None) -> dict:
    """Every run (name, directory) and the baselines on the same test rows of ``data_name``;
    every learning-core run gets a regime-(ii) row (measured tau_{t-1}) and a regime-(i) row
    "<name>, own tau fed back". The analytic row uses ``urdf`` when given, else the data set's
    robot (none for an unknown robot)."""
    from dynlearn_ros.datasets.splits import load_splits
    from dynlearn_ros.datasets.windows import inverse_rows
    from dynlearn_ros.learning.training.gp import data_hash, inputs_targets

    data, tr, va, te = load_splits(data_name, seed)
    rows, rows_va = inverse_rows(te.episode), inverse_rows(va.episode)
    y, y_va = te.tau[rows], va.tau[rows_va]
    y_std = training_y_std(tr)
    kinds = _kinds_of_rows(data, te, rows)
    x_train = inputs_targets(tr)[0] if novelty and data.qdd is not None else None
    res: dict = {"data": data_name, "data_hash": data_hash(data) if data.qdd is not None else None,
                 "seed": seed, "joint_names": list(data.joint_names), "test_rows": int(len(rows)),
                 "val_rows": int(len(rows_va)), "test_episodes": [int(e) for e in np.unique(te.episode)],
                 "y_std": y_std.tolist(), "models": {}}
    if kinds is not None:
        res["test_rows_by_kind"] = {k: int((kinds == k).sum()) for k in sorted(set(kinds))}
    for name, run in runs:
        if run_family(run) == "core":
            for own in (False, True):
                mean, std, r, info = predict_core(run, te, own)
                if not np.array_equal(r, rows):
                    raise AssertionError(f"{run}: the learning core's rows differ from inverse_rows")
                mean_va, std_va, _, _ = predict_core(run, va, own)
                info.update({"run": str(run), "own_action": own, "regime": "i" if own else "ii"})
                res["models"][f"{name}, own tau fed back" if own else name] = {
                    **info, **_entry(y, mean, std, y_std, kinds, y_va, mean_va, std_va)}
            continue
        if run_family(run) == "static":
            from dynlearn_ros.learning.training.static import load_static, static_predict

            model, ck = load_static(run)
            info = {"kind": f"{ck['train_config']['kind']} (static)", "family": "static", "inputs": GP_INPUTS,
                    "run": str(run), "regime": "both", "best_epoch": ck["best_epoch"], "epochs": ck["epochs_run"],
                    "train_wall_s": ck["wall_s"], "train_cpu_s": ck["cpu_s"], "train_command": ck.get("train_command")}
            mean, std = static_predict(model, te)
            mean_va, std_va = static_predict(model, va)
            res["models"][name] = {**info, **_entry(y, mean[rows], std[rows], y_std, kinds,
                                                    y_va, mean_va[rows_va], std_va[rows_va])}
            continue
        model, extra, term = load_gp(run, x_train, novelty)
        if not np.allclose(model.y_std.numpy(), y_std, rtol=1e-5):
            raise AssertionError(f"{run}: its y_std differs from this split's training torque std "
                                 "(trained on other data or another split?)")
        info = {"kind": model.cfg.kind, "family": "gp", "inputs": GP_INPUTS, "run": str(run), "regime": "both",
                "gp_input": getattr(model.cfg, "gp_input", "features"), "num_inducing": model.cfg.num_inducing,
                "best_epoch": extra.get("best_epoch"), "epochs": extra.get("epochs"),
                "train_wall_s": extra.get("wall_s"), "train_command": extra.get("command")}
        variants = [(name, None)] + ([(f"{name} + novelty", term)] if term is not None else [])
        for vname, t in variants:
            mean, std = predict_gp(model, t, te)
            mean_va, std_va = predict_gp(model, t, va)
            res["models"][vname] = {**info, "novelty": t is not None,
                                    **_entry(y, mean[rows], std[rows], y_std, kinds,
                                             y_va, mean_va[rows_va], std_va[rows_va])}
    if analytic:
        from dynlearn_ros.learning.evaluation.baselines import rigid_body_torque

        if urdf is not None:
            from dynlearn_ros.datasets.rbd_baseline import analytic_torque

            tau_an = np.asarray(analytic_torque(te, urdf=urdf))
        else:
            tau_an = rigid_body_torque(te, data.meta.get("robot"))
        if tau_an is not None:
            res["models"]["analytic (Pinocchio)"] = {"family": "baseline", "inputs": GP_INPUTS, "regime": "both",
                                                     **_entry(y, tau_an[rows], None, y_std, kinds)}
    res["models"]["previous torque"] = {"family": "baseline", "inputs": "measured tau_{t-1}", "regime": "ii",
                                        **_entry(y, te.tau[rows - 1], None, y_std, kinds)}
    from dynlearn_ros.learning.evaluation.linear_baselines import inverse_baselines, torque_ar

    res["models"]["torque AR(5)"] = {"family": "baseline", "inputs": "measured tau_{t-1} .. tau_{t-6}", "regime": "ii",
                                     **_entry(y, torque_ar(tr, te, rows, 5), None, y_std, kinds)}

    for bname, tau_b in inverse_baselines(tr, te).items():
        inputs = "none (constant)" if bname == "training mean" else GP_INPUTS
        res["models"][bname] = {"family": "baseline", "inputs": inputs, "regime": "both",
                                **_entry(y, tau_b, None, y_std, kinds)}
    res["regime_reference"] = dict(REGIME_REFERENCE)
    res["regimes"] = {r: {name: m["ratio"] for name, m in regime_rows(res, r).items()} for r in ("i", "ii")}
    return res


def regime_rows(res: dict, regime: str) -> dict:
    """The models of ``res`` that belong to regime "i" (controller form) or "ii" (measured
    previous torque), in table order, each with ``ratio``: its pooled test RMSE over that of the
    regime's reference row (:data:`REGIME_REFERENCE`), None when the reference is absent."""
    ref = res["models"].get(REGIME_REFERENCE[regime])
    out = {}
    for name, m in res["models"].items():
        if m.get("regime", "both") in (regime, "both"):
            out[name] = {**m, "ratio": m["test"]["rmse"] / ref["test"]["rmse"] if ref else None}
    return out
