"""``dynlearn-ros report aggregate``: mean +- spread over seeds of eval / inverse-table JSONs.

    dynlearn-ros report aggregate runs/ep/eval-s0.json runs/ep/eval-s1.json runs/ep/eval-s2.json \
        --md seeds.md --json seeds.json

Per table of the results (forward eval, inverse eval, or the two regimes of ``report
inverse-table``): every row's cells as mean +- sample std over the seeds, the per-seed ratio to
the reference row (previous state / previous torque / the regime's reference) as mean +- std, and
the order of the rows by mean in every column. The arithmetic is in
:mod:`dynlearn_ros.learning.evaluation.aggregate`.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", help="one result JSON per seed (eval --json / report inverse-table --json)")
    p.add_argument("--labels", nargs="+", help="a name per file for the table's caption (default: the file names)")
    p.add_argument("--digits", type=int, default=None,
                   help="decimals of the cells (default 4 for forward tables, 3 for torque tables)")
    p.add_argument("--json", help="write the aggregate (with every seed's value, min, max) here")
    p.add_argument("--md", help="write the markdown tables here (they are printed too)")


def _cell(s: dict | None, digits: int) -> str:
    """``mean ± std`` of one stats dict; ``mean`` alone for one seed, ``-`` when absent."""
    if s is None:
        return "-"
    m, sd = s["mean"], s["std"]
    if not math.isfinite(m) or abs(m) >= 10 ** (8 - digits):
        return f"{m:.3g}" + ("" if s["n"] < 2 else f" (max {s['max']:.3g})")
    return f"{m:.{digits}f}" if s["n"] < 2 or not math.isfinite(sd) else f"{m:.{digits}f} ± {sd:.{digits}f}"


def aggregate_markdown(agg: dict, digits: int | None = None) -> str:
    """The markdown of :func:`~dynlearn_ros.learning.evaluation.aggregate.aggregate_results`'s
    result: per table, the cells, the ratio to the reference, the order by mean."""
    from dynlearn_ros.reporting.markdown import md_table

    d = digits if digits is not None else (4 if agg["layout"] == "forward" else 3)
    lines: list[str] = []
    seeds = ", ".join(agg["seeds"])
    for name, t in agg["tables"].items():
        cols, ref = t["columns"], t["reference"]
        lines += [f"**{name}**: mean ± sample std over {len(agg['seeds'])} results ({seeds}); "
                  "seeds = how many of them have the row", ""]
        rows = [[row, max(c["n"] for c in e["cells"].values()), *(_cell(e["cells"].get(c), d) for c in cols)]
                for row, e in t["rows"].items()]
        lines += [md_table(["model", "seeds", *cols], rows), ""]
        rcols = [c for c in cols if any(c in e["ratio"] for e in t["rows"].values())]
        if ref is not None and rcols:
            lines += [f"Ratio to '{ref}' (per seed, then mean ± std):", ""]
            rows = [[row, *(_cell(e["ratio"].get(c), 2) for c in rcols)]
                    for row, e in t["rows"].items() if row != ref]
            lines += [md_table(["model", *rcols], rows), ""]
        lines += ["Order by mean, best first:", ""]
        lines += [f"* {c}: " + " < ".join(t["order"][c]) for c in cols if c != "NLL (1-step)" or t["order"][c]]
        lines.append("")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from dynlearn_ros.learning.evaluation.aggregate import aggregate_results
    from dynlearn_ros.reporting.markdown import write_outputs

    if args.labels and len(args.labels) != len(args.files):
        raise SystemExit(f"--labels: {len(args.labels)} names for {len(args.files)} files")
    results = []
    for f in args.files:
        try:
            results.append(json.loads(Path(f).read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise SystemExit(f"{f}: {exc}") from None
    try:
        agg = aggregate_results(results, args.labels or [Path(f).name for f in args.files])
    except (ValueError, KeyError) as exc:
        raise SystemExit(f"cannot aggregate: {exc}") from None
    agg["files"] = [str(f) for f in args.files]
    write_outputs(agg, aggregate_markdown(agg, args.digits), args.json, args.md)
    return 0
