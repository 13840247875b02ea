"""ONNX export of the static-task FFNN (``train --task static``): torque mean and variance, batch 1.

The graph has the SVDKL model directory's signature, so the controller runs it with
``model_kind:=svdkl`` (:class:`dynlearn_ros.runtime.svdkl.SvdklPredictor`, a memoryless
``x -> (mean, var)`` predictor); metadata ``kind`` "svdkl", ``model`` "ffnn". Built directly with
``onnx.helper`` from the trained weights (float32), for raw input x = [q, qd, qdd] (1, 3n):

    h_0 = (x - x_mean) / x_std                              standardized input (1, 3n)
    h_k = relu(h_{k-1} W_k^T + b_k)                         the body's hidden layers
    mean = (h W_m^T + b_m) * y_std + y_mean                 (1, n) N*m
    var  = (elu(h W_v^T + b_v) + 1 + 1e-4) * y_std^2        (1, n) (N*m)^2

exactly :meth:`dynlearn_ros.learning.models.static.StaticFFNN.forward`. ``var`` is the variance
head's estimate of the squared torque error (trained with a Gaussian NLL), not a GP posterior.

sigma_bounds (what the gain schedule takes as sigma_n / sigma_f per joint) are the 5th / 95th
percentiles of the predicted std on held-out rows, as for the ac-RKN inverse models
(:func:`dynlearn_ros.learning.export.acrkn.sigma_bounds_from_std`). Opset 17, IR version 8.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from dynlearn_ros import __version__
from dynlearn_ros.learning.models.static import StaticFFNN
from dynlearn_ros.runtime.metadata import Provenance, TensorSpec
from dynlearn_ros.runtime.model_store import finish_model_dir, next_model_version, publish_model_dir
from dynlearn_ros.runtime.svdkl import SVDKL_TENSORS
from dynlearn_ros.runtime.validate import validate_model_dir

OPSET = 17
IR_VERSION = 8
INPUT_NAME = "x"
OUTPUT_NAMES = ("mean", "var")
#: the float32 graph against the float32 torch module on the golden rows, checked before anything
#: is written: the same operations in the same order, so only the summation order inside a
#: matrix product differs (float32 rounding ~1e-7 relative per sum of <= a few hundred terms);
#: 1e-4 of the torque scale / of the variance is far above that and far below any real error
EXPORT_MEAN_TOL = 1e-4   # |mean_onnx - mean_torch| / y_std
EXPORT_VAR_RTOL = 1e-4   # |var_onnx - var_torch| / var_torch


def _linear_layers(model: StaticFFNN) -> list[torch.nn.Linear]:
    layers = [m for m in model.body if isinstance(m, torch.nn.Linear)]
    relus = [m for m in model.body if isinstance(m, torch.nn.ReLU)]
    if len(relus) != len(layers) or len(layers) != len(model.cfg.hidden):
        raise ValueError(f"unexpected FFNN body {model.body}: expected Linear + ReLU per hidden layer")
    return layers


def build_onnx(model: StaticFFNN) -> onnx.ModelProto:
    """The ONNX graph of ``model`` (see the module docstring): input ``x`` float32 (1, 3n),
    outputs ``mean`` and ``var`` float32 (1, n)."""
    n = model.cfg.n_joints
    f32 = lambda t: t.detach().to(torch.float32).numpy()  # noqa: E731
    inits = [numpy_helper.from_array(f32(getattr(model, k)).reshape(1, -1), k)
             for k in ("x_mean", "x_std", "y_mean")]
    inits.append(numpy_helper.from_array((f32(model.y_std) ** 2).reshape(1, -1), "y_var"))
    inits.append(numpy_helper.from_array(f32(model.y_std).reshape(1, -1), "y_std"))
    inits.append(numpy_helper.from_array(np.array([[1.0 + 1e-4]], dtype=np.float32), "one_eps"))
    nodes = [helper.make_node("Sub", [INPUT_NAME, "x_mean"], ["xc"]),
             helper.make_node("Div", ["xc", "x_std"], ["h0"])]
    h = "h0"
    for k, lin in enumerate(_linear_layers(model), start=1):
        inits += [numpy_helper.from_array(f32(lin.weight).T.copy(), f"W{k}"),
                  numpy_helper.from_array(f32(lin.bias).reshape(1, -1), f"b{k}")]
        nodes += [helper.make_node("MatMul", [h, f"W{k}"], [f"z{k}"]),
                  helper.make_node("Add", [f"z{k}", f"b{k}"], [f"a{k}"]),
                  helper.make_node("Relu", [f"a{k}"], [f"h{k}"])]
        h = f"h{k}"
    for head, lin in (("m", model.mean_head), ("v", model.var_head)):
        inits += [numpy_helper.from_array(f32(lin.weight).T.copy(), f"W{head}"),
                  numpy_helper.from_array(f32(lin.bias).reshape(1, -1), f"b{head}")]
        nodes += [helper.make_node("MatMul", [h, f"W{head}"], [f"z{head}"]),
                  helper.make_node("Add", [f"z{head}", f"b{head}"], [f"o{head}"])]
    nodes += [helper.make_node("Mul", ["om", "y_std"], ["ms"]),
              helper.make_node("Add", ["ms", "y_mean"], ["mean"]),
              helper.make_node("Elu", ["ov"], ["ve"], alpha=1.0),
              helper.make_node("Add", ["ve", "one_eps"], ["vp"]),
              helper.make_node("Mul", ["vp", "y_var"], ["var"])]
    graph = helper.make_graph(
        nodes, "static_ffnn",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [1, 3 * n])],
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, [1, n]) for k in OUTPUT_NAMES],
        initializer=inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="dynlearn_ros")
    proto.ir_version = IR_VERSION
    onnx.checker.check_model(proto)
    return proto


@torch.no_grad()
def torch_mean_var(model: StaticFFNN, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The torch module's mean and variance (float64 copies of its float32 outputs, (T, n)) for x (T, 3n)."""
    model.eval()
    m, v = model(torch.as_tensor(np.asarray(x), dtype=torch.float32))
    return m.double().numpy(), v.double().numpy()


