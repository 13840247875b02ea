"""Mean and spread over seeds of ``dynlearn-ros ik eval --json`` results (``ik aggregate``).

An eval JSON holds ``runs``: one record per model directory with its ``chain``, ``seed`` (the
target seed, = the model's seed in the documented commands) and ``ik[family][mask][solver]``
summaries (evaluation.ik_table). Rows are keyed by (chain, family, mask, solver); every seed that
has the row contributes one value per metric. A cell is the mean and the *sample* standard
deviation (ddof 1; none for one seed) with the per-seed values, so a reader sees the spread and
where it comes from. The same (chain, seed) twice is refused: it would count one run double.

Metrics (success as a fraction 0..1; errors over the targets of one seed):
``success`` (within all the run's starts), ``success_1`` (within the first start, the home pose:
``success_by_starts[0]``), ``pos_mm_median``, ``rot_deg_median``, ``iterations_mean``,
``corrections_mean``.
"""

from __future__ import annotations

import math

from dynlearn_ros.learning.evaluation.aggregate import _stats as seed_stats

METRICS = ("success", "success_1", "pos_mm_median", "rot_deg_median", "iterations_mean", "corrections_mean")


def seed_values(results: list[dict]) -> dict[tuple[str, str, str, str], dict[int, dict[str, float]]]:
    """{(chain, family, mask, solver): {seed: {metric: value}}} of several eval JSONs; ValueError
    for a result without ``runs`` or a (chain, seed) given twice."""
    rows: dict[tuple[str, str, str, str], dict[int, dict[str, float]]] = {}
    seen: set[tuple[str, int]] = set()
    for res in results:
        if not isinstance(res.get("runs"), list):
            raise ValueError("not an `ik eval --json` result: no 'runs' list")
        for run in res["runs"]:
            key = (run["chain"], int(run["seed"]))
            if key in seen:
                raise ValueError(f"{key[0]} seed {key[1]} appears twice")
            seen.add(key)
            for fam, by_mask in run.get("ik", {}).items():
                for mask, by_solver in by_mask.items():
                    for solver, s in by_solver.items():
                        vals = {m: float(s[m]) for m in METRICS if m in s}
                        vals["success_1"] = float(s.get("success_by_starts", [s["success"]])[0])
                        vals["starts"] = float(s.get("starts", 1))
                        rows.setdefault((run["chain"], fam, mask, solver), {})[key[1]] = vals
    return rows


def _stats(values: list[float]) -> dict:
    """{mean, sd (sample, ddof 1; NaN for one value), values, min, max} of one metric over seeds:
    the evaluation aggregate's statistics, under this module's key "sd" (its "std")."""
    st = seed_stats(values)
    return {"mean": st["mean"], "sd": st["std"], "values": st["values"], "min": st["min"], "max": st["max"]}


def aggregate(results: list[dict]) -> list[dict]:
    """One dict per (chain, family, mask, solver) row: its seeds, starts and per metric
    ``{mean, sd, values, min, max}`` (module docstring)."""
    out = []
    for (chain, fam, mask, solver), by_seed in seed_values(results).items():
        seeds = sorted(by_seed)
        starts = sorted({int(by_seed[s]["starts"]) for s in seeds})
        out.append({"chain": chain, "family": fam, "mask": mask, "solver": solver, "seeds": seeds,
                    "starts": starts,
                    **{m: _stats([by_seed[s][m] for s in seeds]) for m in METRICS
                       if all(m in by_seed[s] for s in seeds)}})
    return out


def _cell(st: dict, scale: float = 1.0, digits: int = 1) -> str:
    vals = ", ".join(f"{scale * v:.{digits}f}" for v in st["values"])
    if math.isnan(st["sd"]):
        return f"{scale * st['mean']:.{digits}f} ({vals})"
    return f"{scale * st['mean']:.{digits}f} ± {scale * st['sd']:.{digits}f} ({vals})"


def markdown(rows: list[dict]) -> str:
    """The aggregate as one markdown table (success in %, mean ± sample sd (per-seed values))."""
    lines = ["| arm | family | mask | solver | seeds | starts | success, all starts % | success, 1 start % | "
             "median pos mm | median rot deg | mean iterations |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['chain']} | {r['family']} | {r['mask']} | {r['solver']} | "
                     f"{', '.join(map(str, r['seeds']))} | {'/'.join(map(str, r['starts']))} | "
                     f"{_cell(r['success'], 100)} | {_cell(r['success_1'], 100)} | "
                     f"{_cell(r['pos_mm_median'], 1, 2)} | {_cell(r['rot_deg_median'], 1, 2)} | "
                     f"{_cell(r['iterations_mean'], 1, 0)} |")
    return "\n".join(lines) + "\n"
