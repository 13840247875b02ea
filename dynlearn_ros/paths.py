"""Where the package's files and the data sets are, without ROS tooling.

* ``share_dir()``: the directory holding ``launch/``, ``config/`` and ``models/``. On a colcon
  install that is ``<prefix>/share/dynlearn_ros`` (found through AMENT_PREFIX_PATH); in a source
  checkout (editable install) it is the repository root.
* ``data_root()``: the shared robot data sets. ``$DYNLEARN_DATA`` if set, else ``../shared/data``
  beside the repository (also tried from the current directory).
* ``cache_dir()``: extracted archives and other derived files, outside the repository:
  ``$DYNLEARN_CACHE`` or ``~/.cache/dynlearn_ros``.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = "dynlearn_ros"
_PKG_DIR = Path(__file__).resolve().parent
_REPO_ROOT = _PKG_DIR.parent


def share_dir() -> Path:
    if (_REPO_ROOT / "package.xml").is_file() and (_REPO_ROOT / "launch").is_dir():
        return _REPO_ROOT
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        cand = Path(prefix) / "share" / PACKAGE
        if prefix and (cand / "package.xml").is_file():
            return cand
    for prefix in (Path(os.sys.prefix), Path(os.sys.base_prefix)):
        cand = prefix / "share" / PACKAGE
        if (cand / "package.xml").is_file():
            return cand
    raise FileNotFoundError(
        f"cannot find the {PACKAGE} share directory (launch/, config/, models/): not in a source "
        "checkout, not under AMENT_PREFIX_PATH, not under sys.prefix/share"
    )


def config_file(name: str) -> Path:
    path = share_dir() / "config" / name
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    return path


def models_dir() -> Path:
    return share_dir() / "models"


def resolve_model_dir(model_dir: str | Path) -> Path:
    """A model directory as the controller reads the ``model_dir`` parameter: absolute paths
    (and ``~``) as given, relative ones under the package's ``models/``."""
    path = Path(model_dir).expanduser()
    return path if path.is_absolute() else models_dir() / path


def data_root() -> Path:
    env = os.environ.get("DYNLEARN_DATA")
    if env:
        return Path(env).expanduser().resolve()
    for cand in (_REPO_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"):
        if cand.is_dir():
            return cand.resolve()
    return (_REPO_ROOT.parent / "shared" / "data").resolve()


def dataset_dir(name: str) -> Path:
    """A named data set folder under the data root, or a precise error naming what is missing."""
    path = data_root() / name
    if not path.is_dir():
        raise FileNotFoundError(
            f"data set '{name}' not found at {path}; set DYNLEARN_DATA to the folder holding it"
        )
    return path


def cache_dir() -> Path:
    path = Path(os.environ.get("DYNLEARN_CACHE", Path.home() / ".cache" / PACKAGE)).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
