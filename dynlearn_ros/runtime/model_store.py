"""Model directories on disk: written whole or not at all.

A model directory is ``model.onnx`` + ``metadata.json`` + ``golden.npz`` (DESIGN.md practice 6;
schema in :mod:`dynlearn_ros.runtime.metadata`). Writers fill a fresh temporary directory beside
the target, have it validated (``check``, the exporters pass
:func:`dynlearn_ros.runtime.validate.validate_model_dir`) and swap it in with renames, so a
reader (the controller loading a model, a hot swap) never sees a half-written or unchecked
model, and a failed export leaves the old directory as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from dynlearn_ros.runtime.golden import run_sequence, write_golden
from dynlearn_ros.runtime.metadata import MODEL_FILE, ModelMetadata, read_model_version
from dynlearn_ros.runtime.onnx_step import OnnxStep


def next_model_version(out_dir: str | Path, requested: int | None = None) -> int:
    """The model_version an export into ``out_dir`` writes: ``requested`` if given (>= 1), else
    one more than the version the directory holds (1 for a new or format-1 directory)."""
    if requested is not None:
        if int(requested) < 1:
            raise ValueError(f"model_version must be >= 1, got {requested}")
        return int(requested)
    return read_model_version(Path(out_dir)) + 1


def publish_model_dir(out_dir: str | Path, fill: Callable[[Path], None],
                      check: Callable[[Path], object] | None = None) -> Path:
    """Call ``fill(tmp)`` to write the files into a temporary directory beside ``out_dir``, then
    ``check(tmp)`` (raises to refuse), then replace ``out_dir`` with it (an existing directory is
    moved aside first and removed after; put back if the swap fails). On any exception nothing at
    ``out_dir`` changes and the temporary directory is removed."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        fill(tmp)
        if check is not None:
            check(tmp)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a model directory is readable by all
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old.{os.getpid()}")
            os.replace(out_dir, old)
            try:
                os.replace(tmp, out_dir)
            except BaseException:
                os.replace(old, out_dir)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def finish_model_dir(tmp: Path, fields: dict, golden_inputs: dict, state: dict | None = None,
                     reference: dict | None = None, step: OnnxStep | None = None) -> ModelMetadata:
    """With ``tmp/model.onnx`` written: run ``golden_inputs`` (name -> (T, *shape)) through it in
    one onnxruntime session (recurrent inputs in ``state`` fed back), write ``golden.npz`` (with
    the optional float64 ``reference`` arrays) and ``metadata.json`` from ``fields`` (the
    :class:`ModelMetadata` fields but ``golden``). Returns the metadata written. ``step``: a
    session the caller already made of ``tmp/model.onnx`` (used instead of a new one, so a writer
    can validate with the same session: :func:`dynlearn_ros.runtime.validate.open_model_dir`)."""
    if step is None:
        step = OnnxStep(Path(tmp) / MODEL_FILE)
    fed, outs = run_sequence(step, golden_inputs, state)
    spec = write_golden(Path(tmp), fed, outs, state, reference)
    meta = ModelMetadata(**fields, golden=spec)
    meta.write(Path(tmp))
    return meta
