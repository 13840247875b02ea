"""Shared test data: real versions of one online learner's track on the shipped iiwa SVDKL, each
fitted to the base model's torque plus a constant offset (a different correction per version)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from dynlearn_ros.learning.online import OnlineConfig, OnlineLearner
from dynlearn_ros.paths import resolve_model_dir

#: torque offsets (N*m per joint) learned in turn, one version each
OFFSETS = ([0, 6.0, 0, -3.0, 0, 0, 0], [0, 3.0, 0, -1.0, 0, 0, 0], [0, 1.0, 0, 2.0, 0, 0, 0])


def track_versions(out: Path, base: str, count: int, rng: np.random.Generator) -> tuple[list[Path], dict]:
    """(the exported version directories, the model's input normalization) of ``count`` versions
    (the first ``count`` of OFFSETS) written under ``out`` by an OnlineLearner with ``base``
    ("model" or "analytic"); each from 400 inputs drawn around the normalization's mean with
    ``rng``, every cycle accepted (asserted)."""
    lr = OnlineLearner(resolve_model_dir("svdkl_iiwa_sim"), out, OnlineConfig(batch=100, holdout=100, base=base))
    nz = lr.meta.normalization
    paths = []
    for off in OFFSETS[:count]:
        x = np.asarray(nz["x_mean"]) + 0.5 * rng.normal(size=(400, 21)) * np.asarray(nz["x_std"])
        y = lr.base_predict(x)[0] + np.asarray(off)
        for xi, yi in zip(x, y, strict=True):
            lr.add(xi, yi)
        res = lr.cycle()
        assert res is not None and res.accepted, res
        paths.append(res.path)
    return paths, nz


def copy_with_initializer(src: str | Path, dst: Path, name: str, values) -> Path:
    """A copy of model directory ``src`` at ``dst`` whose model.onnx has initializer ``name``
    replaced by ``values`` (float32): a version with one parameter tampered with."""
    shutil.copytree(src, dst)
    proto = onnx.load(str(dst / "model.onnx"))
    for init in proto.graph.initializer:
        if init.name == name:
            init.CopyFrom(numpy_helper.from_array(np.asarray(values, dtype=np.float32), name))
    onnx.save_model(proto, str(dst / "model.onnx"))
    return dst
