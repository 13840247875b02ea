"""One inverse-dynamics table for every model kind on one data set's test split.

The learning core's runs (``dynlearn-ros train --model ffnn|lstm|acrkn-inv``, ``dynlearn-ros
eval``) and the GP runs (``dynlearn-ros train --model svdkl|svgp|dkl``, ``dynlearn-ros eval``,
``dynlearn-ros report gp-compare``) are evaluated by two different evaluations that do not agree on
rows or on NLL units. This module puts them in one table with one definition of every column:

* rows: rows 1 .. T-2 of every test episode (``train_val_test(data, seed)``), the rows the learning
  core can predict (it needs tau_{t-1} and o_{t+1}); the GP models, which could predict every row,
  are scored on the same rows;
* RMSE per joint (N*m) and "mean RMSE" = the mean of the per-joint RMSEs (the GP evaluation's
  convention; ``dynlearn-ros eval`` prints the RMSE pooled over joints instead);
* NLL: mean Gaussian negative log-likelihood per row and joint in units standardized by the
  *training split's* torque std per joint, the same ``y_std`` for every model (= the GP evaluation's
  NLL). ``nll_nm`` is the same quantity in N*m (natural log, includes 0.5 log 2 pi), which is what
  ``dynlearn-ros eval`` prints as "NLL"; ``nll = nll_nm - mean_j log y_std_j``;
* 95 % coverage: fraction of |tau - mean| <= 1.959964 std (std includes the observation noise for
  the GPs; the learning core's variance head has no separate noise term); ``within_2std`` (the
  learning core's column, 2 std) is also kept;
* per kind of test episode (the vgain scenario data: ``fourier`` / ``pick_place``) as ``dynlearn-ros
  report gp-compare`` does;
* optionally (``--own-action NAME``) a learning-core run trained with ``--act-target absolute``
  evaluated free-running: its own previous prediction fed back instead of the measured tau_{t-1}
  (as in closed loop, where no measured torque is read);
* baselines without a std: the analytic rigid-body model (Pinocchio RNEA on the nominal URDF) and
  "previous torque" (tau_hat_t = tau_{t-1}, measured), the reference for every model handed
  tau_{t-1}.

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

#: the 95 % two-sided Gaussian quantile, as in gp.training.gaussian_metrics
Z95 = 1.959964
CORE_INPUTS = "q, qd, desired next obs., measured tau_{t-1}"
GP_INPUTS = "q, qd, qdd"


def score(y: np.ndarray, mean: np.ndarray, std: np.ndarray | None, y_std: np.ndarray) -> dict:
    """Metrics of ``mean`` (and ``std``, N*m) against ``y`` (N, n); ``y_std`` (n,) the training
    split's torque std that standardizes the NLL. Without a std only the RMSEs."""
    err = mean - y
    rmse = np.sqrt(np.mean(err**2, axis=0))
    out = {"rows": int(len(y)), "rmse": float(rmse.mean()), "rmse_per_joint": rmse.tolist(),
           "rmse_pooled": float(np.sqrt(np.mean(err**2)))}
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
    """'core' for a learning-core checkpoint, 'gp' for a GP helper checkpoint."""
    blob = torch.load(Path(run) / "checkpoint.pt", map_location="cpu", weights_only=False)
    if "train_config" in blob and "model_config" in blob:
        return "core"
    if "config" in blob and "state_dict" in blob:
        return "gp"
    raise ValueError(f"{run}: neither a learning-core nor a GP checkpoint")


