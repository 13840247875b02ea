"""Weights of an ac-RKN inverse step for the hand-built graph (:mod:`dynlearn_ros.learning.export.acrkn_graph`):
from a trained model, or recovered from a ``model.onnx`` the torch exporter wrote.

The builder's dict (float64): ``lod``, ``absolute``, the statistics (``obs_mean/std``,
``act_mean/std``, ``out_mean/std`` = the target's), ``dnext_scale/shift``, the MLPs as lists of
``(W, b)`` in torch layout (``enc_body``, ``control``, ``dec_act``, ``dec_var``), ``enc_mean``,
``enc_var``, ``coef``, ``transition`` (K, 2m, 2m) = the band-masked basis matrices A_k - I in
the layout of ``RKNCell.transition_matrix``, and ``q3`` = [elu(q)+1 | 0] (3m).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _linear(named: dict[str, np.ndarray], prefix: str) -> tuple[np.ndarray, np.ndarray]:
    return _f64(named[f"{prefix}.weight"]), _f64(named[f"{prefix}.bias"])


def _layers(named: dict[str, np.ndarray], prefix: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """Linear layers ``prefix.<i>.weight/bias`` in index order."""
    idx = set()
    for k in named:
        head, _, rest = k[len(prefix) + 1:].partition(".")
        if k.startswith(prefix + ".") and rest == "weight" and head.isdigit():
            idx.add(int(head))
    return [_linear(named, f"{prefix}.{i}") for i in sorted(idx)]


def _collect(named: dict[str, np.ndarray], absolute: bool, q3: np.ndarray, lod: int) -> dict:
    """The builder's weight dict from parameter-named arrays (torch ``state_dict`` names)."""
    def flat(k):
        return _f64(named[k]).reshape(-1)

    if "cell.coef_net.weight" not in named:
        raise ValueError("lean export supports the linear transition-coefficient net only (trans_net_hidden = 0)")
    q3 = _f64(q3).reshape(-1)
    if q3.shape != (3 * lod,):
        raise ValueError(f"transition noise: expected {3 * lod} values, got {q3.shape}")
    return {
        "lod": int(lod), "absolute": bool(absolute),
        "obs_mean": flat("obs_mean"), "obs_std": flat("obs_std"),
        "act_mean": flat("act_mean"), "act_std": flat("act_std"),
        "out_mean": flat("act_mean" if absolute else "dact_mean"),
        "out_std": flat("act_std" if absolute else "dact_std"),
        "dnext_scale": flat("dnext_scale"), "dnext_shift": flat("dnext_shift"),
        "enc_body": _layers(named, "encoder.body"),
        "enc_mean": _linear(named, "encoder.mean"), "enc_var": _linear(named, "encoder.var"),
        "coef": _linear(named, "cell.coef_net"),
        "transition": _transition(named, lod),
        "q3": q3,
        "control": _layers(named, "control"),
        "dec_act": _layers(named, "dec_act"),
        "dec_var": _layers(named, "dec_var.net"),
    }


def _transition(named: dict[str, np.ndarray], lod: int) -> np.ndarray:
    """(K, 2m, 2m) band-masked A_k - I: from ``cell.basis`` (K, 4, m, m; blocks 11, 12, 21, 22)
    and ``cell.band_mask``, or from ``transition_flat`` (K, (2m)^2), the same matrices row-major,
    which the torch exporter may have folded them into."""
    n = 2 * lod
    if "cell.basis" in named:
        basis = _f64(named["cell.basis"]) * _f64(named["cell.band_mask"])
        k = basis.shape[0]
        return basis.reshape(k, 2, 2, lod, lod).transpose(0, 1, 3, 2, 4).reshape(k, n, n)
    flat = _f64(named["transition_flat"])
    return flat.reshape(flat.shape[0], n, n)


def weights_from_step(step) -> dict:
    """From an :class:`~dynlearn_ros.learning.export.acrkn.InverseStep` (trained model + statistics)."""
    import torch

    from dynlearn_ros.learning.models.rkn import elup1

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
