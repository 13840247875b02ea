"""``dynlearn-ros faults``: run the fault-injection matrix (docs/safety.md) and print its table (the
soak run is ``dynlearn-ros bench soak``)."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", default=None, metavar="PATH", help="write every row's checks and figures here")
    parser.add_argument("--rows", nargs="*", default=None, metavar="ROW", help="run only these rows (default: all)")
    parser.add_argument("--fast", action="store_true", help="leave out the slow rows (as CI does)")
    parser.add_argument("--list", action="store_true", help="list the rows and exit")
    parser.add_argument("--workdir", default=None, help="keep the rows' logs here (default: a temporary directory)")


def run(args: argparse.Namespace) -> int:
    from dynlearn_ros.faults.matrix import ROWS, row_names, run_matrix, table

    if args.list:
        for r in ROWS:
            print(f"{r.name:32s} item {r.item:5s} {'slow ' if r.slow else ''}{r.fault}")
        return 0
    known = row_names()
    unknown = [n for n in args.rows or () if n not in known]
    if unknown:
        raise ValueError(f"unknown rows {unknown}; see --list")
    names = args.rows or row_names(include_slow=not args.fast)

    def progress(res) -> None:
        print(f"{'OK    ' if res.ok else 'NOT OK'} {res.row} ({res.seconds:.1f} s)" + ("" if res.ok else f": {res.error}"),
              flush=True)

    with tempfile.TemporaryDirectory(prefix="dynlearn_faults_") as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        results = run_matrix(names, workdir, progress)
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": [r.as_dict() for r in results],
                                               "tried": len(results), "ok": sum(r.ok for r in results)}, indent=1))
    return 0 if all(r.ok for r in results) else 1