@torch.no_grad()
def own_action_predict(model, stats, part) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Like ``evaluate.inverse_predict`` for an ``act_target="absolute"`` model, but free-running:
    from the second predicted row of each episode on, the model reads its *own* previous
    prediction instead of the measured tau_{t-1} (only tau_0 of each episode is measured)."""
    from dynlearn_ros.datasets.filtering import episode_bounds
    from dynlearn_ros.datasets.windows import model_arrays

    if getattr(model.cfg, "act_target", "difference") != "absolute":
        raise ValueError("own-action evaluation needs a model trained with --act-target absolute")
    model.eval()
    obs, act = model_arrays(part, "inverse")
    means, stds, rows = [], [], []
    for a, b in episode_bounds(part.episode):
        if b - a < 3:
            continue
        sl = slice(a, b)
        on = torch.as_tensor((obs[sl] - stats.obs_mean) / stats.obs_std, dtype=torch.float32)[None]
        an = torch.as_tensor((act[sl] - stats.act_mean) / stats.act_std, dtype=torch.float32)[None]
        mu, var, _ = model.seq(on, an, own_mask=torch.ones(1, on.shape[1], 1))
        means.append(mu[0].double().numpy() * stats.act_std + stats.act_mean)
        stds.append(np.sqrt(var[0].double().numpy()) * stats.act_std)
        rows.append(np.arange(a + 1, b - 1))
    return np.concatenate(means), np.concatenate(stds), np.concatenate(rows)


def predict_core(run: str | Path, part, own: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """(mean, std, rows, info) of a learning-core inverse run on a split ``part`` (rows as
    :func:`~dynlearn_ros.datasets.windows.inverse_rows`); ``own``: free-running (:func:`own_action_predict`)."""
    from dynlearn_ros.datasets.normalize import Stats
    from dynlearn_ros.learning.evaluation.sequence import inverse_predict
    from dynlearn_ros.learning.training.sequence import load_checkpoint

    model, ckpt = load_checkpoint(Path(run) / "checkpoint.pt")
    tc = ckpt["train_config"]
    if tc["direction"] != "inverse":
        raise ValueError(f"{run}: a {tc['direction']} model; this table is for inverse dynamics")
    if int(ckpt.get("subsample", 1)) != 1:
        raise ValueError(f"{run}: trained with --subsample {ckpt['subsample']}; rows would not match")
    stats = Stats.from_dict(ckpt["stats"])
    mean, std, rows = (own_action_predict if own else inverse_predict)(model, stats, part)
    inputs = CORE_INPUTS.replace("measured tau_{t-1}", "own previous prediction (tau_0 measured)") if own \
        else CORE_INPUTS
    info = {"kind": tc["kind"], "family": "core", "inputs": inputs, "best_epoch": ckpt["best_epoch"],
            "epochs": tc["epochs"], "window": tc["window"], "stride": tc["stride"],
            "train_wall_s": round(float(ckpt["wall_s"]), 1), "train_command": ckpt.get("train_command"),
            "act_target": tc.get("act_target", "difference")}
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
                analytic: bool = True, own_action: tuple[str, ...] = ()) -> dict:
    """Every run (name, directory) and the baselines on the same test rows of ``data_name``;
    learning-core runs named in ``own_action`` get a second, free-running row."""
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
            for own in (False, True) if name in own_action else (False,):
                mean, std, r, info = predict_core(run, te, own)
                if not np.array_equal(r, rows):
                    raise AssertionError(f"{run}: the learning core's rows differ from inverse_rows")
                mean_va, std_va, _, _ = predict_core(run, va, own)
                info.update({"run": str(run), "own_action": own})
                res["models"][f"{name} (own tau fed back)" if own else name] = {
                    **info, **_entry(y, mean, std, y_std, kinds, y_va, mean_va, std_va)}
            continue
        model, extra, term = load_gp(run, x_train, novelty)
        if not np.allclose(model.y_std.numpy(), y_std, rtol=1e-5):
            raise AssertionError(f"{run}: its y_std differs from this split's training torque std "
                                 "(trained on other data or another split?)")
        info = {"kind": model.cfg.kind, "family": "gp", "inputs": GP_INPUTS, "run": str(run),
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

        tau_an = rigid_body_torque(te, data.meta.get("robot"))
        if tau_an is not None:
            res["models"]["analytic (Pinocchio)"] = {"family": "baseline", "inputs": GP_INPUTS,
                                                     **_entry(y, tau_an[rows], None, y_std, kinds)}
    res["models"]["previous torque"] = {"family": "baseline", "inputs": "measured tau_{t-1}",
                                        **_entry(y, te.tau[rows - 1], None, y_std, kinds)}
    return res
