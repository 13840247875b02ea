"""ONNX export of one recurrent ac-RKN step with the belief as an explicit input and output.

The graph works in physical units (normalization is baked in as constants) and the belief is
packed into one (1, 5m) float32 tensor ``[z (2m) | cu (m) | cl (m) | cs (m)]``.

Inverse step (``acrkn-inv``), per control tick t::

    inputs:  obs (1, 2n) = [q rad, qd rad/s] at t,  obs_next (1, 2n) desired at t+1,
             act_prev (1, n) N*m executed at t-1,  belief (1, 5m) posterior at t-1
    outputs: tau_mean (1, n) N*m,  tau_var (1, n) (N*m)^2,  belief_out (1, 5m) posterior at t

Forward step (``acrkn-fwd`` / ``rkn``)::

    inputs:  obs (1, d_o) observation at t (or the last prediction),  valid (1, 1) 1.0 / 0.0,
             act (1, d_a) action at t,  belief (1, 5m) prior at t
    outputs: obs_next_mean (1, d_o),  obs_next_var (1, d_o) (one-step variance),
             belief_out (1, 5m) prior at t+1

A model directory is ``model.onnx`` (single file, ``external_data=False``, opset 18) plus
``metadata.json`` (see :func:`write_model_dir`).
"""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from dynlearn_ros import __version__
from dynlearn_ros.datasets.normalize import Stats
from dynlearn_ros.learning.models.sequence import AcRknForward, AcRknInverse
from dynlearn_ros.runtime.model_store import publish_model_dir

OPSET = 18
FORMAT_VERSION = 1


def _c(x: np.ndarray) -> Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float32)).reshape(1, -1)


