"""Fixtures shared by several unit-test files."""

from __future__ import annotations

import pytest

from dynlearn_ros.cli import main
from dynlearn_ros.datasets.format import save_npz
from dynlearn_ros.learning.synthetic import pendulum_data


@pytest.fixture
def tiny_arx_run(tmp_path):
    """A pendulum data file and a one-epoch ac-RKN run on the ARX base trained on it through the
    CLI (seconds): ``(npz path as str, run folder)``."""
    npz = str(save_npz(tmp_path / "pend.npz", pendulum_data(n_ep=10, T=120)))
    run = tmp_path / "arx"
    assert main(["train", "--data", npz, "--model", "acrkn-fwd", "--base", "arx", "--epochs", "1",
                 "--lod", "6", "--hidden", "16", "--no-progress", "--out", str(run)]) == 0
    return npz, run
