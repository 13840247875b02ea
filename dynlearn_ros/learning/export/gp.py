"""ONNX export of an SVDKL / SVGP inverse model: predictive mean and variance, batch 1.

The graph is built directly with ``onnx.helper`` from caches precomputed in float64 from the
trained model (whitened variational strategy, one GP per joint j, M inducing points Z_j):

    L_j = chol(K_uu,j + jitter I)          (jitter as gpytorch used it while training)
    alpha_j = L_j^{-T} m_j                 (m_j: whitened variational mean)
    A_j = [L_j^{-T} | L_j^{-T} L_S,j]      (L_S,j: Cholesky factor of the variational covariance)

and at run time, for raw input x = [q, qd, qdd] (1, 3n) in float32:

    x'  = (x - x_mean) / x_std                            standardized input (1, 3n)
    z   = phi(x')                                          deep features (1, D) (identity for SVGP)
    z   = [phi(x'), x']                                    (1, D + 3n) with gp_input "features+x"
    (w_j, mu_j: the GP's linear prior mean; w_j = 0 for a constant mean)
    k_j = sf2_j exp(-|z/l_j - Z_j/l_j|^2 / 2)             (1, M), computed as exp(z'.Z' + c_j - |z'|^2/2)
    [a_j | c_j] = k_j A_j                                  a_j = (L_j^{-1} k_j)^T, c_j = (L_S,j^T a_j)^T
    mean_j = y_std_j (w_j^T z + mu_j + k_j alpha_j) + y_mean_j               (N*m)
    var_j  = y_std_j^2 (sf2_j + jitter - |a_j|^2 + |c_j|^2 + noise_j)         ((N*m)^2)

``var`` includes the likelihood noise: it is the variance of a newly measured torque. The form
with two separate squared norms (instead of one quadratic form k^T B k) keeps float32 accurate:
B = L^{-T}(S - I)L^{-1} would square the conditioning of L.

Optional novelty term (``novelty.NoveltyTerm``; see that module for its calibration): K stored
standardized training inputs S (K, 3n) and per-joint alpha_j, d0 (standardized units):

    d2  = relu(min_k (|x'|^2 - 2 x'.S_k + |S_k|^2))     (one MatMul; float32 cancellation leaves
                                                           ~1e-6 |x'|^2 at a stored row)
    g2  = d2                          if d0 == 0
        = relu(sqrt(d2) - d0)^2       otherwise
    var_j += alpha_j^2 g2                                  ((N*m)^2)

Graph I/O: input ``x`` float32 (1, 3n); outputs ``mean`` float32 (1, n) N*m and ``var``
float32 (1, n) (N*m)^2. Opset 17, IR version 8 (onnxruntime 1.31 accepts IR <= 13).
"""

from __future__ import annotations

import time
from pathlib import Path

import gpytorch
import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from dynlearn_ros import __version__
from dynlearn_ros.learning.models.gp import GPInverseModel
from dynlearn_ros.runtime.metadata import Provenance, SigmaBounds, TensorSpec
from dynlearn_ros.runtime.model_store import finish_model_dir, next_model_version, publish_model_dir
from dynlearn_ros.runtime.svdkl import SVDKL_TENSORS
from dynlearn_ros.runtime.validate import validate_model_dir

OPSET = 17
IR_VERSION = 8
INPUT_NAME = "x"
OUTPUT_NAMES = ("mean", "var")
#: the exported float32 graph against gpytorch's float64 prediction on the golden rows, checked
#: before anything is written (see test/unit/test_svdkl_export.py for why these hold for a
#: correct export): mean within 1 % of the predictive std, variance within 0.1 % relative
EXPORT_MEAN_TOL_STD = 1e-2
EXPORT_VAR_RTOL = 1e-3
SIGMA_SOURCE = "likelihood noise std / kernel signal std per joint (GPInverseModel.sigma_n_f)"