class _Packed(nn.Module):
    def __init__(self, lod: int) -> None:
        super().__init__()
        self.lod = lod

    def unpack(self, b: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        m = self.lod
        return b[:, :2 * m], b[:, 2 * m:3 * m], b[:, 3 * m:4 * m], b[:, 4 * m:5 * m]

    @staticmethod
    def pack(belief: tuple[Tensor, ...]) -> Tensor:
        return torch.cat(belief, dim=-1)


class InverseStep(_Packed):
    """Physical-unit step of an :class:`AcRknInverse` (see module docstring)."""

    input_names = ("obs", "obs_next", "act_prev", "belief")
    output_names = ("tau_mean", "tau_var", "belief_out")

    def __init__(self, model: AcRknInverse, stats: Stats) -> None:
        super().__init__(model.cfg.lod)
        self.model = model
        self.absolute = model.cfg.act_target == "absolute"
        for k in ("obs_mean", "obs_std", "act_mean", "act_std", "dact_mean", "dact_std"):
            self.register_buffer(k, _c(getattr(stats, k)))

    def forward(self, obs: Tensor, obs_next: Tensor, act_prev: Tensor, belief: Tensor):
        on = (obs - self.obs_mean) / self.obs_std
        nn_ = (obs_next - self.obs_mean) / self.obs_std
        an = (act_prev - self.act_mean) / self.act_std
        mu, var, post = self.model.step(on, nn_, an, self.unpack(belief))
        if self.absolute:
            return mu * self.act_std + self.act_mean, var * self.act_std * self.act_std, self.pack(post)
        tau = act_prev + mu * self.dact_std + self.dact_mean
        return tau, var * self.dact_std * self.dact_std, self.pack(post)


class ForwardStep(_Packed):
    """Physical-unit step of an :class:`AcRknForward` (see module docstring)."""

    input_names = ("obs", "valid", "act", "belief")
    output_names = ("obs_next_mean", "obs_next_var", "belief_out")

    def __init__(self, model: AcRknForward, stats: Stats) -> None:
        super().__init__(model.cfg.lod)
        self.model = model
        for k in ("obs_mean", "obs_std", "act_mean", "act_std", "dobs_mean", "dobs_std"):
            self.register_buffer(k, _c(getattr(stats, k)))

    def forward(self, obs: Tensor, valid: Tensor, act: Tensor, belief: Tensor):
        on = (obs - self.obs_mean) / self.obs_std
        an = (act - self.act_mean) / self.act_std
        mu, var, prior = self.model.step(on, valid, an, self.unpack(belief))
        nxt = obs + mu * self.dobs_std + self.dobs_mean
        return nxt, var * self.dobs_std * self.dobs_std, self.pack(prior)


def step_module(model: nn.Module, stats: Stats) -> _Packed:
    """The physical-unit step wrapper for an ac-RKN / RKN model (eval mode)."""
    model.eval()
    if isinstance(model, AcRknInverse):
        return InverseStep(model, stats).eval()
    if isinstance(model, AcRknForward):
        return ForwardStep(model, stats).eval()
    raise ValueError(f"ONNX step export supports the RKN models, not {type(model).__name__}")


def example_inputs(step: _Packed) -> tuple[Tensor, ...]:
    cfg = step.model.cfg
    belief = initial_belief(step.model)[None]
    if isinstance(step, InverseStep):
        return (torch.zeros(1, cfg.obs_dim) + step.obs_mean, torch.zeros(1, cfg.obs_dim) + step.obs_mean,
                torch.zeros(1, cfg.act_dim) + step.act_mean, belief)
    return (torch.zeros(1, cfg.obs_dim) + step.obs_mean, torch.ones(1, 1),
            torch.zeros(1, cfg.act_dim) + step.act_mean, belief)


def initial_belief(model: nn.Module) -> Tensor:
    """Packed initial belief (5m,) float32: z = 0, cu = cl = init_cov, cs = 0."""
    return torch.cat(model.cell.initial_belief(1), dim=-1)[0]


def lean_supported(step: _Packed) -> bool:
    """An inverse step the hand-built graph of :mod:`dynlearn_ros.learning.acrkn_onnx` covers
    (linear transition-coefficient net, one hidden encoder layer)."""
    model = step.model
    return (isinstance(step, InverseStep) and isinstance(model.cell.coef_net, nn.Linear)
            and len(model.cfg.enc_hidden) == 1)


def export_onnx(step: _Packed, path: Path, lean: bool = True) -> str:
    """Write the step graph to ``path`` (one file, opset 18, static batch-1 shapes); returns which
    graph: the lean hand-built inverse graph where :func:`lean_supported` (``lean``), else
    ``torch.onnx.export`` of the step module."""
    path = Path(path)
    if lean and lean_supported(step):
        import onnx

        from dynlearn_ros.learning.acrkn_onnx import GRAPH_NAME, build_inverse_graph
        from dynlearn_ros.learning.acrkn_weights import weights_from_step

        onnx.save(build_inverse_graph(weights_from_step(step)), str(path))
        return GRAPH_NAME
    export_torch_onnx(step, path)
    return "torch_export"


def export_torch_onnx(step: _Packed, path: Path) -> Path:
    """``torch.onnx.export`` of the step module (dynamo, opset 18, one file)."""
    path = Path(path)
    with torch.no_grad():
        torch.onnx.export(step, example_inputs(step), str(path), input_names=list(step.input_names),
                          output_names=list(step.output_names), opset_version=OPSET, dynamo=True,
                          external_data=False, verbose=False)
    return path


def write_model_dir(model: nn.Module, ckpt: dict, out_dir: Path, metrics: dict | None = None,
                    how: str = "") -> Path:
    """Export ``model`` to ``out_dir`` (model.onnx + metadata.json), atomically (temp dir + rename).

    metadata.json keys: kind ("acrkn"), model, direction, format_version, version (package),
    joint_names, dt (s),
    obs / act layout, normalization (training-split statistics), inputs / outputs (name, shape),
    belief_dim, initial_belief, opset, data, data_hash, train_config, metrics, sigma_n / sigma_f
    (N*m, inverse only, from ``metrics``), desired_next (inverse only, see
    ``runtime.acrkn.AcrknInversePredictor``), created, how, graph (which ONNX graph, see
    :func:`export_onnx`).
    """
    stats = Stats.from_dict(ckpt["stats"])
    step = step_module(model, stats)

    def fill(tmp: Path) -> None:
        graph = export_onnx(step, tmp / "model.onnx")
        ins = example_inputs(step)
        with torch.no_grad():
            outs = step(*ins)
        inverse = isinstance(step, InverseStep)
        jn = list(ckpt["joint_names"])
        meta = {
            "kind": "acrkn", "model": ckpt["model_config"]["kind"], "direction": ckpt["model_config"]["direction"],
            "format_version": FORMAT_VERSION, "version": __version__, "joint_names": jn, "dt": ckpt["dt"],
            "obs_layout": ("[q (rad), qd (rad/s)] per joint in joint_names order" if inverse or
                           ckpt["train_config"].get("obs_qd") else "q per joint in joint_names order"),
            "act_layout": "tau (N*m) per joint" if inverse else "actions of the data set (tau column)",
            "normalization": ckpt["stats"],
            "inputs": [{"name": n, "shape": list(t.shape)} for n, t in zip(step.input_names, ins, strict=True)],
            "outputs": [{"name": n, "shape": list(t.shape)} for n, t in zip(step.output_names, outs, strict=True)],
            "belief_dim": int(ins[-1].shape[1]), "initial_belief": initial_belief(model).tolist(),
            "opset": OPSET, "data": ckpt.get("data", ""), "data_hash": ckpt.get("data_hash", ""),
            "train_config": ckpt["train_config"], "model_config": ckpt["model_config"],
            "best_epoch": ckpt.get("best_epoch"), "metrics": metrics or {},
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "torch": torch.__version__, "python": platform.python_version(), "how": how, "graph": graph,
        }
        if inverse:
            # how the runtime forms the desired next observation (runtime.acrkn.DESIRED_NEXT)
            meta["desired_next"] = "increment"
        if inverse and metrics and "std_p05" in metrics:
            meta["sigma_n"] = metrics["std_p05"]
            meta["sigma_f"] = metrics["std_p95"]
        (tmp / "metadata.json").write_text(json.dumps(meta, indent=1))

    return publish_model_dir(out_dir, fill)
