"""Markdown tables of the learning results (the dicts returned by ``dynlearn_ros.learning.evaluation``).

Units: torque RMSE, |error| and std in N*m; forward RMSE in the observation's units (rad);
NLL as each result states (standardized by the training torque std for the GP and inverse
tables, N*m for the sequence models' inverse table).
"""

from __future__ import annotations

from collections.abc import Sequence

from dynlearn_ros.reporting.markdown import md_table


def _short(name: str) -> str:
    """A joint name short enough for a table column (``panda_joint3`` -> ``panda j3``)."""
    return name.replace("_joint", " j").replace("joint", "j")


def _f(d: dict, key: str, fmt: str = ".3f") -> str:
    return format(d[key], fmt) if key in d else "-"


def sequence_eval_table(results: dict, direction: str, joint_names: Sequence[str]) -> str:
    """``dynlearn-ros eval`` of sequence models. Forward: RMSE per horizon h (rows), free-run RMSE
    over whole test episodes, NLL of the one-step difference, epochs; plus the previous-state
    predictor. Inverse: RMSE per joint, all
    joints pooled, NLL (N*m), fraction within 2 std."""
    if direction == "forward":
        hs = None
        for res in results["models"].values():
            hs = list(res["rmse"])
            break
        rows, prev, prev_free = [], None, None
        for name, res in results["models"].items():
            nll = f"{res['nll_1step']:.3f}" if "nll_1step" in res else "-"
            ep = f"{res['epochs']} ({res['best_epoch']})" if "epochs" in res else "-"
            free = f"{res['free_run']['rmse']:.4f}" if "free_run" in res else "-"
            rows.append([name, *(f"{res['rmse'][h]:.4f}" for h in hs), free, nll, ep])
            prev = res.get("prev_state_rmse", prev)
            prev_free = res.get("free_run", {}).get("prev_state_rmse", prev_free)
        if prev is not None:
            rows.append(["previous state", *(f"{prev[h]:.4f}" for h in hs),
                         "-" if prev_free is None else f"{prev_free:.4f}", "-", "-"])
        header = ["model", *(f"h={h}" for h in hs), "free run", "NLL (1-step)", "epochs (best)"]
    else:
        rows = []
        for name, res in results["models"].items():
            nll = f"{res['nll']:.3f}" if "nll" in res else "-"
            w2 = f"{res['within_2std']:.3f}" if "within_2std" in res else "-"
            rows.append([name, *(f"{v:.3f}" for v in res["rmse_per_joint"]), f"{res['rmse']:.3f}", nll, w2])
        header = ["model", *joint_names, "all", "NLL", "within 2 std"]
    return md_table(header, rows) + "\n"


def gp_eval_table(results: dict, joint_names: Sequence[str]) -> str:
    """``dynlearn-ros eval --model svdkl|svgp|dkl``: RMSE per joint, all (pooled RMSE), NLL
    (standardized), 95 % coverage, mean predictive std."""
    rows = [[name, *(f"{v:.3f}" for v in res["rmse_per_joint"]), f"{res['rmse']:.3f}", f"{res['nll']:.3f}",
             f"{res['coverage95']:.3f}", f"{res['mean_std']:.3f}"] for name, res in results["models"].items()]
    return md_table(["model", *joint_names, "all", "NLL", "95 % coverage", "mean std"], rows) + "\n"


def gp_quality_table(res: dict) -> str:
    """``dynlearn-ros report gp-quality``: per data set, test and validation metrics of each GP
    kind and the analytic model."""
    lines: list[str] = []
    for data_name, entry in res["data"].items():
        names = entry["joint_names"]
        header = ["model", *(_short(n) for n in names), "all", "NLL", "95 % cov.", "val RMSE", "val NLL",
                  "val 95 % cov.", "train rows", "train s"]
        rows = []
        for model, m in entry["models"].items():
            if m.get("not_run"):
                rows.append([model, *("-" for _ in names), "not run", *("-" for _ in range(7))])
                continue
            val = [f"{m[k]:.3f}" if k in m else "-" for k in ("val_rmse", "val_nll", "val_coverage95")]
            rows.append([model, *(f"{v:.3f}" for v in m["rmse_per_joint"]), f"{m['rmse']:.3f}", _f(m, "nll"),
                         _f(m, "coverage95"), *val, m.get("train_rows", "-"), m.get("train_wall_s", "-")])
        lines += [f"**{data_name}** (test rows: {entry['test_rows']})", "", md_table(header, rows), ""]
    return "\n".join(lines)


def _err_std_cells(g: dict) -> list[str]:
    return [f"{e:.2f} / {s:.2f}" for e, s in zip(g["mean_abs_err_per_joint"], g["mean_std_per_joint"], strict=True)]


