"""A lean ONNX graph of one ac-RKN inverse step, built node by node.

``torch.onnx.export`` of :class:`~dynlearn_ros.learning.export.acrkn.InverseStep` gives ~100 nodes (82
after onnxruntime's optimizer). At batch 1 almost every node is a few hundred floats, so the
step's latency is onnxruntime's per-node cost times the node count, not arithmetic. This module
writes the same function with about 60 nodes:

* normalization folded into the first layer of the encoder and of the control model, and the
  output's de-normalization into the last layer of the action decoder;
* row-vector algebra (z A^T instead of A z: no Unsqueeze / Squeeze around the MatMuls);
* the softmax weights sum to one, so A = sum_k alpha_k (B_k + I): the identity is folded into the
  (masked, transposed) basis and A^T comes out of one MatMul;
* the factorized covariance propagation matrix M (3m x 3m; see ``RKNCell.predict``), whose
  blocks are sums of elementwise products of A's blocks, is one broadcast Mul of the blocks with
  each other and one MatMul by a fixed (9, 16) mixing matrix (plus reshapes) instead of 6
  Slices, 12 Muls and 4 Concats. (Gathering the products' factors by index tables was tried
  first: fewer nodes, but onnxruntime's Gather over 4,050 indices cost more than all of them.)

Weights (:mod:`dynlearn_ros.learning.export.acrkn_weights`) come from a trained model or from a
``model.onnx`` of the torch exporter, so shipped model directories can be rewritten without
their checkpoints (``dynlearn-ros model convert DIR``):
the conversion is refused unless the new graph reproduces the old one over a 250-step rollout.

Inputs and outputs are those of the torch export (names, shapes, packed belief), so the runtime
predictor reads either graph.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shlex
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from dynlearn_ros.learning.export.acrkn_weights import weights_from_torch_onnx
from dynlearn_ros.runtime.metadata import ModelMetadata

OPSET = 18
#: floor added to the variance head's output (``_VarHead``) and the encoder's normalization eps
VAR_FLOOR = 1e-4
ENC_EPS = 1e-8
GRAPH_NAME = "acrkn_inverse_step_lean"


# ---------------------------------------------------------------------------- graph
def _cov_mix() -> np.ndarray:
    """(9, 16) weights: block (rb, cb) of M (rows cu', cl', cs'; columns cu, cs, cl) as a
    combination of the 16 elementwise products B_p * B_q of A's blocks (p, q in 11, 12, 21, 22),
    M as in ``RKNCell.predict``:

        M = [[a11^2, 2 a11 a12, a12^2], [a21^2, 2 a21 a22, a22^2], [a21 a11, a22 a11 + a21 a12, a22 a12]]
    """
    b = {"11": 0, "12": 1, "21": 2, "22": 3}
    terms = {(0, 0): [("11", "11")], (0, 1): [("11", "12"), ("11", "12")], (0, 2): [("12", "12")],
             (1, 0): [("21", "21")], (1, 1): [("21", "22"), ("21", "22")], (1, 2): [("22", "22")],
             (2, 0): [("21", "11")], (2, 1): [("22", "11"), ("21", "12")], (2, 2): [("22", "12")]}
    mix = np.zeros((9, 16))
    for (rb, cb), pairs in terms.items():
        for p, q in pairs:
            mix[rb * 3 + cb, b[p] * 4 + b[q]] += 1.0
    return mix


class _G:
    """Tiny graph writer: float32 constants, unique names."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.inits: list = []
        self._k = 0

    def const(self, name: str, arr, dtype=np.float32) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(arr, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, out: str | list[str] | None = None, **attrs):
        if out is None:
            self._k += 1
            outs = [f"{op_type.lower()}_{self._k}_{i}" for i in range(n_out)]
        else:
            outs = [out] if isinstance(out, str) else list(out)
        self.nodes.append(helper.make_node(op_type, inputs, outs, **attrs))
        return outs[0] if len(outs) == 1 else outs

    @staticmethod
    def fold_input_normalization(layers: list, mean: np.ndarray, std: np.ndarray) -> list:
        """``layers`` reading ``(x - mean) / std`` rewritten to read ``x``: first layer W / std,
        b - (W / std) mean."""
        W0, b0 = layers[0]
        W = W0 / std[None, :]
        return [(W, b0 - W @ mean), *layers[1:]]

    def mlp(self, x: str, layers: list[tuple[np.ndarray, np.ndarray]], name: str, out: str | None = None) -> str:
        """ReLU between layers, none after the last; Gemm with B transposed (torch layout)."""
        for i, (W, b) in enumerate(layers):
            last = i == len(layers) - 1
            x = self.op("Gemm", [x, self.const(f"{name}.{i}.W", W), self.const(f"{name}.{i}.b", b.reshape(-1))],
                        transB=1, out=out if last else None)
            if not last:
                x = self.op("Relu", [x])
        return x


def build_inverse_graph(w: dict) -> onnx.ModelProto:
    """The step graph from a weight dict of :mod:`dynlearn_ros.learning.export.acrkn_weights`."""
    m = w["lod"]
    n = 2 * m
    d_o, d_a = w["obs_mean"].size, w["act_mean"].size
    g = _G()
    # -- desired change: ((o_next - o) / std_o) * scale - shift
    dn = g.op("Sub", [g.op("Mul", [g.op("Sub", ["obs_next", "obs"]), g.const("dnext_gain", (w["dnext_scale"] / w["obs_std"])[None])]),
                      g.const("dnext_shift", w["dnext_shift"][None])])
    # -- control b(a_{t-1}) with the action normalization in its first layer
    ctrl = g.mlp("act_prev", g.fold_input_normalization(w["control"], w["act_mean"], w["act_std"]), "control")
    # -- belief
    z, cu, cl, cs = g.op("Split", ["belief", g.const("split_belief", [n, m, m, m], np.int64)], n_out=4, axis=1)
    # -- transition: alpha = softmax(coef(z)); A^T = sum_k alpha_k (B_k + I)^T
    alpha = g.op("Softmax", [g.mlp(z, [w["coef"]], "coef")], axis=1)
    full = w["transition"] + np.eye(n)[None]
    K = full.shape[0]
    # one MatMul gives vec(A^T) (row-major, for z A^T) and the four m x m blocks of A (block-major,
    # entries [j, i] within a block) for the covariance products
    vec_at = np.transpose(full, (0, 2, 1)).reshape(K, n * n)
    blocks = np.transpose(full.reshape(K, 2, m, 2, m), (0, 1, 3, 4, 2)).reshape(K, 4 * m * m)
    at_flat, blk = g.op("Split", [g.op("MatMul", [alpha, g.const("basis_t", np.concatenate([vec_at, blocks], 1))]),
                                  g.const("split_at", [n * n, 4 * m * m], np.int64)], n_out=2, axis=1)
    at = g.op("Reshape", [at_flat, g.const("shape_nn", [n, n], np.int64)])
    z_prior = g.op("Add", [g.op("MatMul", [z, at]), ctrl])                                   # (1, n)
    # products of every pair of blocks (16, m*m), then M's nine blocks as fixed combinations of them
    prod = g.op("Reshape", [g.op("Mul", [g.op("Reshape", [blk, g.const("shape_p1", [4, 1, m * m], np.int64)]),
                                         g.op("Reshape", [blk, g.const("shape_p2", [1, 4, m * m], np.int64)])]),
                            g.const("shape_p", [16, m * m], np.int64)])
    mix = g.op("MatMul", [g.const("cov_mix", _cov_mix()), prod])                               # (9, m*m): [rb, cb] x [j, i]
    m_t = g.op("Reshape", [g.op("Transpose", [g.op("Reshape", [mix, g.const("shape_m4", [3, 3, m, m], np.int64)])],
                                perm=[1, 2, 0, 3]), g.const("shape_3m", [3 * m, 3 * m], np.int64)])  # M^T
    c = g.op("Add", [g.op("MatMul", [g.op("Concat", [cu, cs, cl], axis=1), m_t]), g.const("q3", w["q3"][None])])
    cu_p, cl_p, cs_p = g.op("Split", [c, g.const("split_c", [m, m, m], np.int64)], n_out=3, axis=1)
    # -- encoder with the observation normalization in its first layer
    if len(w["enc_body"]) != 1:
        raise ValueError("lean export: encoder with one hidden layer only")
    enc = g.fold_input_normalization(w["enc_body"], w["obs_mean"], w["obs_std"])
    h = g.op("Relu", [g.mlp("obs", enc, "enc_body")])
    wm = g.mlp(h, [w["enc_mean"]], "enc_mean")
    wlat = g.op("Div", [wm, g.op("Sqrt", [g.op("Add", [g.op("ReduceSumSquare", [wm, g.const("ax_last", [1], np.int64)], keepdims=1),
                                                        g.const("enc_eps", [ENC_EPS])])])])
    wvar = g.op("Add", [g.op("Elu", [g.mlp(h, [w["enc_var"]], "enc_var")]), g.const("one", [1.0])])
    # -- Kalman update
    denom = g.op("Add", [cu_p, wvar])
    q_u = g.op("Div", [cu_p, denom])
    q_l = g.op("Div", [cs_p, denom])
    res = g.op("Sub", [wlat, g.op("Slice", [z_prior, g.const("s0b", [0], np.int64), g.const("s_m", [m], np.int64),
                                            g.const("ax1b", [1], np.int64)])])
    z_post = g.op("Add", [z_prior, g.op("Concat", [g.op("Mul", [q_u, res]), g.op("Mul", [q_l, res])], axis=1)])
    keep = g.op("Sub", ["one", q_u])
    cu_post = g.op("Mul", [keep, cu_p])
    cs_post = g.op("Mul", [keep, cs_p])
    cl_post = g.op("Sub", [cl_p, g.op("Mul", [q_l, cs_p])])
    # -- action decoder, de-normalization in its last layer
    dec = list(w["dec_act"])
    Wl, bl = dec[-1]
    dec[-1] = (Wl * w["out_std"][:, None], bl * w["out_std"] + w["out_mean"])
    if w["absolute"]:
        g.mlp(g.op("Concat", [z_post, dn], axis=1), dec, "dec_act", out="tau_mean")
    else:
        g.op("Add", ["act_prev", g.mlp(g.op("Concat", [z_post, dn], axis=1), dec, "dec_act")], out="tau_mean")
    # -- variance head: (elu(.) + 1 + floor) * out_std^2
    v = g.op("Elu", [g.mlp(g.op("Concat", [cu_post, cl_post, cs_post], axis=1), w["dec_var"], "dec_var")])
    g.op("Mul", [g.op("Add", [v, g.const("one_floor", [1.0 + VAR_FLOOR])]), g.const("out_var", (w["out_std"] ** 2)[None])],
         out="tau_var")
    g.op("Concat", [z_post, cu_post, cl_post, cs_post], axis=1, out="belief_out")
    f32 = TensorProto.FLOAT
    graph = helper.make_graph(
        g.nodes, GRAPH_NAME,
        [helper.make_tensor_value_info("obs", f32, [1, d_o]), helper.make_tensor_value_info("obs_next", f32, [1, d_o]),
         helper.make_tensor_value_info("act_prev", f32, [1, d_a]), helper.make_tensor_value_info("belief", f32, [1, 5 * m])],
        [helper.make_tensor_value_info("tau_mean", f32, [1, d_a]), helper.make_tensor_value_info("tau_var", f32, [1, d_a]),
         helper.make_tensor_value_info("belief_out", f32, [1, 5 * m])],
        g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="dynlearn_ros")
    model.ir_version = 10
    onnx.checker.check_model(model, full_check=True)
    return model


# ---------------------------------------------------------------------------- checks, conversion
def rollout(path: Path | str, meta: ModelMetadata, steps: int = 250, seed: int = 0) -> dict[str, np.ndarray]:
    """Outputs (steps, ...) of a step graph driven by a random walk around the training statistics
    (the belief fed back), for comparing two graphs of the same model (``meta``: the model
    directory's metadata)."""
    from dynlearn_ros.runtime.onnx_step import OnnxStep

    norm = meta.normalization
    rng = np.random.default_rng(seed)
    om, os_ = np.asarray(norm["obs_mean"]), np.asarray(norm["obs_std"])
    am, as_ = np.asarray(norm["act_mean"]), np.asarray(norm["act_std"])
    s = OnnxStep(path)
    s.inputs["belief"][0] = np.asarray(meta.specific["initial_belief"], dtype=np.float32)
    o = om + 0.5 * os_ * rng.standard_normal(om.size)
    a = am + 0.5 * as_ * rng.standard_normal(am.size)
    out = {k: [] for k in ("tau_mean", "tau_var", "belief_out")}
    for _ in range(steps):
        o_next = o + 0.01 * os_ * rng.standard_normal(om.size)
        s.inputs["obs"][0], s.inputs["obs_next"][0], s.inputs["act_prev"][0] = o, o_next, a
        s.run()
        for k in out:
            out[k].append(s.outputs[k][0].copy())
        s.inputs["belief"][0] = s.outputs["belief_out"][0]
        o, a = o_next, a + 0.02 * as_ * rng.standard_normal(am.size)
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def max_rel_diff(a: dict, b: dict, meta: ModelMetadata) -> dict[str, float]:
    """max |a - b| over the rollout, per output, relative to the output's scale: the torque
    target's std for tau_mean, its square for tau_var, the belief's own max magnitude."""
    norm = meta.normalization
    absolute = meta.specific["model_config"].get("act_target", "difference") == "absolute"
    scale = np.asarray(norm["act_std"] if absolute else norm["dact_std"])
    return {"tau_mean": float(np.max(np.abs(a["tau_mean"] - b["tau_mean"]) / scale)),
            "tau_var": float(np.max(np.abs(a["tau_var"] - b["tau_var"]) / np.maximum(b["tau_var"], scale**2 * 1e-4))),
            "belief_out": float(np.max(np.abs(a["belief_out"] - b["belief_out"])) / max(1.0, np.max(np.abs(b["belief_out"]))))}


#: agreement required to replace a graph: the tolerance of test/unit/test_export_parity.py (2e-4
#: of each output's scale after 250 steps; float32 reordering only, see that test's docstring)
CONVERT_RTOL = 2e-4


def convert_model_dir(model_dir: Path, check_steps: int = 250) -> dict:
    """Rewrite ``model_dir/model.onnx`` (a torch-exported inverse step) as the lean graph, in place,
    if a ``check_steps`` rollout of both agrees within :data:`CONVERT_RTOL`. The new directory
    (next model_version, golden outputs re-recorded from the new graph with the same golden
    inputs, ``acrkn.graph_conversion`` recording the check) is validated before it replaces the
    old one; any failure leaves the old one as it was."""
    from dynlearn_ros.runtime.golden import load_golden
    from dynlearn_ros.runtime.model_store import finish_model_dir, publish_model_dir
    from dynlearn_ros.runtime.validate import open_model_dir, validate_model_dir

    model_dir = Path(model_dir)
    meta = open_model_dir(model_dir).metadata
    if meta.role != "inverse" or meta.kind != "acrkn":
        raise ValueError(f"{model_dir}: not an ac-RKN inverse model directory")
    if meta.specific["graph"] == GRAPH_NAME:
        raise ValueError(f"{model_dir}: already the lean graph")
    cfg = meta.specific["model_config"]
    w = weights_from_torch_onnx(model_dir / "model.onnx", cfg.get("act_target", "difference") == "absolute", cfg["lod"])
    lean = build_inverse_graph(w)
    old_bytes = (model_dir / "model.onnx").read_bytes()
    golden_inputs, _ = load_golden(model_dir, meta)
    tmp = model_dir.parent / f".{model_dir.name}.lean.onnx"
    onnx.save(lean, str(tmp))
    try:   # the temporary graph never outlives this call (moved into the new directory, or removed)
        diff = max_rel_diff(rollout(tmp, meta, check_steps), rollout(model_dir / "model.onnx", meta, check_steps), meta)
        if max(diff.values()) > CONVERT_RTOL:
            raise ValueError(f"{model_dir}: the lean graph differs from the exported one beyond {CONVERT_RTOL}: {diff}")
        specific = dict(meta.specific, graph=GRAPH_NAME, graph_conversion={
            "from_sha256": hashlib.sha256(old_bytes).hexdigest()[:16], "rollout_steps": check_steps,
            "max_rel_diff": diff,
            "command": shlex.join(["dynlearn-ros", "model", "convert", str(model_dir)])})
        fields = {f.name: getattr(meta, f.name) for f in dataclasses.fields(meta) if f.name not in ("golden", "format_version")}
        fields |= {"specific": specific, "model_version": meta.model_version + 1}

        def fill(d: Path) -> None:
            tmp.replace(d / "model.onnx")
            finish_model_dir(d, fields, golden_inputs, meta.golden.state)

        publish_model_dir(model_dir, fill, check=validate_model_dir)
    finally:
        tmp.unlink(missing_ok=True)
    return diff
