"""Reproduce the tables and the plot of docs/results_svdkl.md.

    # inverse-dynamics quality + calibration (test split) for svdkl, svgp, dkl and the analytic model
    python -m dynlearn_ros.learning.gp.report quality --data panda_gaz2019 ur10 iiwa.npz \
        --models svdkl svgp dkl --epochs 40 --runs-root runs/gp --json q.json --md q.md

    # predictive std on the test trajectory vs fraction of the training split; PNG of mean +- 2 std
    python -m dynlearn_ros.learning.gp.report fractions --data panda_gaz2019 --model svdkl \
        --fractions 0.2 0.4 0.6 0.8 1.0 --epochs 40 --png docs/img/svdkl_variance_vs_data.png --json f.json

    # existing runs side by side on the validation and test splits; for data sets whose episodes
    # have kinds (the vgain scenario data: fourier / pick_place) also per test-episode kind
    python -m dynlearn_ros.learning.gp.report compare --data vgain_iiwa2.npz \
        --runs svdkl=runs/a svdkl+x=runs/b --json c.json --md c.md
    # ... plus a '<name> + novelty' row for runs with a calibrated novelty term (novelty.py)
    python -m dynlearn_ros.learning.gp.report compare --data panda_gaz2019 --runs svdkl=runs/a --novelty

Runs are trained through :func:`dynlearn_ros.learning.gp.cli.train` (the same code as
``dynlearn-ros train --model ...``) into ``<runs-root>/<data>/<model>-s<seed>[-f<fraction>]`` and
reused when present.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

import numpy as np
import torch

from dynlearn_ros.learning.gp import cli
from dynlearn_ros.learning.gp.training import (
    evaluate_model,
    gaussian_metrics,
    inputs_targets,
    load_checkpoint,
)

ANALYTIC_URDF_ROBOTS = {"panda": "panda", "ur10": "ur10"}  # example-robot-data URDFs


def _run(data: str, model: str, seed: int, epochs: int | None, root: Path, max_rows: int | None = None,
         tag: str = "") -> Path:
    run = root / Path(data).stem / f"{model}-s{seed}{tag}"
    if not (run / "checkpoint.pt").is_file():
        ns = argparse.Namespace(data=data, model=model, seed=seed, epochs=epochs, out=str(run), batch_size=None,
                                lr=None, max_train_samples=max_rows, no_progress=True, threads=1)
        cli.train(ns)
    return run


def analytic_torque(test, robot: str | None) -> np.ndarray | None:
    """Rigid-body torque (N*m, (N, n)) of the nominal model (Pinocchio RNEA) on every row of
    ``test`` from its q, qd, qdd, or None if there is no URDF for ``robot``."""
    if robot in ANALYTIC_URDF_ROBOTS:
        from dynlearn_ros.datasets.analytic import analytic_torque as _urdf_torque

        return np.asarray(_urdf_torque(test, ANALYTIC_URDF_ROBOTS[robot]))
    if robot == "iiwa":
        from dynlearn_ros.core.analytic import RigidBodyModel
        from dynlearn_ros.core.robots import robot_spec

        rb = RigidBodyModel(robot_spec("iiwa").urdf_path, test.joint_names)
        out = np.empty_like(test.tau)
        for i in range(len(test)):
            rb.rnea(test.q[i], test.qd[i], test.qdd[i], out[i])
        return out
    return None


def analytic_metrics(test, robot: str | None) -> dict | None:
    """RMSE of the rigid-body model (Pinocchio RNEA) on the test split, or None if no URDF."""
    out = analytic_torque(test, robot)
    if out is None:
        return None
    err = out - test.tau
    rmse = np.sqrt(np.mean(err**2, axis=0))
    return {"rmse": float(rmse.mean()), "rmse_per_joint": rmse.tolist()}


def quality(args: argparse.Namespace) -> dict:
    root = Path(args.runs_root)
    res: dict = {"command": cli.command_line(), "seed": args.seed, "epochs": args.epochs, "data": {}}
    for data_name in args.data:
        data, _tr, va, te = cli.load_splits(data_name, args.seed)
        xte, yte = inputs_targets(te)
        xva, yva = inputs_targets(va)
        entry: dict = {"test_rows": len(te), "val_rows": len(va), "joint_names": list(data.joint_names),
                       "robot": data.meta.get("robot"), "models": {}}
        for model in args.models:
            if args.no_train and not (root / Path(data_name).stem / f"{model}-s{args.seed}" / "checkpoint.pt").is_file():
                entry["models"][model] = {"not_run": True}
                continue
            run = _run(data_name, model, args.seed, args.epochs, root)
            m, extra = load_checkpoint(run / "checkpoint.pt")
            met = evaluate_model(m, xte, yte)
            val = evaluate_model(m, xva, yva)
            met.update({"val_rmse": val["rmse"], "val_nll": val["nll"], "val_coverage95": val["coverage95"]})
            met.update({"train_rows": extra.get("train_rows"), "train_wall_s": extra.get("wall_s"),
                        "best_epoch": extra.get("best_epoch"), "epochs": extra.get("epochs")})
            entry["models"][model] = met
            print(f"{data_name} {model}: rmse {met['rmse']:.3f} nll {met['nll']:.3f} cov {met['coverage95']:.3f}",
                  flush=True)
        an = analytic_metrics(te, data.meta.get("robot"))
        if an is not None:
            entry["models"]["analytic (Pinocchio)"] = an
        res["data"][data_name] = entry
    return res


def quality_markdown(res: dict) -> str:
    lines = []
    for data_name, entry in res["data"].items():
        names = entry["joint_names"]
        lines += [f"**{data_name}** (test rows: {entry['test_rows']})", "",
                  "| model | " + " | ".join(n.replace("_joint", " j").replace("joint", "j") for n in names)
                  + " | mean RMSE | NLL | 95 % cov. | val RMSE | val NLL | val 95 % cov. | train rows | train s |",
                  "|---" * (len(names) + 9) + "|"]
        for model, m in entry["models"].items():
            if m.get("not_run"):
                lines.append(f"| {model} | " + " | ".join("-" for _ in names) + " | not run |" + " - |" * 7)
                continue
            cells = " | ".join(f"{v:.3f}" for v in m["rmse_per_joint"])
            nll = f"{m['nll']:.3f}" if "nll" in m else "-"
            cov = f"{m['coverage95']:.3f}" if "coverage95" in m else "-"
            rows = m.get("train_rows", "-")
            secs = m.get("train_wall_s", "-")
            val = " | ".join(f"{m[k]:.3f}" if k in m else "-" for k in ("val_rmse", "val_nll", "val_coverage95"))
            lines.append(f"| {model} | {cells} | {m['rmse']:.3f} | {nll} | {cov} | {val} | {rows} | {secs} |")
        lines.append("")
    return "\n".join(lines)


def fractions(args: argparse.Namespace) -> dict:
    root = Path(args.runs_root)
    data, tr, _va, te = cli.load_splits(args.data[0], args.seed)
    xte, yte = inputs_targets(te)
    rows = min(len(te), args.plot_rows)
    res: dict = {"command": cli.command_line(), "data": args.data[0], "model": args.model, "seed": args.seed,
                 "train_rows_total": len(tr), "test_rows": len(te), "fractions": {}}
    preds = {}
    for f in args.fractions:
        n_rows = max(1, int(round(f * len(tr))))
        tag = "" if n_rows == len(tr) else f"-f{int(round(f * 100))}"  # 100 %: the quality run
        run = _run(args.data[0], args.model, args.seed, args.epochs, root, max_rows=n_rows, tag=tag)
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
    stds = [res["fractions"][str(f)]["mean_std"] for f in args.fractions]
    res["std_decreasing"] = bool(all(b < a for a, b in zip(stds, stds[1:], strict=False)))
    if args.png:
        plot(args.png, te, preds, rows, args.joints, data.joint_names, args.model)
        res["png"] = args.png
    return res


def plot(path: str, te, preds: dict, rows: int, joints: list[int], names, model: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = te.t[:rows] - te.t[0]
    fr = sorted(preds)
    fig, axes = plt.subplots(len(joints), len(fr), figsize=(2.6 * len(fr), 1.9 * len(joints)), sharex=True,
                             squeeze=False)
    for c, f in enumerate(fr):
        mean, std = preds[f]
        for r, j in enumerate(joints):
            ax = axes[r, c]
            ax.fill_between(t, mean[:, j] - 2 * std[:, j], mean[:, j] + 2 * std[:, j], color="tab:blue", alpha=0.3,
                            lw=0, label="mean +- 2 std")
            ax.plot(t, te.tau[:rows, j], color="k", lw=0.6, label="measured")
            ax.plot(t, mean[:, j], color="tab:blue", lw=0.8, label="mean")
            ax.tick_params(labelsize=6)
            if r == 0:
                ax.set_title(f"{int(round(f * 100))} % of train", fontsize=8)
            if c == 0:
                ax.set_ylabel(f"{names[j]}\nN*m", fontsize=7)
            if r == len(joints) - 1:
                ax.set_xlabel("t (s, test)", fontsize=7)
    axes[0, 0].legend(fontsize=5, loc="upper right")
    fig.suptitle(f"{model}: predictive mean +- 2 std on the test trajectory vs training data", fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def episode_kinds(data) -> dict[int, str]:
    """Episode index -> kind ("fourier", "pick_place", ...) from the data set's metadata
    (``episode_stats``, written by dynlearn_ros.scenarios.vgain_data); empty when absent."""
    stats = data.meta.get("episode_stats")
    if isinstance(stats, str):
        try:
            stats = ast.literal_eval(stats)
        except (ValueError, SyntaxError):
            return {}
    if not isinstance(stats, list):
        return {}
    return {int(e["episode"]): str(e["kind"]) for e in stats if isinstance(e, dict) and "kind" in e}


def _group_stats(y: np.ndarray, mean: np.ndarray, std: np.ndarray, y_std: np.ndarray) -> dict:
    met = gaussian_metrics(y, mean, std, y_std)
    err = np.abs(y - mean)
    met.update({"mean_abs_err_per_joint": err.mean(axis=0).tolist(), "mean_std_per_joint": std.mean(axis=0).tolist(),
                "mean_abs_err": float(err.mean())})
    return met


def compare(args: argparse.Namespace) -> dict:
    """Metrics of existing runs (``--runs name=dir``) on the validation and test splits of one
    data set; with episode kinds, also per kind of test episode (the OOD check)."""
    data_name = args.data[0]
    data, tr, va, te = cli.load_splits(data_name, args.seed)
    xte, yte = inputs_targets(te)
    xva, yva = inputs_targets(va)
    kinds = episode_kinds(data)
    res: dict = {"command": cli.command_line(), "data": data_name, "seed": args.seed, "test_rows": len(te),
                 "val_rows": len(va), "joint_names": list(data.joint_names), "models": {}}
    if kinds:
        res["test_episodes"] = {int(e): kinds.get(int(e), "?") for e in np.unique(te.episode)}
    split_d = getattr(args, "split_distance", None)
    xtr = inputs_targets(tr)[0] if (getattr(args, "novelty", False) or split_d is not None) else None
    for spec in args.runs:
        name, _, run = spec.partition("=")
        if not run:
            name, run = Path(spec).name, spec
        model, extra = load_checkpoint(Path(run) / "checkpoint.pt")
        variants = [(name, None)]
        if getattr(args, "novelty", False):
            from dynlearn_ros.learning.gp.novelty import load_term

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
    from dynlearn_ros.learning.gp.novelty import build_term, nn_sq_distance, predict_with_term

    store = build_term(model, xtr, k, np.zeros(model.cfg.n_joints), 0.0).store
    d = np.sqrt(nn_sq_distance(store, model.normalize_x(xte).double().numpy()))
    mean, std = predict_with_term(model, term, xte)
    ys = model.y_std.numpy()
    return {f"d <= {split:g}": _group_stats(yte[d <= split], mean[d <= split], std[d <= split], ys),
            f"d > {split:g}": _group_stats(yte[d > split], mean[d > split], std[d > split], ys)}


def _compare_entry(model, extra: dict, run: str, term, test_xy, val_xy, te, kinds: dict) -> dict:
    """Validation and test metrics of one run (with the novelty term ``term`` when not None)."""
    from dynlearn_ros.learning.gp.novelty import predict_with_term

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


def compare_markdown(res: dict) -> str:
    names = [n.replace("_joint", " j").replace("joint", "j") for n in res["joint_names"]]
    lines = [f"**{res['data']}** (test rows {res['test_rows']}, val rows {res['val_rows']})", "",
             "| model | test RMSE | test NLL | test 95 % cov. | test mean std | val RMSE | val NLL | val 95 % cov. "
             "| best epoch | train s |", "|---" * 10 + "|"]
    for name, m in res["models"].items():
        t, v = m["test"], m["val"]
        lines.append(f"| {name} | {t['rmse']:.3f} | {t['nll']:.3f} | {t['coverage95']:.3f} | {t['mean_std']:.3f} | "
                     f"{v['rmse']:.3f} | {v['nll']:.3f} | {v['coverage95']:.3f} | {m['best_epoch']} | "
                     f"{m['train_wall_s']} |")
    if any("test_by_kind" in m for m in res["models"].values()):
        lines += ["", "Per kind of test episode: per-joint mean |error| / mean predictive std (N*m), "
                  "95 % coverage", "",
                  "| model | episodes | rows | " + " | ".join(names) + " | 95 % cov. |",
                  "|---" * (len(names) + 4) + "|"]
        for name, m in res["models"].items():
            for kind, g in m.get("test_by_kind", {}).items():
                cells = " | ".join(f"{e:.2f} / {s:.2f}" for e, s in zip(g["mean_abs_err_per_joint"],
                                                                       g["mean_std_per_joint"], strict=True))
                lines.append(f"| {name} | {kind} | {g['n_samples']} | {cells} | {g['coverage95']:.3f} |")
    if any("test_by_distance" in m for m in res["models"].values()):
        lines += ["", "Test rows by distance d of the standardized input to the nearest of 1024 evenly spaced "
                  "training rows: per-joint mean |error| / mean predictive std (N*m), NLL, 95 % coverage", "",
                  "| model | test rows | n | " + " | ".join(names) + " | NLL | 95 % cov. |",
                  "|---" * (len(names) + 5) + "|"]
        for name, m in res["models"].items():
            for part, g in m.get("test_by_distance", {}).items():
                if not g["n_samples"]:
                    continue
                cells = " | ".join(f"{e:.2f} / {s:.2f}" for e, s in zip(g["mean_abs_err_per_joint"],
                                                                       g["mean_std_per_joint"], strict=True))
                lines.append(f"| {name} | {part} | {g['n_samples']} | {cells} | {g['nll']:.3f} | "
                             f"{g['coverage95']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("quality", "fractions", "compare"))
    p.add_argument("--runs", nargs="+", default=[], help="compare: name=run_dir (or run_dir) of trained runs")
    p.add_argument("--data", nargs="+", default=["panda_gaz2019"])
    p.add_argument("--models", nargs="+", default=["svdkl", "svgp", "dkl"])
    p.add_argument("--model", default="svdkl", help="fractions: the model kind")
    p.add_argument("--fractions", type=float, nargs="+", default=[0.2, 0.4, 0.6, 0.8, 1.0])
    p.add_argument("--epochs", type=int, default=None, help="default: the GP defaults of cli.py")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs-root", default="runs/gp")
    p.add_argument("--plot-rows", type=int, default=3000, help="fractions: test rows in the plot")
    p.add_argument("--joints", type=int, nargs="+", default=[0, 1, 3], help="fractions: joints to plot (0-based)")
    p.add_argument("--no-train", action="store_true", help="quality: skip (do not train) missing runs")
    p.add_argument("--split-distance", type=float, default=None,
                   help="compare: also test metrics of rows within / beyond this distance (standardized units) "
                        "of the training inputs")
    p.add_argument("--novelty", action="store_true",
                   help="compare: also a '<name> + novelty' row for runs with a calibrated novelty.json")
    p.add_argument("--png", default=None)
    p.add_argument("--json", default=None)
    p.add_argument("--md", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    res = {"quality": quality, "fractions": fractions, "compare": compare}[args.what](args)
    md = None
    if args.what in ("quality", "compare"):
        md = (quality_markdown if args.what == "quality" else compare_markdown)(res)
    write_outputs(res, md, args.json, args.md)
    return 0


def write_outputs(res: dict, md: str | None, json_path: str | None, md_path: str | None) -> None:
    """Write ``res`` as JSON and ``md`` as markdown where paths are given; print ``md``."""
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(res, indent=1) + "\n")
    if md is not None:
        if md_path:
            Path(md_path).parent.mkdir(parents=True, exist_ok=True)
            Path(md_path).write_text(md)
        print(md)


if __name__ == "__main__":
    sys.exit(main())
