"""``dynlearn-ros model <action> DIR...``: check, migrate or convert model directories (docs/models.md).

Actions:
  check    validate each directory as every load does (files, metadata schema, initializers,
           graph signature, golden replay) and print its metadata summary and the replay's
           figures; exit 1 if any is refused (the reason is printed).
  migrate  rewrite format-1 directories in the current schema, model.onnx byte-identical
           (``dynlearn_ros.runtime.migrate``), then check them.
  convert  rewrite a torch-exported ac-RKN inverse step as the hand-built lean graph
           (``dynlearn_ros.learning.export.acrkn_graph``; refused unless a ``--check-steps``
           rollout of both graphs agrees), next model_version, then check it.

    dynlearn-ros model check models/*
    dynlearn-ros model migrate models/acrkn_panda_inv

A relative DIR that does not exist from the current directory is looked up under the package's
models/.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ACTIONS = ("check", "migrate", "convert")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=ACTIONS, help="check: validate and summarize; migrate: format 1 -> "
                        "current; convert: ac-RKN inverse torch export -> lean graph")
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="model directories")
    parser.add_argument("--json", action="store_true", help="print the full validated metadata as JSON")
    parser.add_argument("--check-steps", type=int, default=250,
                        help="convert: rollout length both graphs must agree over (default 250)")


def _resolve(d: str) -> Path:
    path = Path(d)
    if path.exists() or path.is_absolute():
        return path
    from dynlearn_ros.paths import models_dir

    cand = models_dir() / path
    return cand if cand.exists() else path


def summary(model_dir: Path, worst: dict[str, float], meta) -> str:
    """A few lines describing a validated model directory."""
    p = meta.provenance
    sb = meta.sigma_bounds
    lines = [f"{model_dir}: OK  {meta.kind} ({meta.model}, {meta.role}) model_version {meta.model_version}, "
             f"format {meta.format_version}",
             f"  joints   {', '.join(meta.joint_names)}; dt {meta.dt if meta.dt is not None else 'none (memoryless)'}",
             "  inputs   " + ", ".join(f"{t.name}{list(t.shape)}" for t in meta.inputs),
             "  outputs  " + ", ".join(f"{t.name}{list(t.shape)}" for t in meta.outputs),
             "  sigma    " + ("none" if sb is None else
                              f"n {[round(v, 4) for v in sb.sigma_n]} / f {[round(v, 4) for v in sb.sigma_f]} N*m"),
             f"  made     {p.created_utc} by {p.command or '(command not recorded)'}",
             f"  data     {p.data or '?'} (hash {p.data_hash or '?'}), package {p.package_version}",
             f"  golden   {meta.golden.steps} steps, sha256 {meta.golden.sha256[:16]}..., replay max deviation / "
             "tolerance " + ", ".join(f"{k} {v:.3g}" for k, v in worst.items())]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from dynlearn_ros.runtime.errors import ModelLoadError
    from dynlearn_ros.runtime.migrate import migrate_model_dir
    from dynlearn_ros.runtime.validate import validate_model_dir

    failed = 0
    for d in args.dirs:
        path = _resolve(d)
        try:
            if args.action == "migrate":
                res = migrate_model_dir(path)
                print(f"{path}: migrated, model.onnx sha256 {res['model_onnx_sha256'][:16]}... unchanged")
            elif args.action == "convert":
                from dynlearn_ros.learning.export.acrkn_graph import convert_model_dir

                diff = convert_model_dir(path, args.check_steps)
                print(f"{path}: converted, rollout max relative difference {diff}")
            checked = validate_model_dir(path)
        except (ModelLoadError, ValueError, OSError) as exc:
            print(f"{path}: REFUSED: {exc}")
            failed += 1
            continue
        print(summary(path, checked.golden_worst, checked.metadata))
        if args.json:
            print(json.dumps(checked.metadata.to_dict(), indent=1))
    return 1 if failed else 0