def precompute_caches(model: GPInverseModel) -> dict[str, np.ndarray]:
    """float64 caches of a trained SVDKL/SVGP model (all per joint j, n joints, M inducing, D dims).

    Returns inv_l (n, 1, D) inverse lengthscales, zt (n, D, M) scaled inducing points
    transposed, logk_c (n, 1, M) = log sf2 - |Z/l|^2 / 2, aw (n, M, 2M), alpha (n, M, 1),
    prior_var (n,) = sf2 + jitter + noise, mu (n,) prior-mean biases and w_mean (D, n) prior-mean
    weights (zero for a constant mean; normalized units), and jitter (scalar)."""
    if model.cfg.kind not in ("svdkl", "svgp"):
        raise ValueError(f"only svdkl and svgp export to ONNX, not {model.cfg.kind}")
    base = model.gp.variational_strategy.base_variational_strategy
    jitter = float(base.jitter_val)  # the value gpytorch adds (depends on the training dtype)
    z = base.inducing_points.detach().double()  # (n, M, D)
    kern = model.gp.covar_module
    ls = kern.base_kernel.lengthscale.detach().double()  # (n, 1, D)
    sf2 = kern.outputscale.detach().double().reshape(-1)  # (n,)
    zs = z / ls
    d2 = (zs.unsqueeze(-2) - zs.unsqueeze(-3)).pow(2).sum(-1)  # (n, M, M)
    kuu = sf2[:, None, None] * torch.exp(-0.5 * d2)
    eye = torch.eye(kuu.shape[-1], dtype=torch.float64)
    lchol = torch.linalg.cholesky(kuu + jitter * eye)
    linv = torch.linalg.solve_triangular(lchol, eye.expand_as(lchol), upper=False)  # L^{-1}
    vd = base._variational_distribution
    l_s = (vd.chol_variational_covar.detach().double()).tril()  # (n, M, M)
    m = vd.variational_mean.detach().double()  # (n, M)
    w = l_s.mT @ linv  # L_S^T L^{-1}
    aw = torch.cat([linv.mT, w.mT], dim=-1)  # k^T aw = [a^T, c^T]
    alpha = linv.mT @ m.unsqueeze(-1)  # (n, M, 1)
    noise = model.noise_var().double()
    mean_mod = model.gp.mean_module
    if isinstance(mean_mod, gpytorch.means.LinearMean):
        mu = mean_mod.bias.detach().double().reshape(-1)
        w_mean = mean_mod.weights.detach().double().squeeze(-1).mT.contiguous()  # (D, n)
    else:
        mu = mean_mod.constant.detach().double().reshape(-1)
        w_mean = torch.zeros(z.shape[-1], z.shape[0], dtype=torch.float64)
    return {
        "inv_l": (1.0 / ls).numpy(),
        "zt": zs.mT.contiguous().numpy(),
        "logk_c": (torch.log(sf2)[:, None, None] - 0.5 * zs.pow(2).sum(-1).unsqueeze(-2)).numpy(),
        "aw": aw.numpy(),
        "alpha": alpha.numpy(),
        "prior_var": (sf2 + jitter + noise).numpy(),
        "mu": mu.numpy(),
        "w_mean": w_mean.numpy(),
        "jitter": np.float64(jitter),
    }


def _const(name: str, arr: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ascontiguousarray(arr, dtype=np.float32), name)


