"""``dynlearn-ros model check`` on IK model directories: checked as the IK node loads them, and
their ONNX graph's parity with the weights again (a graph from other weights is refused)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from dynlearn_ros.commands.model import check_ik
from dynlearn_ros.paths import models_dir


@pytest.fixture
def iiwa(tmp_path):
    d = tmp_path / "ik_iiwa"
    shutil.copytree(models_dir() / "ik_iiwa", d)
    return d


def test_a_shipped_ik_model_checks(iiwa):
    text = check_ik(iiwa)
    assert text.startswith(f"{iiwa}: OK  ik_pose_chain_lstm") and "chain iiwa, 7 DoF" in text
    assert "parity again" in text


def test_a_graph_from_other_weights_is_refused(iiwa):
    """The Panda model's graph has the same shapes (7 DoF in, 7 x 9 out): only the parity check
    can tell it is not the graph of these weights (poses differ by O(0.1 m), the tolerance is 1e-5)."""
    shutil.copy(models_dir() / "ik_panda" / "model.onnx", iiwa / "model.onnx")
    with pytest.raises(ValueError, match="model.onnx differs from model.pt"):
        check_ik(iiwa)


def test_other_joint_names_are_refused(iiwa):
    meta = json.loads((iiwa / "metadata.json").read_text())
    meta["joint_names"] = list(reversed(meta["joint_names"]))
    (iiwa / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="joint names"):
        check_ik(iiwa)


def test_the_command_refuses_to_migrate_an_ik_model(iiwa):
    bad = subprocess.run([sys.executable, "-m", "dynlearn_ros.cli", "model", "migrate", str(iiwa)],
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode == 1 and "REFUSED: an IK model directory has one format" in bad.stdout, bad.stdout + bad.stderr
