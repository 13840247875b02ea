"""Mean and spread over seeds of the JSON results of ``dynlearn-ros eval`` / ``report inverse-table``.

One JSON per seed (the same command with ``--seed S``). Three layouts are read:

* forward ``eval``: ``models[name]["rmse"]`` maps a horizon ``"h"`` to the pooled RMSE
  (observation units, rad for joint angles); ``models[name]["free_run"]["rmse"]`` the free-run
  RMSE; the previous-state predictor is taken from the models' ``prev_state_rmse`` (and
  ``free_run.prev_state_rmse``) and becomes the reference row "previous state";
* inverse ``eval``: ``models[name]["rmse"]`` the pooled torque RMSE (N*m) and
  ``rmse_per_joint``; reference row "previous torque";
* ``report inverse-table``: ``regimes[r][name]`` per regime r in ("i", "ii"), the row's metrics in
  ``models[name]["test"]``, the reference in ``regime_reference[r]``; one table per regime.

A model's seed is part of its name in those files (``"acrkn-fwd s0"``); :func:`row_key` removes
it so the same model of every seed lands on one row. Every cell is the mean and the sample
standard deviation (ddof 1) over the seeds that have the row, with min and max kept in the
result; the ratio to the reference is computed per seed, then averaged (so it is the mean of the
per-seed ratios, not the ratio of the means).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

#: a seed token in a result's row name: " s0" / " s12" as a word, or "-s0" at the end of a bracket
_SEED_WORD = re.compile(r"\s+s\d+(?=\s|\)|$)")
_SEED_DIR = re.compile(r"-s\d+(?=\])")


def row_key(name: str) -> str:
    """The row name of ``name`` with its seed removed (``"acrkn-fwd s1 [pn-roll-s1]"`` ->
    ``"acrkn-fwd [pn-roll]"``); names without a seed are returned unchanged."""
    return _SEED_DIR.sub("", _SEED_WORD.sub("", name)).strip()


def layout(res: dict) -> str:
    """``"forward"``, ``"inverse"`` or ``"inverse-table"`` for one result dict; ValueError when
    it is none of them (the message says what was looked for)."""
    if "regimes" in res and "models" in res:
        return "inverse-table"
    models = res.get("models")
    if not isinstance(models, dict) or not models:
        raise ValueError("not an eval / inverse-table result: no non-empty 'models' object")
    for m in models.values():
        if isinstance(m.get("rmse"), dict):
            return "forward"
        if isinstance(m.get("rmse"), (int, float)):
            return "inverse"
    raise ValueError("no model has an 'rmse' (a number: inverse, or a horizon -> number object: forward)")


def _seed_table(res: dict, kind: str) -> dict[str, dict[str, dict[str, float]]]:
    """{table: {row: {column: value}}} of one seed's result (tables: "forward", "inverse",
    "regime i", "regime ii")."""
    if kind == "forward":
        rows: dict[str, dict[str, float]] = {}
        prev: dict[str, float] = {}
        for name, m in res["models"].items():
            cells = {f"h={h}": float(v) for h, v in m["rmse"].items()}
            fr = m.get("free_run") or {}
            if "rmse" in fr:
                cells["free run"] = float(fr["rmse"])
            if "nll_1step" in m:
                cells["NLL (1-step)"] = float(m["nll_1step"])
            rows[row_key(name)] = cells
            if not prev and m.get("prev_state_rmse"):
                prev = {f"h={h}": float(v) for h, v in m["prev_state_rmse"].items()}
                if "prev_state_rmse" in fr:
                    prev["free run"] = float(fr["prev_state_rmse"])
        if prev:
            rows["previous state"] = prev
        return {"forward": rows}
    if kind == "inverse":
        rows = {}
        names = res.get("joint_names") or []
        for name, m in res["models"].items():
            per = m.get("rmse_per_joint") or []
            cells = {(names[j] if j < len(names) else f"joint {j + 1}"): float(v) for j, v in enumerate(per)}
            cells["all"] = float(m["rmse"])
            rows[row_key(name)] = cells
        return {"inverse": rows}
    out = {}
    for regime, members in res["regimes"].items():
        out[f"regime {regime}"] = {row_key(name): {"all": float(res["models"][name]["test"]["rmse"])}
                                   for name in members}
    return out


def _reference(res: dict, kind: str, table: str) -> str:
    if kind == "forward":
        return "previous state"
    if kind == "inverse":
        return "previous torque"
    return row_key(res["regime_reference"][table.split()[-1]])


def _stats(values: Sequence[float]) -> dict:
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    std = float(np.std(v, ddof=1)) if v.size >= 2 and finite.size == v.size else math.nan
    return {"mean": float(np.mean(v)), "std": std, "min": float(np.min(v)), "max": float(np.max(v)),
            "n": int(v.size), "values": [float(x) for x in v]}


def aggregate_results(results: Sequence[dict], labels: Sequence[str] | None = None) -> dict:
    """Mean / spread over seeds of ``results`` (one result dict per seed, one layout for all).

    Returns {"layout", "seeds": labels, "tables": {table: {"reference": row name or None,
    "columns": [...], "rows": {row: {column: {"mean", "std", "min", "max", "n", "values"},
    "ratio": {column: same stats of value / reference value per seed}}}, "order": {column: [rows
    by mean, best first]}}}}. ValueError when the results mix layouts or there is none.
    """
    if not results:
        raise ValueError("no results to aggregate")
    kinds = [layout(r) for r in results]
    if len(set(kinds)) != 1:
        raise ValueError(f"results of different layouts cannot be aggregated: {kinds}")
    kind = kinds[0]
    labels = list(labels) if labels is not None else [str(i) for i in range(len(results))]
    per_seed = [_seed_table(r, kind) for r in results]
    tables: dict = {}
    for table in per_seed[0]:
        ref = _reference(results[0], kind, table)
        columns: list[str] = []
        row_names: list[str] = []
        for seed_tables in per_seed:
            for row, cells in seed_tables.get(table, {}).items():
                if row not in row_names:
                    row_names.append(row)
                columns += [c for c in cells if c not in columns]
        rows: dict = {}
        for row in row_names:
            entry: dict = {"cells": {}, "ratio": {}}
            for col in columns:
                vals, ratios = [], []
                for seed_tables in per_seed:
                    cells = seed_tables.get(table, {})
                    if col not in cells.get(row, {}):
                        continue
                    vals.append(cells[row][col])
                    r = cells.get(ref, {}).get(col)
                    if r is not None and r != 0 and col != "NLL (1-step)":
                        ratios.append(cells[row][col] / r)
                if vals:
                    entry["cells"][col] = _stats(vals)
                if ratios:
                    entry["ratio"][col] = _stats(ratios)
            rows[row] = entry
        order = {col: sorted((r for r in rows if col in rows[r]["cells"] and math.isfinite(rows[r]["cells"][col]["mean"])),
                             key=lambda r, c=col: rows[r]["cells"][c]["mean"])
                 for col in columns}
        tables[table] = {"reference": ref if ref in rows else None, "columns": columns, "rows": rows, "order": order}
    return {"layout": kind, "seeds": labels, "tables": tables}