def write_static_dir(model: StaticFFNN, ckpt: dict, out_dir: str | Path, golden_x: np.ndarray, sigma_bounds, *,
                     metrics: dict | None = None, command: str = "", model_version: int | None = None) -> Path:
    """Write ``model.onnx`` + ``metadata.json`` + ``golden.npz`` to ``out_dir``, validated, whole
    or not at all (temporary directory, then rename).

    ``golden_x`` (T, 3n): rows run through the graph as the golden sequence (held-out data rows);
    the graph's outputs must match the torch module's within EXPORT_MEAN_TOL / EXPORT_VAR_RTOL,
    else ValueError and nothing is written. ``sigma_bounds``: a
    :class:`~dynlearn_ros.runtime.metadata.SigmaBounds` (N*m per joint). Metadata: kind "svdkl",
    model "ffnn", role inverse, dt null, normalization (folded into the graph), provenance from
    ``ckpt`` (data, data_hash, train_config, train_command), ``metrics``, and the "svdkl" section
    (config = the static config, opset, ir_version, jitter 0: there is no kernel matrix)."""
    out_dir = Path(out_dir)
    n = model.cfg.n_joints
    golden_x = np.asarray(golden_x, dtype=np.float64).reshape(-1, 3 * n)
    t_mean, t_var = torch_mean_var(model, golden_x)
    proto = build_onnx(model)
    training = dict(ckpt.get("train_config") or {})
    fields = {
        "model_version": next_model_version(out_dir, model_version), "kind": "svdkl", "model": "ffnn",
        "role": "inverse", "joint_names": tuple(ckpt.get("joint_names") or ()), "dt": None,
        "inputs": (TensorSpec(INPUT_NAME, (1, 3 * n), "float32", SVDKL_TENSORS["x"]),),
        "outputs": (TensorSpec("mean", (1, n), "float32", SVDKL_TENSORS["mean"]),
                    TensorSpec("var", (1, n), "float32", "variance head's estimate of the squared torque error ((N*m)^2)")),
        "sigma_bounds": sigma_bounds,
        "normalization": {"applied_in_graph": True, **{k: getattr(model, k).tolist()
                                                       for k in ("x_mean", "x_std", "y_mean", "y_std")}},
        "provenance": Provenance(command, str(ckpt.get("data") or ""), str(ckpt.get("data_hash") or ""),
                                 time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), __version__, training,
                                 {"train_command": ckpt.get("train_command") or "", "task": "static"}),
        "metrics": metrics or {},
        "specific": {"config": model.cfg.to_dict(), "opset": OPSET, "ir_version": IR_VERSION, "jitter": 0.0},
    }
    if len(fields["joint_names"]) != n:
        raise ValueError(f"checkpoint names {len(fields['joint_names'])} joints, the model has {n}")

    def fill(tmp: Path) -> None:
        onnx.save_model(proto, str(tmp / "model.onnx"))
        meta = finish_model_dir(tmp, fields, {INPUT_NAME: golden_x[:, None, :].astype(np.float32)},
                                reference={"mean": t_mean, "var": t_var})
        with np.load(tmp / meta.golden.file) as z:
            m, v = z["out.mean"][:, 0].astype(np.float64), z["out.var"][:, 0].astype(np.float64)
        dm = float(np.max(np.abs(m - t_mean) / model.y_std.double().numpy()))
        dv = float(np.max(np.abs(v - t_var) / t_var))
        if dm > EXPORT_MEAN_TOL or dv > EXPORT_VAR_RTOL:
            raise ValueError(f"ONNX graph vs torch on the golden rows: mean {dm:.3g} of y_std (bound {EXPORT_MEAN_TOL}), "
                             f"var {dv:.3g} relative (bound {EXPORT_VAR_RTOL}): export refused")

    return publish_model_dir(out_dir, fill, check=validate_model_dir)


