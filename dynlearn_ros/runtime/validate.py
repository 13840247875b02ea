"""The one validator every model load goes through (and every export, before it is published).

:func:`open_model_dir` checks, in this order, and raises a
:class:`~dynlearn_ros.runtime.errors.ModelLoadError` (or a subclass) naming the file and reason:

1. files: ``model.onnx`` and ``metadata.json`` present;
2. metadata: the schema of :mod:`dynlearn_ros.runtime.metadata` (keys, types, supported
   ``format_version``), and the expected kind / role when the caller names one;
3. normalization folded into the graph (these runtimes apply none of their own);
4. the graph file: parsed with ``onnx``, every initializer scanned for NaN / inf;
5. one onnxruntime session (:func:`dynlearn_ros.runtime.onnx_step.make_session` via
   :class:`~dynlearn_ros.runtime.onnx_step.OnnxStep`; for an online version, the cached session
   of its structure with its own parameters bound, :mod:`dynlearn_ros.runtime.shared_graph`),
   its inputs / outputs equal to the metadata's (names, static shapes, float32);
6. the golden sequence (:mod:`dynlearn_ros.runtime.golden`): file hash, arrays, replay within
   tolerance;
7. a model with an analytic base (metadata ``base``, :mod:`dynlearn_ros.runtime.analytic_base`):
   the URDF (the caller's ``urdf``, else the robot table's URDF of the robot the base names)
   reproduces the metadata's probe torques, and the golden sequence's whole torque (graph mean
   + RNEA of that URDF at the golden inputs) matches the exporter's float64 record
   ``ref.full_mean`` (a missing, doubled or sign-flipped base misses it by the RNEA's size).

Joint mapping (:func:`joint_permutation`) is checked by the predictors against the caller's joints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dynlearn_ros.runtime import shared_graph
from dynlearn_ros.runtime.errors import GoldenMismatchError, JointMismatchError, ModelLoadError
from dynlearn_ros.runtime.golden import load_golden, replay_golden
from dynlearn_ros.runtime.metadata import METADATA_FILE, MODEL_FILE, ModelMetadata
from dynlearn_ros.runtime.onnx_step import OnnxStep
from dynlearn_ros.runtime.shared_graph import ParamStep, is_online_graph


@dataclass
class ValidatedModel:
    """A checked model directory: its metadata, a ready session with bound buffers, and the
    golden replay's figures (per output, max deviation / tolerance, all <= 1)."""

    model_dir: Path
    metadata: ModelMetadata
    step: OnnxStep
    golden_worst: dict[str, float]
    #: the URDF the analytic base was checked against (None: the model has no base)
    base_urdf: str | None = None


def joint_permutation(model_names: Sequence[str], requested: Sequence[str]) -> np.ndarray:
    """perm (n,) int64 with ``requested[perm[j]] == model_names[j]``; JointMismatchError unless
    ``requested`` is a permutation of ``model_names`` (same set, no duplicates)."""
    model_names, requested = list(model_names), list(requested)
    if sorted(model_names) != sorted(requested) or len(set(requested)) != len(requested):
        raise JointMismatchError(f"model joints {model_names} do not match the requested joints {requested} "
                                 "(a model is used only for the same joint set, in any order)")
    return np.array([requested.index(name) for name in model_names], dtype=np.int64)


def scan_initializers(path: Path):
    """Parse ``path`` with onnx and refuse a graph whose initializers hold NaN or inf; returns
    the parsed graph (onnx.ModelProto)."""
    import onnx
    from onnx import numpy_helper

    try:
        proto = onnx.load(str(path))
    except Exception as exc:  # protobuf raises DecodeError and others for truncated / corrupt files
        raise ModelLoadError(f"{path}: not a readable ONNX file (truncated or corrupt?): {type(exc).__name__}: {exc}") from exc
    for init in proto.graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            bad = int(arr.size - np.isfinite(arr).sum())
            raise ModelLoadError(f"{path}: initializer '{init.name}' holds {bad} non-finite value(s) (NaN / inf)")
    return proto


def _check_signature(model_dir: Path, step: OnnxStep, meta: ModelMetadata) -> None:
    for what, graph, specs in (("inputs", step.declared_inputs(), meta.inputs),
                               ("outputs", step.session.get_outputs(), meta.outputs)):
        got = {a.name: (tuple(a.shape), a.type) for a in graph}
        want = {t.name: (t.shape, "tensor(float)") for t in specs}
        if got != want:
            raise ModelLoadError(f"{model_dir}: graph {what} {got} differ from metadata {what} {want}")


