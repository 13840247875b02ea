"""The one rule for tests that need a real data set: skip naming what is missing, but fail
under CI (where ../shared/data is always present, so a skip would hide a broken path)."""

import os
from pathlib import Path

import pytest

from dynlearn_ros.paths import data_root


def require(folder: str) -> Path:
    """The data set folder under the data root, or skip (fail when CI is set) naming it."""
    path = data_root() / folder
    if not path.is_dir():
        msg = f"data set '{folder}' missing under data root {data_root()} (set DYNLEARN_DATA)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path
