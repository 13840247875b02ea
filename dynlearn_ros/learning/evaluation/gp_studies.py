"""The GP studies of docs/results_svdkl.md, as result dicts (tables: :mod:`dynlearn_ros.reporting.tables`):

* :func:`quality`: inverse-dynamics quality + calibration (test and validation splits) of each GP
  kind and the analytic model, per data set (``dynlearn-ros report gp-quality``);
* :func:`fractions`: predictive std on the test trajectory vs the fraction of the training split
  used (``dynlearn-ros report gp-fractions``, with a PNG of mean +- 2 std);
* :func:`compare`: existing runs side by side on the validation and test splits; for data sets
  whose episodes have kinds (the vgain scenario data: fourier / pick_place) also per test-episode
  kind, optionally with the calibrated novelty term and by distance to the training inputs
  (``dynlearn-ros report gp-compare``).

Runs are trained through :func:`dynlearn_ros.learning.training.gp_runs.train_run` (the same code
as ``dynlearn-ros train --model ...``) into ``<runs_root>/<data>/<model>-s<seed>[-f<fraction>]``
and reused when present.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dynlearn_ros.datasets.format import episode_kinds
from dynlearn_ros.datasets.splits import load_splits
from dynlearn_ros.learning.evaluation.baselines import rigid_body_metrics
from dynlearn_ros.learning.training.gp import (
    evaluate_model,
    gaussian_metrics,
    inputs_targets,
    load_checkpoint,
)
from dynlearn_ros.learning.training.gp_runs import GPRunConfig, train_run


@dataclass
class GPStudyConfig:
    """What a study reads and trains. ``data``: data set names or .npz paths (fractions and
    compare use the first); ``models``: GP kinds of the quality study; ``model``: the kind of the
    fractions study; ``fractions`` of the training split; ``epochs`` None: the GP defaults;
    ``runs_root``: where missing runs are trained; ``no_train``: quality skips missing runs;
    ``runs``: compare's ``name=run_dir`` (or ``run_dir``) entries; ``novelty``: compare adds
    '<name> + novelty' for runs with a novelty.json; ``split_distance``: compare also splits the
    test rows at this distance (standardized units) from the training inputs; ``plot_rows``:
    test rows kept for the fractions plot; ``command``: recorded in the result."""

    data: tuple[str, ...] = ("panda_gaz2019",)
    models: tuple[str, ...] = ("svdkl", "svgp", "dkl")
    model: str = "svdkl"
    fractions: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 1.0)
    epochs: int | None = None
    seed: int = 0
    runs_root: str = "runs/gp"
    no_train: bool = False
    runs: tuple[str, ...] = ()
    novelty: bool = False
    split_distance: float | None = None
    plot_rows: int = 3000
    command: str = ""


def _run(data: str, model: str, seed: int, epochs: int | None, root: Path, max_rows: int | None = None,
         tag: str = "") -> Path:
    run = root / Path(data).stem / f"{model}-s{seed}{tag}"
    if not (run / "checkpoint.pt").is_file():
        train_run(GPRunConfig(data=data, model=model, seed=seed, epochs=epochs, max_train_samples=max_rows,
                              progress=False, threads=1), run)
    return run


def quality(cfg: GPStudyConfig) -> dict:
    """Test and validation metrics of each kind in ``cfg.models`` (trained when missing unless
    ``cfg.no_train``) and of the analytic model, for each data set of ``cfg.data``."""
    root = Path(cfg.runs_root)
    res: dict = {"command": cfg.command, "seed": cfg.seed, "epochs": cfg.epochs, "data": {}}
    for data_name in cfg.data:
        data, _tr, va, te = load_splits(data_name, cfg.seed)
        xte, yte = inputs_targets(te)
        xva, yva = inputs_targets(va)
        entry: dict = {"test_rows": len(te), "val_rows": len(va), "joint_names": list(data.joint_names),
                       "robot": data.meta.get("robot"), "models": {}}
        for model in cfg.models:
            if cfg.no_train and not (root / Path(data_name).stem / f"{model}-s{cfg.seed}" / "checkpoint.pt").is_file():
                entry["models"][model] = {"not_run": True}
                continue
            run = _run(data_name, model, cfg.seed, cfg.epochs, root)
            m, extra = load_checkpoint(run / "checkpoint.pt")
            met = evaluate_model(m, xte, yte)
            val = evaluate_model(m, xva, yva)
            met.update({"val_rmse": val["rmse"], "val_nll": val["nll"], "val_coverage95": val["coverage95"]})
            met.update({"train_rows": extra.get("train_rows"), "train_wall_s": extra.get("wall_s"),
                        "best_epoch": extra.get("best_epoch"), "epochs": extra.get("epochs")})
            entry["models"][model] = met
            print(f"{data_name} {model}: rmse {met['rmse']:.3f} nll {met['nll']:.3f} cov {met['coverage95']:.3f}",
                  flush=True)
        an = rigid_body_metrics(te, data.meta.get("robot"))
        if an is not None:
            entry["models"]["analytic (Pinocchio)"] = an
        res["data"][data_name] = entry
    return res


def fractions(cfg: GPStudyConfig) -> tuple[dict, dict]:
    """(result, curves): per fraction f of the training split of ``cfg.data[0]``, a
    ``cfg.model`` run trained on its first f rows, its test metrics and mean predictive std;
    curves = {"test": the test split, "preds": {f: (mean, std) of the first ``cfg.plot_rows``
    test rows, N*m}, "rows": that row count, "joint_names"} for :func:`dynlearn_ros.reporting.plots.variance_vs_data`."""
    root = Path(cfg.runs_root)
    data, tr, _va, te = load_splits(cfg.data[0], cfg.seed)
    xte, yte = inputs_targets(te)
    rows = min(len(te), cfg.plot_rows)
    res: dict = {"command": cfg.command, "data": cfg.data[0], "model": cfg.model, "seed": cfg.seed,
                 "train_rows_total": len(tr), "test_rows": len(te), "fractions": {}}
    preds = {}
    for f in cfg.fractions:
        n_rows = max(1, int(round(f * len(tr))))
        tag = "" if n_rows == len(tr) else f"-f{int(round(f * 100))}"  # 100 %: the quality run
        run = _run(cfg.data[0], cfg.model, cfg.seed, cfg.epochs, root, max_rows=n_rows, tag=tag)
        m, _ = load_checkpoint(run / "checkpoint.pt")
        mean, std = m.predict(xte)
        _, std_latent = m.predict(xte, include_noise=False)
        met = gaussian_metrics(yte, mean, std, m.y_std.numpy())
        sn, sf = m.sigma_n_f()
        res["fractions"][str(f)] = {
            "train_rows": n_rows, "mean_std": met["mean_std"], "mean_std_per_joint": std.mean(0).tolist(),
            "mean_latent_std": float(std_latent.mean()), "rmse": met["rmse"], "nll": met["nll"],
            "coverage95": met["coverage95"], "sigma_n": sn.tolist(), "sigma_f": sf.tolist(),
        }
        preds[f] = (mean[:rows], std[:rows])
        print(f"fraction {f}: rows {n_rows} mean std {met['mean_std']:.3f} latent {std_latent.mean():.3f} "
              f"rmse {met['rmse']:.3f} cov {met['coverage95']:.3f}", flush=True)
    stds = [res["fractions"][str(f)]["mean_std"] for f in cfg.fractions]
    res["std_decreasing"] = bool(all(b < a for a, b in zip(stds, stds[1:], strict=False)))
    return res, {"test": te, "preds": preds, "rows": rows, "joint_names": list(data.joint_names)}


def _group_stats(y: np.ndarray, mean: np.ndarray, std: np.ndarray, y_std: np.ndarray) -> dict:
    met = gaussian_metrics(y, mean, std, y_std)
    err = np.abs(y - mean)
    met.update({"mean_abs_err_per_joint": err.mean(axis=0).tolist(), "mean_std_per_joint": std.mean(axis=0).tolist(),
                "mean_abs_err": float(err.mean())})
    return met


def compare(cfg: GPStudyConfig) -> dict:
    """Metrics of existing runs (``cfg.runs``: name=dir) on the validation and test splits of
    ``cfg.data[0]``; with episode kinds, also per kind of test episode (the OOD check)."""
    data_name = cfg.data[0]
    data, tr, va, te = load_splits(data_name, cfg.seed)
    xte, yte = inputs_targets(te)
    xva, yva = inputs_targets(va)
    kinds = episode_kinds(data)
    res: dict = {"command": cfg.command, "data": data_name, "seed": cfg.seed, "test_rows": len(te),
                 "val_rows": len(va), "joint_names": list(data.joint_names), "models": {}}
    if kinds:
        res["test_episodes"] = {int(e): kinds.get(int(e), "?") for e in np.unique(te.episode)}
    split_d = cfg.split_distance
    xtr = inputs_targets(tr)[0] if (cfg.novelty or split_d is not None) else None
    for spec in cfg.runs:
        name, _, run = spec.partition("=")
        if not run:
            name, run = Path(spec).name, spec
        model, extra = load_checkpoint(Path(run) / "checkpoint.pt")
        variants = [(name, None)]
        if cfg.novelty:
            from dynlearn_ros.learning.models.novelty import load_term

            term = load_term(run, model, xtr)
            if term is not None:
                variants.append((f"{name} + novelty", term))
        for vname, term in variants:
            res["models"][vname] = _compare_entry(model, extra, run, term, (xte, yte), (xva, yva), te, kinds)
            if split_d is not None:
                res["split_distance"] = split_d
                res["models"][vname]["test_by_distance"] = _by_distance(model, term, xtr, xte, yte, split_d)
            t, v = res["models"][vname]["test"], res["models"][vname]["val"]
            print(f"{vname}: test rmse {t['rmse']:.3f} nll {t['nll']:.3f} cov {t['coverage95']:.3f} | val rmse "
                  f"{v['rmse']:.3f} nll {v['nll']:.3f} cov {v['coverage95']:.3f}", flush=True)
    return res


def _by_distance(model, term, xtr: np.ndarray, xte: np.ndarray, yte: np.ndarray, split: float,
                 k: int = 1024) -> dict:
    """Test metrics of rows whose standardized input lies within ``split`` of the nearest of
    ``k`` evenly spaced training rows (novelty.store_rows) and of the rows beyond."""
    from dynlearn_ros.learning.models.novelty import build_term, nn_sq_distance, predict_with_term

    store = build_term(model, xtr, k, np.zeros(model.cfg.n_joints), 0.0).store
    d = np.sqrt(nn_sq_distance(store, model.normalize_x(xte).double().numpy()))
    mean, std = predict_with_term(model, term, xte)
    ys = model.y_std.numpy()
    return {f"d <= {split:g}": _group_stats(yte[d <= split], mean[d <= split], std[d <= split], ys),
            f"d > {split:g}": _group_stats(yte[d > split], mean[d > split], std[d > split], ys)}


def _compare_entry(model, extra: dict, run: str, term, test_xy, val_xy, te, kinds: dict) -> dict:
    """Validation and test metrics of one run (with the novelty term ``term`` when not None)."""
    from dynlearn_ros.learning.models.novelty import predict_with_term

    ys = model.y_std.numpy()
    yte, yva = test_xy[1], val_xy[1]
    mean, std = predict_with_term(model, term, test_xy[0])
    mean_va, std_va = predict_with_term(model, term, val_xy[0])
    entry = {"run": run, "config": model.cfg.to_dict(), "best_epoch": extra.get("best_epoch"),
             "train_wall_s": extra.get("wall_s"), "train_command": extra.get("command"),
             "novelty": None if term is None else term.to_json(),
             "test": _group_stats(yte, mean, std, ys), "val": gaussian_metrics(yva, mean_va, std_va, ys)}
    if kinds:
        ep_kind = np.array([kinds.get(int(e), "?") for e in te.episode])
        entry["test_by_kind"] = {k: _group_stats(yte[ep_kind == k], mean[ep_kind == k], std[ep_kind == k], ys)
                                 for k in sorted(set(ep_kind))}
    return entry
