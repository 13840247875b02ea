"""Migrate a format-1 model directory to the one schema (format 2), ``model.onnx`` untouched.

Format 1 had two dialects: the ac-RKN exporter's (``direction``, ``version`` = package version,
``how``, ``data_hash``, ``created``, sigma_n / sigma_f at the top level) and the SVDKL exporter's
(``created_utc``, ``export_command``, ``training``, ``training_data_hash``, a golden batch of
gpytorch float64 outputs inside metadata.json). :func:`migrate_model_dir` maps every key of
either into :class:`~dynlearn_ros.runtime.metadata.ModelMetadata` (keys with no place of their
own are kept under ``provenance.details.format1``), records a golden sequence computed by the
unchanged graph (SVDKL: the old golden inputs, after checking the graph still reproduces the old
gpytorch outputs within the tolerance its loader used; ac-RKN: a seeded sequence from the
initial belief, :func:`~dynlearn_ros.runtime.golden.acrkn_golden_inputs`), writes the directory
whole (:func:`~dynlearn_ros.runtime.model_store.publish_model_dir`, validated before the swap) and
checks ``model.onnx`` kept its sha256. Recorded in ``provenance.details.history``.

    dynlearn-ros model migrate models/acrkn_panda_inv models/svdkl_panda
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from dynlearn_ros import __version__
from dynlearn_ros.runtime.errors import ModelLoadError
from dynlearn_ros.runtime.golden import acrkn_golden_inputs
from dynlearn_ros.runtime.metadata import METADATA_FILE, MODEL_FILE, Provenance, SigmaBounds, TensorSpec
from dynlearn_ros.runtime.model_store import finish_model_dir, publish_model_dir
from dynlearn_ros.runtime.onnx_step import OnnxStep
from dynlearn_ros.runtime.validate import validate_model_dir

#: the SVDKL loader's format-1 golden check (runtime/svdkl.py before format 2): mean within 1 %
#: of the predictive std, variance within 0.1 % relative, against gpytorch's float64 outputs
V1_SVDKL_MEAN_TOL_STD = 1e-2
V1_SVDKL_VAR_RTOL = 1e-3
ACRKN_INVERSE_SIGMA_SOURCE = "5th / 95th percentile per joint of the predicted std on the test split"
SVDKL_SIGMA_SOURCE = "likelihood noise std / kernel signal std per joint (GPInverseModel.sigma_n_f)"


def _split_how(how: str) -> dict[str, str]:
    """'data: A | trained: B | exported: C' -> {data_command: A, train_command: B, command: C}."""
    out = {}
    for part in how.split(" | "):
        key, _, value = part.partition(": ")
        out[{"data": "data_command", "trained": "train_command", "exported": "command"}.get(key, key)] = value.strip()
    return out


def _history(old: dict, extra: dict) -> dict:
    return {"event": "migrated from format 1", "date_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": "dynlearn-ros model migrate DIR (dynlearn_ros.runtime.migrate)",
            "package_version": __version__, "format1_keys": sorted(old), **extra}


def _acrkn(old: dict, model_dir: Path) -> tuple[dict, dict, dict, dict]:
    from dynlearn_ros.runtime.acrkn import ACRKN_TENSORS

    old = dict(old)
    role = old.pop("direction")
    how = _split_how(old.pop("how", ""))
    desc = ACRKN_TENSORS[role]
    tensors = {k: tuple(TensorSpec(t["name"], tuple(t["shape"]), "float32", desc.get(t["name"], ""))
                        for t in old.pop(k)) for k in ("inputs", "outputs")}
    sn, sf = old.pop("sigma_n", None), old.pop("sigma_f", None)
    norm = {"applied_in_graph": True, **old.pop("normalization")}
    specific = {k: old.pop(k) for k in ("model_config", "initial_belief", "belief_dim", "opset", "best_epoch",
                                        "obs_layout", "act_layout") if k in old}
    specific["graph"] = old.pop("graph", "torch_export")
    if "graph_conversion" in old:
        specific["graph_conversion"] = old.pop("graph_conversion")
    if role == "inverse":
        specific["desired_next"] = old.pop("desired_next", "increment")
    details = {k: v for k, v in how.items() if k != "command" and v}
    details |= {"torch": old.pop("torch", None), "python": old.pop("python", None)}
    fields = {
        "model_version": 1, "kind": old.pop("kind"), "model": old.pop("model"), "role": role,
        "joint_names": tuple(old.pop("joint_names")), "dt": old.pop("dt"),
        "inputs": tensors["inputs"], "outputs": tensors["outputs"],
        "sigma_bounds": None if sn is None else SigmaBounds(tuple(sn), tuple(sf), ACRKN_INVERSE_SIGMA_SOURCE),
        "normalization": norm,
        "provenance": Provenance(how.get("command", ""), str(old.pop("data", "")), old.pop("data_hash", ""),
                                 old.pop("created").replace("+00:00", "Z"), old.pop("version"), old.pop("train_config"), details),
        "metrics": old.pop("metrics"), "specific": specific,
    }
    old.pop("format_version")
    shapes = {t.name: t.shape for t in fields["inputs"]}
    golden = acrkn_golden_inputs(shapes, norm, specific["initial_belief"], role)
    return fields, golden, old, {}


def _svdkl(old: dict, model_dir: Path) -> tuple[dict, dict, dict, dict]:
    from dynlearn_ros.runtime.svdkl import SVDKL_TENSORS

    old = dict(old)
    g = old.pop("golden")
    gx = np.asarray(g["x"], dtype=np.float64)
    gm, gv = np.asarray(g["mean"], dtype=np.float64), np.asarray(g["var"], dtype=np.float64)
    # the unchanged graph must still reproduce the gpytorch reference as the format-1 loader checked
    step = OnnxStep(model_dir / MODEL_FILE)
    worst_m = worst_v = 0.0
    for i in range(gx.shape[0]):
        step.inputs["x"][0] = gx[i]
        step.run()
        m, v = step.outputs["mean"][0].astype(np.float64), step.outputs["var"][0].astype(np.float64)
        worst_m = max(worst_m, float(np.max(np.abs(m - gm[i]) / np.sqrt(gv[i]))))
        worst_v = max(worst_v, float(np.max(np.abs(v - gv[i]) / gv[i])))
    if worst_m > V1_SVDKL_MEAN_TOL_STD or worst_v > V1_SVDKL_VAR_RTOL:
        raise ModelLoadError(f"{model_dir}: the graph no longer reproduces its format-1 golden batch "
                             f"(mean {worst_m:.3g} std, var {worst_v:.3g} relative): not migrated")
    old.pop("inputs"), old.pop("outputs")
    n = len(old["joint_names"])
    inputs = (TensorSpec("x", (1, 3 * n), "float32", SVDKL_TENSORS["x"]),)
    outputs = tuple(TensorSpec(k, (1, n), "float32", SVDKL_TENSORS[k]) for k in ("mean", "var"))
    training = old.pop("training")
    data_hash = old.pop("training_data_hash", None) or training.get("data_hash", "")
    specific = {k: old.pop(k) for k in ("config", "opset", "ir_version", "jitter", "novelty") if k in old}
    fields = {
        "model_version": 1, "kind": old.pop("kind"), "model": old.pop("model_type"), "role": "inverse",
        "joint_names": tuple(old.pop("joint_names")), "dt": None, "inputs": inputs, "outputs": outputs,
        "sigma_bounds": SigmaBounds(tuple(old.pop("sigma_n")), tuple(old.pop("sigma_f")), SVDKL_SIGMA_SOURCE),
        "normalization": old.pop("normalization"),
        "provenance": Provenance(old.pop("export_command"), str(training.get("data", "")), data_hash,
                                 old.pop("created_utc"), "unrecorded (format 1 SVDKL metadata had none)",
                                 training, {"train_command": training.get("command", "")}),
        "metrics": old.pop("metrics"), "specific": specific,
    }
    old.pop("format_version")
    golden = {"x": gx[:, None, :].astype(np.float32)}
    check = {"gpytorch_reference_check": {"mean_max_over_std": worst_m, "var_max_rel": worst_v,
                                          "bounds": [V1_SVDKL_MEAN_TOL_STD, V1_SVDKL_VAR_RTOL]}}
    return fields, golden, old, {"reference": {"mean": gm, "var": gv}, "history": check}


def migrate_model_dir(model_dir: Path | str) -> dict:
    """Rewrite a format-1 ``model_dir`` in the format-2 schema (module docstring). Returns a
    summary (sha256 of model.onnx, the golden replay's figures, the migration record); raises
    ModelLoadError / ValueError and leaves the directory untouched if anything fails."""
    model_dir = Path(model_dir)
    try:
        old = json.loads((model_dir / METADATA_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{model_dir}/{METADATA_FILE}: unreadable: {exc}") from exc
    if old.get("format_version") != 1:
        raise ModelLoadError(f"{model_dir}: format_version {old.get('format_version')!r}, only format 1 migrates")
    onnx_bytes = (model_dir / MODEL_FILE).read_bytes()
    sha = hashlib.sha256(onnx_bytes).hexdigest()
    build = {"acrkn": _acrkn, "svdkl": _svdkl}.get(old.get("kind"))
    if build is None:
        raise ModelLoadError(f"{model_dir}: format-1 kind {old.get('kind')!r} unknown")
    fields, golden, leftover, extra = build(old, model_dir)
    prov: Provenance = fields["provenance"]
    details = dict(prov.details)
    if leftover:
        details["format1"] = leftover
    details["history"] = [_history(old, {"model_onnx_sha256": sha, **extra.get("history", {})})]
    fields["provenance"] = Provenance(prov.command, prov.data, prov.data_hash, prov.created_utc,
                                      prov.package_version, prov.train_config, details)
    state = {"belief": "belief_out"} if "belief" in {t.name for t in fields["inputs"]} else {}
    kept = [f for f in model_dir.iterdir() if f.is_file() and f.name not in (MODEL_FILE, METADATA_FILE)]
    if kept:
        raise ModelLoadError(f"{model_dir}: unexpected files {[f.name for f in kept]} in a format-1 directory")

    def fill(tmp: Path) -> None:
        (tmp / MODEL_FILE).write_bytes(onnx_bytes)
        finish_model_dir(tmp, fields, golden, state, extra.get("reference"))

    publish_model_dir(model_dir, fill, check=validate_model_dir)
    if hashlib.sha256((model_dir / MODEL_FILE).read_bytes()).hexdigest() != sha:
        raise RuntimeError(f"{model_dir}: model.onnx changed during migration")  # cannot happen: copied bytes
    checked = validate_model_dir(model_dir)
    return {"model_dir": str(model_dir), "model_onnx_sha256": sha, "golden_worst": checked.golden_worst,
            "history": details["history"][-1]}