def open_model_dir(model_dir: Path | str, kind: str | None = None, role: str | None = None,
                   threads: int = 1, step: OnnxStep | None = None, urdf: str | Path | None = None,
                   shared: bool | None = None) -> ValidatedModel:
    """Validate ``model_dir`` (module docstring) and return it with a ready session.

    kind / role: refuse a directory of another kind ("acrkn", "svdkl") / role ("inverse",
    "forward"). threads: onnxruntime intra-op threads (1 on the control path).

    step: the session in which a *writer* ran the golden sequence of this very ``model.onnx``
    (:func:`dynlearn_ros.runtime.model_store.finish_model_dir`'s ``step``). It is used instead of
    a new session (one session per export instead of two: session creation is most of an
    export's cost), and step 6 then checks the golden file (hash, arrays, shapes) without the
    replay: that session produced the recorded outputs from those inputs, so a replay in it
    could only agree. The independent replay is every reader's load (the controller's, in its
    own process), which never passes ``step``.

    urdf: the URDF an analytic base is checked against (step 7); None: the robot table's URDF of
    the robot the base names (a controller passes its own, runtime/svdkl.py).

    shared: an online version (its graph carries the correction's parameters,
    :func:`dynlearn_ros.runtime.shared_graph.is_online_graph`) runs as a
    :class:`~dynlearn_ros.runtime.shared_graph.ParamStep` on its structure's cached session, built
    once for every version of a learner (a hot swap then builds and releases no session); False:
    a session of its own (an :class:`OnnxStep`, as every other model); None: the module's
    switch ``shared_graph.enabled`` (True; benchmarks turn it off to compare)."""
    model_dir = Path(model_dir)
    if shared is None:
        shared = shared_graph.enabled
    for name in (MODEL_FILE, METADATA_FILE):
        if not (model_dir / name).is_file():
            raise ModelLoadError(f"{model_dir}: missing {name} (a model directory holds {MODEL_FILE}, "
                                 f"{METADATA_FILE} and its golden file)")
    meta = ModelMetadata.read(model_dir)
    if kind is not None and meta.kind != kind:
        raise ModelLoadError(f"{model_dir}/{METADATA_FILE}: kind is {meta.kind!r}, expected {kind!r}")
    if role is not None and meta.role != role:
        raise ModelLoadError(f"{model_dir}/{METADATA_FILE}: a {meta.role} model, expected {role}")
    if not meta.normalization["applied_in_graph"]:
        raise ModelLoadError(f"{model_dir}/{METADATA_FILE}: normalization.applied_in_graph is false; these "
                             "runtimes feed raw physical units and apply no normalization of their own")
    if not (model_dir / meta.golden.file).is_file():
        raise ModelLoadError(f"{model_dir}: missing {meta.golden.file} (metadata golden.file)")
    proto = scan_initializers(model_dir / MODEL_FILE)
    if step is not None:
        _check_signature(model_dir, step, meta)
        load_golden(model_dir, meta)
        worst = {t.name: 0.0 for t in meta.outputs}
    else:
        try:
            if shared and is_online_graph(proto):   # an online version: its structure's session
                step = ParamStep(proto, threads)
            else:
                step = OnnxStep(model_dir / MODEL_FILE, threads)
        except Exception as exc:  # onnxruntime raises its own exception types for graphs it rejects
            raise ModelLoadError(f"{model_dir}: onnxruntime cannot load {MODEL_FILE}: {type(exc).__name__}: {exc}") from exc
        _check_signature(model_dir, step, meta)
        try:
            worst = replay_golden(step, model_dir, meta)
        except GoldenMismatchError:
            if not isinstance(step, ParamStep):
                raise
            # the shared structure takes the parameters as inputs, so onnxruntime cannot fold
            # them as it folds the file's initializers: float32 rounding differs, and an output
            # element near zero (a cancellation: 9.47e-06 against 9.48e-06 recorded, 1.34x the
            # tolerance, in the online scenario) can miss the golden tolerance. The file's own
            # session is the reference: the version runs there if it passes there
            step = OnnxStep(model_dir / MODEL_FILE, threads)
            worst = replay_golden(step, model_dir, meta)
            shared_graph.stats["own_session_after_golden_miss"] += 1
    base_urdf = None
    if meta.base is not None:
        from dynlearn_ros.runtime.analytic_base import check_base_golden

        base_urdf = check_base_golden(model_dir, meta, urdf)
    return ValidatedModel(model_dir, meta, step, worst, base_urdf)


def validate_model_dir(model_dir: Path | str) -> ValidatedModel:
    """:func:`open_model_dir` without expectations (exporters call it before publishing)."""
    return open_model_dir(model_dir)