#: how many held-out rows become the golden sequence (spread evenly over the test split)
GOLDEN_ROWS = 16


def export_static_run(run: str | Path, out_dir: str | Path, data_name: str | None = None, *, command: str = "",
                      model_version: int | None = None) -> tuple[Path, dict]:
    """Export the static run ``run`` (``train --task static``) to ``out_dir``: its test split
    (the split and seed it was trained with, of ``data_name`` or the run's data set) gives the
    metrics (:func:`~dynlearn_ros.learning.evaluation.sequence.torque_errors`), the sigma bounds
    (5th / 95th percentile of the predicted std) and GOLDEN_ROWS golden rows. Returns (directory,
    metrics)."""
    from dynlearn_ros.datasets.catalog import load_dataset
    from dynlearn_ros.datasets.splits import SplitSpec, split_data
    from dynlearn_ros.learning.evaluation.sequence import torque_errors
    from dynlearn_ros.learning.export.acrkn import sigma_bounds_from_std
    from dynlearn_ros.learning.training.gp import inputs_targets
    from dynlearn_ros.learning.training.static import load_static

    model, ckpt = load_static(run)
    name = data_name or ckpt.get("data")
    if not name:
        raise ValueError(f"{run}: the checkpoint names no data set; pass the data set the run was trained on")
    data = load_dataset(name)
    if ckpt.get("joint_names") and tuple(ckpt["joint_names"]) != tuple(data.joint_names):
        raise ValueError(f"{run} was trained on joints {ckpt['joint_names']}; {name} has {list(data.joint_names)}")
    _tr, _va, test = split_data(data, seed=ckpt["train_config"]["seed"], spec=SplitSpec.from_dict(ckpt.get("split")))
    x, y = inputs_targets(test)
    if len(x) < 2:
        raise ValueError(f"{name}: the test split has {len(x)} rows; the sigma bounds need >= 2")
    mean, std = model.predict(x)
    metrics = torque_errors(mean, y, std)
    metrics["split"] = f"test split of {name}, seed {ckpt['train_config']['seed']} (static task: every row)"
    golden = x[np.linspace(0, len(x) - 1, min(GOLDEN_ROWS, len(x))).astype(int)]
    source = "5th / 95th percentile of the FFNN's predicted std on the test split, per joint"
    out = write_static_dir(model, ckpt, out_dir, golden, sigma_bounds_from_std(std, source), metrics=metrics,
                           command=command, model_version=model_version)
    return out, metrics
