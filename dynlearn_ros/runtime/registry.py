"""Model kinds the controller can load by name (the ``model_kind`` parameter).

Each learned kind lives in its own module and exposes a class with
``from_directory(model_dir: Path, joint_names: Sequence[str]) -> InverseModel`` that validates
the directory through :func:`dynlearn_ros.runtime.validate.open_model_dir` (docs/models.md).
The errors live in :mod:`dynlearn_ros.runtime.errors` (re-exported here), so no module imports
this one back. A node that may load models calls :func:`import_model_runtime` once at start-up
(:class:`dynlearn_ros.runtime.slot.ModelSlot` does): a model loads in the slot's worker thread,
and a first import there (onnx pulls in ml_dtypes, whose extension registers its numpy ufunc
loops with the GIL held: ~1 s of CPU) would hold the GIL against the control thread mid-run and
against the shutdown (a controller signalled during its first load stayed > 30 s at load 14:
its main thread waited for the GIL while the worker was inside that import).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path

from dynlearn_ros.core.inverse_model import MODEL_KINDS, InverseModel
from dynlearn_ros.runtime.errors import ModelLoadError

__all__ = ["ALL_KINDS", "LEARNED_KINDS", "ModelLoadError", "UnavailableModel", "load_inverse_model"]

#: learned kinds -> "module:Class"; "analytic" is built by the controller from the URDF
LEARNED_KINDS: dict[str, str] = {
    "acrkn": "dynlearn_ros.runtime.acrkn:AcrknInversePredictor",
    "svdkl": "dynlearn_ros.runtime.svdkl:SvdklPredictor",
}
ALL_KINDS = MODEL_KINDS  # the controller's choices; LEARNED_KINDS covers every learned one


class UnavailableModel(InverseModel):
    """Stands in when the configured learned model could not be loaded: every prediction is
    unusable, so the controller counts a fallback each tick and runs the analytic model with the
    gains for maximal uncertainty."""

    kind = "unavailable"

    def predict(self, query, mean_out, std_out) -> bool:
        return False


def import_model_runtime() -> None:
    """Import everything loading a learned model imports (every kind's module, onnx with its
    dependencies, onnxruntime), in the calling thread; idempotent and cheap once done."""
    import encodings.cp437  # noqa: F401 - zipfile's file-name codec (np.load of a model's .npz)

    import onnx  # noqa: F401 - runtime/validate.py and shared_graph.py use it lazily
    import onnxruntime  # noqa: F401

    for target in LEARNED_KINDS.values():
        importlib.import_module(target.split(":")[0])
    for module in ("dynlearn_ros.runtime.onnx_step", "dynlearn_ros.runtime.analytic_base",
                   "dynlearn_ros.runtime.shared_graph", "dynlearn_ros.runtime.validate"):
        importlib.import_module(module)


def load_inverse_model(kind: str, model_dir: str | Path, joint_names: Sequence[str],
                       urdf: str | Path | None = None) -> InverseModel:
    """Load a learned inverse model; raise :class:`ModelLoadError` with the reason if unusable.
    ``urdf``: the controller's URDF (a model with an analytic base adds its RNEA and is refused
    without it, or with another robot's; runtime/analytic_base.py)."""
    if kind not in LEARNED_KINDS:
        raise ModelLoadError(f"unknown learned model kind '{kind}'; choose from {sorted(LEARNED_KINDS)}")
    model_dir = Path(model_dir)
    module_name, cls_name = LEARNED_KINDS[kind].split(":")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError) as exc:
        raise ModelLoadError(f"model kind '{kind}' is not available: {exc}") from exc
    try:
        return cls.from_directory(model_dir, tuple(joint_names), urdf=urdf)
    except ModelLoadError:
        raise
    except Exception as exc:  # corrupt files surface as many exception types; report them all
        raise ModelLoadError(f"{model_dir}: cannot load {kind} model: {type(exc).__name__}: {exc}") from exc