def gp_compare_table(res: dict) -> str:
    """``dynlearn-ros report gp-compare``: test / validation metrics of each run; per kind of
    test episode and by distance to the training inputs when the result has them."""
    names = [_short(n) for n in res["joint_names"]]
    rows = []
    for name, m in res["models"].items():
        t, v = m["test"], m["val"]
        rows.append([name, f"{t['rmse']:.3f}", f"{t['nll']:.3f}", f"{t['coverage95']:.3f}", f"{t['mean_std']:.3f}",
                     f"{v['rmse']:.3f}", f"{v['nll']:.3f}", f"{v['coverage95']:.3f}", m["best_epoch"],
                     m["train_wall_s"]])
    lines = [f"**{res['data']}** (test rows {res['test_rows']}, val rows {res['val_rows']})", "",
             md_table(["model", "test RMSE", "test NLL", "test 95 % cov.", "test mean std", "val RMSE", "val NLL",
                       "val 95 % cov.", "best epoch", "train s"], rows)]
    if any("test_by_kind" in m for m in res["models"].values()):
        rows = [[name, kind, g["n_samples"], *_err_std_cells(g), f"{g['coverage95']:.3f}"]
                for name, m in res["models"].items() for kind, g in m.get("test_by_kind", {}).items()]
        lines += ["", "Per kind of test episode: per-joint mean |error| / mean predictive std (N*m), "
                  "95 % coverage", "", md_table(["model", "episodes", "rows", *names, "95 % cov."], rows)]
    if any("test_by_distance" in m for m in res["models"].values()):
        rows = [[name, part, g["n_samples"], *_err_std_cells(g), f"{g['nll']:.3f}", f"{g['coverage95']:.3f}"]
                for name, m in res["models"].items() for part, g in m.get("test_by_distance", {}).items()
                if g["n_samples"]]
        lines += ["", "Test rows by distance d of the standardized input to the nearest of 1024 evenly spaced "
                  "training rows: per-joint mean |error| / mean predictive std (N*m), NLL, 95 % coverage", "",
                  md_table(["model", "test rows", "n", *names, "NLL", "95 % cov."], rows)]
    return "\n".join(lines) + "\n"


def inverse_table(res: dict) -> str:
    """``dynlearn-ros report inverse-table``: every model family on the same test rows, one
    definition of every column ("all" = RMSE pooled over rows and joints), one table per regime
    ((i) controller form, (ii) measured previous torque; "x ref." = all / the regime's reference
    row's all); per kind of test episode when the data has kinds."""
    names = [n.replace("lbr_iiwa_joint_", "j").replace("_joint", " j") for n in res["joint_names"]]
    lines = [f"**{res['data']}**: {res['test_rows']} test rows (rows 1..T-2 of test episodes "
             f"{', '.join(map(str, res['test_episodes']))}), {res['val_rows']} validation rows; "
             "RMSE in N*m, all = pooled over rows and joints, NLL standardized by the training torque std per joint"]
    titles = {"i": "(i) controller form: no measured torque, each sequence model reads its own previous output",
              "ii": "(ii) the measured previous torque tau_{t-1} read"}
    for regime in ("i", "ii"):
        rows = []
        for name, ratio in res["regimes"][regime].items():
            m = res["models"][name]
            t, v = m["test"], m.get("val", {})
            ep = f"{m['best_epoch']} / {m['epochs']}" if m.get("best_epoch") is not None else "-"
            secs = f"{m['train_wall_s']:.0f}" if isinstance(m.get("train_wall_s"), (int, float)) else "-"
            rows.append([name, m["inputs"], *(f"{e:.3f}" for e in t["rmse_per_joint"]), f"{t['rmse']:.3f}",
                         "-" if ratio is None else f"{ratio:.2f}",
                         _f(t, "nll"), _f(t, "coverage95"), _f(t, "mean_std"), _f(v, "rmse"), _f(v, "nll"),
                         _f(v, "coverage95"), ep, secs])
        lines += ["", f"{titles[regime]} (x ref. = all / all of '{res['regime_reference'][regime]}')", "",
                  md_table(["model", "inputs", *names, "all", "x ref.", "NLL", "95 % cov.", "mean std", "val all",
                            "val NLL", "val 95 % cov.", "best epoch / epochs", "train s"], rows)]
    kinds = res.get("test_rows_by_kind")
    if kinds:
        ks = sorted(kinds)
        rows = [[name, *(c for k in ks for c in (f"{m['test_by_kind'][k]['rmse']:.3f}",
                                                _f(m["test_by_kind"][k], "nll"),
                                                _f(m["test_by_kind"][k], "coverage95")))]
                for name, m in res["models"].items()]
        lines += ["", "Per kind of test episode (rows: " + ", ".join(f"{k} {kinds[k]}" for k in ks)
                  + "): all (pooled RMSE) / NLL / 95 % coverage", "",
                  md_table(["model", *(c for k in ks for c in (f"{k} RMSE", f"{k} NLL", f"{k} 95 % cov."))], rows)]
    return "\n".join(lines) + "\n"
