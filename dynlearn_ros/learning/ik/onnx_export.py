"""ONNX export of the pose-chain model's forward pass, checked through onnxruntime.

The graph maps ``q`` (1, n) float32 rad to ``pose_chain`` (1, n, 9) float32 (per DoF
``[p m | x axis | z axis]`` in the base frame, the layout of :mod:`.chain`): the LSTM over the
joint sequence, the head, Gram-Schmidt and, for a chain-relative model, the log-depth
composition. Static batch 1, opset 18, one file (``torch.onnx.export``, dynamo). The IK solvers
need the network's Jacobian and keep running it in torch (docs/ik.md, the node's layering
decision); the ONNX graph serves a consumer that needs only predicted poses (e.g. a monitor
comparing them with measured ones) without torch.

Parity: the graph is run by onnxruntime (one thread) on ``golden`` configurations uniform over
the full joint ranges and compared with the torch model; the export is refused when the largest
absolute difference exceeds ``tol`` (1e-5 by default: float32 round-off of the same arithmetic in
another order over <= 80 recurrent steps stays ~1e-6, measured 1.0e-6 (iiwa), 0.8e-6 (Panda), 2.3e-6 (arm40);
a wrong gate order, a missing normalization or a swapped axis is O(0.1)).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dynlearn_ros.learning.ik.chain import POSE_DIM, Chain
from dynlearn_ros.learning.ik.model import PoseChainLSTM

OPSET = 18
ONNX_FILE = "model.onnx"
INPUT, OUTPUT = "q", "pose_chain"
PARITY_TOL = 1e-5


def session(path: str | Path):
    """An onnxruntime CPU session with one intra- and one inter-op thread."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def parity(model: PoseChainLSTM, chain: Chain, path: str | Path, golden: int = 16, seed: int = 0) -> float:
    """The largest absolute difference between the graph at ``path`` run by onnxruntime and the
    torch ``model`` over ``golden`` configurations uniform over the full joint ranges (``seed``)."""
    sess = session(path)
    qs = chain.sample(np.random.default_rng(seed), golden, 1.0).astype(np.float32)
    got = np.concatenate([sess.run(None, {INPUT: q[None]})[0] for q in qs])
    with torch.no_grad():
        ref = model.eval()(torch.as_tensor(qs)).numpy()
    return float(np.abs(got - ref).max())


def export_onnx(model: PoseChainLSTM, chain: Chain, path: str | Path, golden: int = 16, seed: int = 0,
                tol: float = PARITY_TOL) -> dict:
    """Write ``model``'s forward pass to ``path`` and check it (module docstring); returns the
    metadata section (file, opset, ir_version, inputs / outputs with shapes and units, parity).
    Raises ValueError when the onnxruntime output differs from torch by more than ``tol``."""
    import onnx

    path = Path(path)
    model = model.eval()
    q0 = torch.as_tensor(chain.home, dtype=torch.float32)[None]
    with torch.no_grad():
        torch.onnx.export(model, (q0,), str(path), input_names=[INPUT], output_names=[OUTPUT],
                          opset_version=OPSET, dynamo=True, external_data=False, verbose=False)
    err = parity(model, chain, path, golden, seed)
    if not np.isfinite(err) or err > tol:
        raise ValueError(f"ONNX export of the pose-chain model: onnxruntime vs torch max |diff| {err:.3g} > {tol:g}")
    return {"file": path.name, "opset": OPSET, "ir_version": int(onnx.load(str(path)).ir_version),
            "inputs": [{"name": INPUT, "shape": [1, chain.n], "dtype": "float32", "unit": "rad",
                        "order": list(chain.joint_names)}],
            "outputs": [{"name": OUTPUT, "shape": [1, chain.n, POSE_DIM], "dtype": "float32",
                         "layout": "per DoF [p (m) | x axis | z axis], base frame"}],
            "parity": {"golden_configurations": golden, "seed": seed, "max_abs_diff": err, "tol": tol},
            "runs_in": "forward pass only; the IK solvers use the torch model (they need its Jacobian)"}
