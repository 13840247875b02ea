"""Weights of an ac-RKN inverse step for the hand-built graph (:mod:`dynlearn_ros.learning.acrkn_onnx`):
from a trained model, or recovered from a ``model.onnx`` the torch exporter wrote.

The builder's dict (float64): ``lod``, ``absolute``, the statistics (``obs_mean/std``,
``act_mean/std``, ``out_mean/std`` = the target's), ``dnext_scale/shift``, the MLPs as lists of
``(W, b)`` in torch layout (``enc_body``, ``control``, ``dec_act``, ``dec_var``), ``enc_mean``,
``enc_var``, ``coef``, the band-masked ``basis`` (K, 4, m, m) and ``q3`` = [elu(q)+1 | 0] (3m).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper


def _layers(named: dict[str, np.ndarray], prefix: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """Linear layers ``prefix.<i>.weight/bias`` in index order."""
    idx = sorted({int(k[len(prefix) + 1:].split(".")[0]) for k in named
                  if k.startswith(prefix + ".") and k.endswith(".weight") and k[len(prefix) + 1:].split(".")[0].isdigit()})
    return [(named[f"{prefix}.{i}.weight"], named[f"{prefix}.{i}.bias"]) for i in idx]


def _collect(named: dict[str, np.ndarray], absolute: bool, q3: np.ndarray, lod: int) -> dict:
    """The builder's weight dict from parameter-named arrays (torch ``state_dict`` names)."""
    def flat(k):
        return np.asarray(named[k], dtype=np.float64).reshape(-1)

    if "cell.coef_net.weight" not in named:
        raise ValueError("lean export supports the linear transition-coefficient net only (trans_net_hidden = 0)")
    w = {
        "lod": int(lod), "absolute": bool(absolute),
        "obs_mean": flat("obs_mean"), "obs_std": flat("obs_std"),
        "act_mean": flat("act_mean"), "act_std": flat("act_std"),
        "out_mean": flat("act_mean" if absolute else "dact_mean"),
        "out_std": flat("act_std" if absolute else "dact_std"),
        "dnext_scale": flat("dnext_scale"), "dnext_shift": flat("dnext_shift"),
        "enc_body": _layers(named, "encoder.body"),
        "enc_mean": (named["encoder.mean.weight"], named["encoder.mean.bias"]),
        "enc_var": (named["encoder.var.weight"], named["encoder.var.bias"]),
        "coef": (named["cell.coef_net.weight"], named["cell.coef_net.bias"]),
        "basis": _masked_basis(named, lod),
        "q3": np.asarray(q3, dtype=np.float64).reshape(-1),
        "control": _layers(named, "control"),
        "dec_act": _layers(named, "dec_act"),
        "dec_var": _layers(named, "dec_var.net"),
    }
    w = {k: ([tuple(np.asarray(a, dtype=np.float64) for a in layer) for layer in v] if isinstance(v, list)
             else tuple(np.asarray(a, dtype=np.float64) for a in v) if isinstance(v, tuple) else v) for k, v in w.items()}
    if w["q3"].shape != (3 * lod,):
        raise ValueError(f"transition noise: expected {3 * lod} values, got {w['q3'].shape}")
    return w


def _masked_basis(named: dict[str, np.ndarray], lod: int) -> np.ndarray:
    """(K, 4, m, m) band-masked basis blocks 11, 12, 21, 22: from ``cell.basis`` and
    ``cell.band_mask``, or from ``transition_flat`` (K, (2m)^2), the row-major A_k - I that the torch
    exporter may have folded them into."""
    if "cell.basis" in named:
        return np.asarray(named["cell.basis"], dtype=np.float64) * np.asarray(named["cell.band_mask"], dtype=np.float64)
    m, n = lod, 2 * lod
    flat = np.asarray(named["transition_flat"], dtype=np.float64)
    full = flat.reshape(flat.shape[0], n, n)
    return np.stack([full[:, :m, :m], full[:, :m, m:], full[:, m:, :m], full[:, m:, m:]], axis=1)


def weights_from_step(step) -> dict:
    """From an :class:`~dynlearn_ros.learning.export.InverseStep` (trained model + statistics)."""
    import torch

    from dynlearn_ros.learning.rkn import elup1

    model = step.model
    named = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}
    named["cell.band_mask"] = model.cell.band_mask.double().numpy()
    for k in ("dnext_scale", "dnext_shift"):
        named[k] = getattr(model, k).double().numpy()
    for k in ("obs_mean", "obs_std", "act_mean", "act_std", "dact_mean", "dact_std"):
        named[k] = getattr(step, k).double().numpy()
    with torch.no_grad():
        q3 = torch.cat([elup1(model.cell.log_trans_cov.double()),
                        torch.zeros(model.cfg.lod, dtype=torch.float64)]).numpy()
    return _collect(named, step.absolute, q3, model.cfg.lod)


def weights_from_torch_onnx(path: Path, absolute: bool, lod: int) -> dict:
    """From a ``model.onnx`` written by the torch exporter (``learning.export``): parameters by
    their initializer names (``model.<state_dict name>``), statistics by name, and the folded
    transition noise ``[elu(q)+1 | 0]`` as the one 3m-vector added to the covariance product."""
    m = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    named = {k[len("model."):] if k.startswith("model.") else k: v for k, v in inits.items()}
    producers = {o: n for n in m.graph.node for o in n.output}
    q3 = None
    for n in m.graph.node:   # Add(<covariance product>, <3m constant>): the product comes from a MatMul
        if n.op_type != "Add":
            continue
        consts = [i for i in n.input if i in inits and inits[i].size == 3 * lod]
        others = [i for i in n.input if i not in inits]
        src = producers.get(others[0]) if len(others) == 1 else None
        while src is not None and src.op_type in ("Squeeze", "Reshape"):
            src = producers.get(src.input[0])
        if consts and src is not None and src.op_type == "MatMul":
            q3 = inits[consts[0]]
            break
    if q3 is None:
        raise ValueError(f"{path}: the transition-noise constant (3m = {3 * lod} values) was not found")
    if "cell.basis" not in named:   # folded: MatMul(softmax(.), <(K, (2m)^2) constant>)
        for n in m.graph.node:
            src = producers.get(n.input[0])
            if n.op_type == "MatMul" and src is not None and src.op_type == "Softmax" and n.input[1] in inits:
                arr = inits[n.input[1]]
                if arr.ndim == 2 and arr.shape[1] == 4 * lod * lod:
                    named["transition_flat"] = arr
                    break
        else:
            raise ValueError(f"{path}: neither cell.basis nor a folded transition basis was found")
    return _collect(named, absolute, q3, lod)