def _novelty_nodes(novelty, inits: list, nodes: list, var_in: str, var_out: str) -> None:
    """Append the novelty term: var_out = var_in + alpha^2 * g2 (module docstring)."""
    store = np.asarray(novelty.store, dtype=np.float64)
    inits += [_const("nov_st_m2", -2.0 * store.T), _const("nov_s2", (store**2).sum(1)[None, :]),
              _const("nov_alpha2", (np.asarray(novelty.alpha) ** 2)[None, :])]
    nodes += [  # d2_k = |x'|^2 - 2 x'.s_k + |s_k|^2: one (1, 3n) x (3n, K) product
        helper.make_node("MatMul", ["h0", "nov_st_m2"], ["nov_cross"]),  # (1, K)
        helper.make_node("ReduceSumSquare", ["h0"], ["nov_x2"], axes=[1], keepdims=1),  # (1, 1)
        helper.make_node("Add", ["nov_cross", "nov_s2"], ["nov_d2a"]),
        helper.make_node("Add", ["nov_d2a", "nov_x2"], ["nov_d2k"]),
        helper.make_node("ReduceMin", ["nov_d2k"], ["nov_d2m"], axes=[1], keepdims=1),  # (1, 1)
        helper.make_node("Relu", ["nov_d2m"], ["nov_d2"]),  # float32 cancellation can dip below 0
    ]
    g2 = "nov_d2"
    if novelty.d0 > 0:
        inits.append(_const("nov_d0", np.array([[novelty.d0]])))
        nodes += [
            helper.make_node("Sqrt", ["nov_d2"], ["nov_d"]),
            helper.make_node("Sub", ["nov_d", "nov_d0"], ["nov_dd"]),
            helper.make_node("Relu", ["nov_dd"], ["nov_g"]),
            helper.make_node("Mul", ["nov_g", "nov_g"], ["nov_g2"]),
        ]
        g2 = "nov_g2"
    nodes += [
        helper.make_node("Mul", [g2, "nov_alpha2"], ["nov_var"]),  # (1, n)
        helper.make_node("Add", [var_in, "nov_var"], [var_out]),
    ]


def build_onnx(model: GPInverseModel, novelty=None) -> onnx.ModelProto:
    """The batch-1 mean+variance graph of ``model`` (see module docstring), with the optional
    novelty term (a ``novelty.NoveltyTerm`` in ``model``'s standardized units)."""
    c = precompute_caches(model)
    n, m = c["aw"].shape[0], c["aw"].shape[1]
    x_mean = model.x_mean.numpy()
    x_std = model.x_std.numpy()
    y_mean = model.y_mean.numpy()
    y_std = model.y_std.numpy()
    inits = [
        _const("x_mean", x_mean[None, :]), _const("x_inv_std", 1.0 / x_std[None, :]),
        _const("inv_l", c["inv_l"]), _const("zt", c["zt"]), _const("logk_c", c["logk_c"]),
        _const("aw", c["aw"]), _const("alpha", c["alpha"]),
        _const("w_mean", c["w_mean"]),
        _const("sign", np.concatenate([-np.ones(m), np.ones(m)])[:, None]),
        _const("minus_half", np.array(-0.5)),
        _const("y_scale", y_std[None, :]), _const("y_bias", (c["mu"] * y_std + y_mean)[None, :]),
        _const("v_scale", (y_std**2)[None, :]), _const("v_bias", (c["prior_var"] * y_std**2)[None, :]),
        _const("v_floor", np.array(1e-12)),
        numpy_helper.from_array(np.array([1, n], dtype=np.int64), "out_shape"),
    ]
    nodes = [
        helper.make_node("Sub", [INPUT_NAME, "x_mean"], ["xc"]),
        helper.make_node("Mul", ["xc", "x_inv_std"], ["h0"]),
    ]
    h = "h0"
    if model.extractor is not None:
        linears = [mod for mod in model.extractor if isinstance(mod, torch.nn.Linear)]
        for i, lin in enumerate(linears):
            inits += [_const(f"W{i}", lin.weight.detach().double().numpy()),
                      _const(f"b{i}", lin.bias.detach().double().numpy())]
            nodes.append(helper.make_node("Gemm", [h, f"W{i}", f"b{i}"], [f"g{i}"], transB=1))
            h = f"g{i}"
            if i < len(linears) - 1:
                nodes.append(helper.make_node("Relu", [h], [f"r{i}"]))
                h = f"r{i}"
        if model.cfg.gp_input == "features+x":  # distance-aware: the standardized input joins z
            nodes.append(helper.make_node("Concat", [h, "h0"], ["zcat"], axis=1))
            h = "zcat"
    nodes += [
        helper.make_node("Mul", [h, "inv_l"], ["zs"]),  # (n, 1, D)
        helper.make_node("MatMul", ["zs", "zt"], ["cross"]),  # (n, 1, M)
        helper.make_node("ReduceSumSquare", ["zs"], ["zs2"], axes=[-1], keepdims=1),  # (n, 1, 1)
        helper.make_node("Mul", ["zs2", "minus_half"], ["zs2h"]),
        helper.make_node("Add", ["cross", "logk_c"], ["lk0"]),
        helper.make_node("Add", ["lk0", "zs2h"], ["logk"]),
        helper.make_node("Exp", ["logk"], ["k"]),  # (n, 1, M)
        helper.make_node("MatMul", ["k", "aw"], ["ac"]),  # (n, 1, 2M)
        helper.make_node("Mul", ["ac", "ac"], ["ac2"]),
        helper.make_node("MatMul", ["ac2", "sign"], ["dvar"]),  # (n, 1, 1)
        helper.make_node("MatMul", ["k", "alpha"], ["kalpha"]),  # (n, 1, 1)
        helper.make_node("Reshape", ["kalpha", "out_shape"], ["mean_k"]),
        helper.make_node("MatMul", [h, "w_mean"], ["mean_lin"]),  # (1, n) linear prior mean
        helper.make_node("Add", ["mean_k", "mean_lin"], ["mean_n"]),
        helper.make_node("Reshape", ["dvar", "out_shape"], ["dvar_n"]),
        helper.make_node("Mul", ["mean_n", "y_scale"], ["mean_s"]),
        helper.make_node("Add", ["mean_s", "y_bias"], [OUTPUT_NAMES[0]]),
        helper.make_node("Mul", ["dvar_n", "v_scale"], ["var_s"]),
        helper.make_node("Add", ["var_s", "v_bias"], ["var_gp"]),
    ]
    var_raw = "var_gp"
    if novelty is not None:
        _novelty_nodes(novelty, inits, nodes, "var_gp", "var_nov")
        var_raw = "var_nov"
    nodes.append(helper.make_node("Max", [var_raw, "v_floor"], [OUTPUT_NAMES[1]]))
    graph = helper.make_graph(
        nodes, f"{model.cfg.kind}_mean_var",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [1, model.cfg.input_dim])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, n]) for name in OUTPUT_NAMES],
        initializer=inits,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="dynlearn_ros")
    proto.ir_version = IR_VERSION
    onnx.checker.check_model(proto)
    return proto


