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

An IK model directory (kind ``ik_pose_chain_lstm``, ``dynlearn-ros ik export``) is checked as the
IK node loads it (chain, joint names, weights that fit and are finite) and, if it has a
``model.onnx``, by its parity check again (onnxruntime vs torch on the recorded golden
configurations, within the recorded tolerance); it has one format, so migrate and convert refuse it.

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


def _ik_kind(path: Path) -> bool:
    """True for an IK model directory (its metadata names the pose-chain kind)."""
    from dynlearn_ros.learning.ik.store import KIND

    try:
        return json.loads((path / "metadata.json").read_text()).get("kind") == KIND
    except (OSError, ValueError, AttributeError):
        return False


def check_ik(path: Path) -> str:
    """Check an IK model directory (module docstring); the summary, or ValueError with the reason."""
    import numpy as np

    from dynlearn_ros.learning.ik.onnx_export import ONNX_FILE, PARITY_TOL, parity
    from dynlearn_ros.learning.ik.store import load

    model, chain, meta = load(path)   # IKModelError (a ValueError) says what is wrong
    lines = [f"{path}: OK  {meta['kind']} (IK pose-chain model) version {meta.get('version')}, chain "
             f"{chain.name}, {chain.n} DoF, hidden {meta['model'].get('hidden')} x {meta['model'].get('layers')}, "
             f"outputs {meta['model'].get('outputs', 'absolute')}"]
    fwd = (meta.get("metrics") or {}).get("forward") or {}
    if fwd.get("pos_mm_mean"):
        lines.append(f"  forward  end effector {fwd['pos_mm_mean'][-1]:.3g} mm / {fwd['rot_deg_mean'][-1]:.3g} deg "
                     "(mean, at training)")
    onnx_meta = meta.get("onnx")
    if onnx_meta is None:
        lines.append("  onnx     none (the IK node runs the torch model)")
    else:
        rec = onnx_meta.get("parity", {})
        tol = float(rec.get("tol", PARITY_TOL))
        onnx_file = path / onnx_meta.get("file", ONNX_FILE)
        if not onnx_file.is_file():
            raise ValueError(f"{path}: metadata names {onnx_file.name!r}, which is missing")
        err = parity(model, chain, onnx_file,
                     int(rec.get("golden_configurations", 16)), int(rec.get("seed", 0)))
        if not np.isfinite(err) or err > tol:
            raise ValueError(f"{path}: model.onnx differs from model.pt: onnxruntime vs torch max |diff| "
                             f"{err:.3g} > {tol:g} (a graph from other weights, or a damaged file)")
        lines.append(f"  onnx     parity again: max |diff| {err:.2g} (tolerance {tol:g}; at export "
                     f"{float(rec.get('max_abs_diff', float('nan'))):.2g})")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from dynlearn_ros.runtime.errors import ModelLoadError
    from dynlearn_ros.runtime.migrate import migrate_model_dir
    from dynlearn_ros.runtime.validate import validate_model_dir

    failed = 0
    for d in args.dirs:
        path = _resolve(d)
        if _ik_kind(path):
            if args.action != "check":
                print(f"{path}: REFUSED: an IK model directory has one format: nothing to {args.action}")
                failed += 1
                continue
            try:
                print(check_ik(path))
            except (ValueError, OSError) as exc:
                print(f"{path}: REFUSED: {exc}")
                failed += 1
            continue
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
