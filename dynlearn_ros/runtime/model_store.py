"""Model directories on disk: written whole or not at all.

A model directory is ``model.onnx`` + ``metadata.json`` (DESIGN.md practice 6). Writers fill a
fresh temporary directory beside the target and swap it in with renames, so a reader (the
controller loading a model, a hot swap) never sees a half-written model.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def publish_model_dir(out_dir: str | Path, fill: Callable[[Path], None]) -> Path:
    """Call ``fill(tmp)`` to write the files into a temporary directory beside ``out_dir``, then
    replace ``out_dir`` with it (an existing directory is moved aside first and removed after).
    On any exception nothing at ``out_dir`` changes and the temporary directory is removed."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        fill(tmp)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a model directory is readable by all
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old.{os.getpid()}")
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