@torch.no_grad()
def gpytorch_mean_var(model: GPInverseModel, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """gpytorch's own predictive mean (N*m) and variance ((N*m)^2, likelihood noise included)
    for raw inputs x (B, 3n), float64 arrays (B, n). The reference for the parity test."""
    model.eval()
    with gpytorch.settings.fast_pred_var(False):
        f = model.latent(model.normalize_x(x))
        mean = f.mean.double() * model.y_std + model.y_mean
        var = (f.variance.double() + model.noise_var().double()) * model.y_std**2
    return mean.numpy(), var.numpy()


def export_model_dir(model: GPInverseModel, out_dir: str | Path, joint_names: tuple[str, ...],
                     extra_meta: dict | None = None, golden_x: np.ndarray | None = None,
                     novelty=None, model_version: int | None = None) -> Path:
    """Write ``model.onnx`` + ``metadata.json`` + ``golden.npz``, validated, whole or not at all
    (temporary directory, then rename; a failure leaves an existing ``out_dir`` as it was).

    Metadata (:class:`~dynlearn_ros.runtime.metadata.ModelMetadata`): kind "svdkl", model
    (svdkl / svgp), role inverse, joint_names, dt null (memoryless), inputs / outputs,
    sigma_bounds (``model.sigma_n_f()``, N*m), normalization (applied inside the graph), metrics
    and provenance from ``extra_meta`` (keys ``training`` -> train_config, ``training_data_hash``
    -> data_hash, ``metrics``, ``export_command`` -> command), and the "svdkl" section (config,
    opset, ir_version, jitter, ``novelty`` when given: K, d0, alpha in N*m per standardized unit,
    the calibration record). The golden rows ``golden_x`` (default: the input mean) are run
    through the graph and must match gpytorch's float64 prediction (plus the novelty term) within
    EXPORT_MEAN_TOL_STD / EXPORT_VAR_RTOL, else ValueError; the graph's outputs become the golden
    sequence and gpytorch's are kept beside them as ``ref.mean`` / ``ref.var``."""
    out_dir = Path(out_dir)
    extra = dict(extra_meta or {})
    proto = build_onnx(model, novelty)
    sigma_n, sigma_f = model.sigma_n_f()
    if golden_x is None:  # inputs near the training distribution: the normalization means
        golden_x = model.x_mean.numpy()[None, :]
    golden_x = np.asarray(golden_x, dtype=np.float64).reshape(-1, model.cfg.input_dim)
    g_mean, g_var = gpytorch_mean_var(model, golden_x)
    if novelty is not None:
        g_var = g_var + novelty.extra_var(model.normalize_x(golden_x).double().numpy())
    n = model.cfg.n_joints
    specific = {"config": model.cfg.to_dict(), "opset": OPSET, "ir_version": IR_VERSION,
                "jitter": float(precompute_caches(model)["jitter"])}
    if novelty is not None:
        specific["novelty"] = novelty.to_json()
    training = extra.pop("training", None) or {}
    data_hash = extra.pop("training_data_hash", None) or training.get("data_hash") or ""
    details = {"train_command": training.get("command") or ""}
    if extra.get("metrics") is None:
        extra.pop("metrics", None)
    metrics = extra.pop("metrics", {})
    command = extra.pop("export_command", "") or ""
    if extra:
        details["extra"] = extra
    fields = {
        "model_version": next_model_version(out_dir, model_version), "kind": "svdkl", "model": model.cfg.kind,
        "role": "inverse", "joint_names": tuple(joint_names), "dt": None,
        "inputs": (TensorSpec(INPUT_NAME, (1, model.cfg.input_dim), "float32", SVDKL_TENSORS["x"]),),
        "outputs": tuple(TensorSpec(k, (1, n), "float32", SVDKL_TENSORS[k]) for k in OUTPUT_NAMES),
        "sigma_bounds": SigmaBounds(tuple(sigma_n.tolist()), tuple(sigma_f.tolist()), SIGMA_SOURCE),
        "normalization": {"applied_in_graph": True,
                          "x_mean": model.x_mean.tolist(), "x_std": model.x_std.tolist(),
                          "y_mean": model.y_mean.tolist(), "y_std": model.y_std.tolist()},
        "provenance": Provenance(command, str(training.get("data") or ""), str(data_hash),
                                 time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), __version__, training, details),
        "metrics": metrics, "specific": specific,
    }

    def fill(tmp: Path) -> None:
        onnx.save_model(proto, str(tmp / "model.onnx"))
        meta = finish_model_dir(tmp, fields, {INPUT_NAME: golden_x[:, None, :].astype(np.float32)},
                                reference={"mean": g_mean, "var": g_var})
        _check_against_gpytorch(tmp, meta.golden.file, g_mean, g_var)

    return publish_model_dir(out_dir, fill, check=validate_model_dir)


def _check_against_gpytorch(tmp: Path, golden_file: str, g_mean: np.ndarray, g_var: np.ndarray) -> None:
    """Refuse the export if the graph's golden outputs miss gpytorch's (float64) beyond the
    EXPORT_* tolerances."""
    with np.load(tmp / golden_file) as z:
        m, v = z["out.mean"][:, 0].astype(np.float64), z["out.var"][:, 0].astype(np.float64)
    dm = float(np.max(np.abs(m - g_mean) / np.sqrt(g_var)))
    dv = float(np.max(np.abs(v - g_var) / g_var))
    if dm > EXPORT_MEAN_TOL_STD or dv > EXPORT_VAR_RTOL:
        raise ValueError(f"ONNX graph vs gpytorch on the golden rows: mean {dm:.3g} std (bound {EXPORT_MEAN_TOL_STD}), "
                         f"var {dv:.3g} relative (bound {EXPORT_VAR_RTOL}): export refused")
