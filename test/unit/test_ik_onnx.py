"""ONNX export of the pose-chain model (learning/ik/onnx_export.py): the graph run by
onnxruntime against the torch model, and the model directory's "onnx" metadata."""

from __future__ import annotations

import json

import numpy as np
import torch

from dynlearn_ros.learning.ik.chain import POSE_DIM, chain
from dynlearn_ros.learning.ik.model import PoseChainLSTM
from dynlearn_ros.learning.ik.onnx_export import INPUT, PARITY_TOL, session
from dynlearn_ros.learning.ik.store import load, save


def test_relative_model_exports_and_matches_torch_through_onnxruntime(tmp_path):
    """A chain-relative model on arm5 (10 DoF: the LSTM, the head, Gram-Schmidt and a 4-level
    scan over a length that is not a power of two), exported through the model store. On fresh
    configurations (not the export's golden ones) onnxruntime must match torch within the
    export's 1e-5 (float32 round-off in another order, see onnx_export); a model with other
    weights must differ from the graph by far more (> 1e-2), so the comparison can fail."""
    torch.manual_seed(0)
    c = chain("arm5")
    model = PoseChainLSTM(torch.as_tensor(c.geometry), c.scale, 16, 1, "relative", c.tip).eval()
    save(model, c, tmp_path / "m", command=["test"], onnx=True)
    meta = json.loads((tmp_path / "m" / "metadata.json").read_text())
    sec = meta["onnx"]
    assert sec["file"] == "model.onnx" and sec["opset"] == 18 and sec["ir_version"] <= 13
    assert sec["inputs"][0]["shape"] == [1, c.n] and sec["outputs"][0]["shape"] == [1, c.n, POSE_DIM]
    assert sec["parity"]["max_abs_diff"] <= PARITY_TOL
    loaded, _, _ = load(tmp_path / "m", expect_chain="arm5")
    sess = session(tmp_path / "m" / "model.onnx")
    qs = c.sample(np.random.default_rng(42), 8, 1.0).astype(np.float32)
    got = np.concatenate([sess.run(None, {INPUT: q[None]})[0] for q in qs])
    with torch.no_grad():
        ref = loaded(torch.as_tensor(qs)).numpy()
        other = PoseChainLSTM(torch.as_tensor(c.geometry), c.scale, 16, 1, "relative", c.tip).eval()(
            torch.as_tensor(qs)).numpy()
    assert got.shape == (8, c.n, POSE_DIM)
    assert np.abs(got - ref).max() <= PARITY_TOL
    assert np.abs(got - other).max() > 1e-2
