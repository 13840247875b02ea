"""ONNX export of one recurrent ac-RKN step with the belief as an explicit input and output.

The graph works in physical units (normalization is baked in as constants) and the belief is
packed into one (1, 5m) float32 tensor ``[z (2m) | cu (m) | cl (m) | cs (m)]``.

Inverse step (``acrkn-inv``), per control tick t::

    inputs:  obs (1, 2n) = [q rad, qd rad/s] at t,  obs_next (1, 2n) desired at t+1,
             act_prev (1, n) N*m executed at t-1,  belief (1, 5m) posterior at t-1
    outputs: tau_mean (1, n) N*m,  tau_var (1, n) (N*m)^2,  belief_out (1, 5m) posterior at t

Forward step (``acrkn-fwd`` / ``rkn``)::

    inputs:  obs (1, d_o) observation at t (or the last prediction),  valid (1, 1) 1.0 / 0.0,
             act (1, d_a) action at t,  belief (1, 5m) prior at t (5m + n + d_a + 1 for
             the "acceleration_residual" form: previous velocity, torque and a flag appended)
    outputs: obs_next_mean (1, d_o),  obs_next_var (1, d_o) (one-step variance),
             belief_out (1, 5m) prior at t+1

A model directory is ``model.onnx`` (single file, ``external_data=False``, opset 18) plus
``metadata.json`` and ``golden.npz`` in the one schema of :mod:`dynlearn_ros.runtime.metadata`
(see :func:`write_model_dir` and docs/models.md).
"""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from dynlearn_ros import __version__
from dynlearn_ros.datasets.normalize import Stats
from dynlearn_ros.learning.models.sequence import AcRknForward, AcRknInverse
from dynlearn_ros.runtime.acrkn import ACRKN_TENSORS
from dynlearn_ros.runtime.golden import acrkn_golden_inputs
from dynlearn_ros.runtime.metadata import Provenance, SigmaBounds, TensorSpec
from dynlearn_ros.runtime.model_store import finish_model_dir, next_model_version, publish_model_dir
from dynlearn_ros.runtime.validate import validate_model_dir

OPSET = 18
#: the ac-RKN inverse model's gain-schedule bounds: these percentiles of its predicted std
SIGMA_PERCENTILES = (5.0, 95.0)
SIGMA_SOURCE = "5th / 95th percentile per joint of the predicted std on the test split"


def _c(x: np.ndarray) -> Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float32)).reshape(1, -1)


class _Packed(nn.Module):
    def __init__(self, lod: int, extra: bool = False) -> None:
        super().__init__()
        self.lod = lod
        self.extra = extra

    def unpack(self, b: Tensor) -> tuple[Tensor, ...]:
        """[z (2m) | cu | cl | cs (m each)] and, with ``extra``, the rest of the model's state
        (the "acceleration_residual" form's previous velocity, AcRknForward.initial_state)."""
        m = self.lod
        parts = (b[:, :2 * m], b[:, 2 * m:3 * m], b[:, 3 * m:4 * m], b[:, 4 * m:5 * m])
        return (*parts, b[:, 5 * m:]) if self.extra else parts

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
        super().__init__(model.cfg.lod, extra=getattr(model, "residual", False))
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
    if getattr(model.cfg, "base", "none") != "none":
        raise ValueError(f"ONNX step export does not support base {model.cfg.base!r}: its step carries the "
                         "ARX lags besides the belief, which the exported graph does not (yet)")
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
    """Packed initial belief (5m,) float32: z = 0, cu = cl = init_cov, cs = 0 (the
    "acceleration_residual" forward form appends its n + 1 zeros: 5m + n + 1)."""
    return torch.cat(model.initial_state(1), dim=-1)[0]


def lean_supported(step: _Packed) -> bool:
    """An inverse step the hand-built graph of :mod:`dynlearn_ros.learning.export.acrkn_graph` covers
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

        from dynlearn_ros.learning.export.acrkn_graph import GRAPH_NAME, build_inverse_graph
        from dynlearn_ros.learning.export.acrkn_weights import weights_from_step

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


def sigma_bounds_from_std(std: np.ndarray, source: str = SIGMA_SOURCE) -> SigmaBounds:
    """The gain schedule's (sigma_n, sigma_f) for an inverse model: the SIGMA_PERCENTILES of its
    predicted std ``std`` (N, n) N*m over held-out data, per joint. Raises ValueError when they do
    not satisfy 0 <= sigma_n < sigma_f (a constant std gives no range to schedule over)."""
    std = np.asarray(std, dtype=np.float64)
    if std.ndim != 2 or len(std) < 2 or not np.isfinite(std).all():
        raise ValueError(f"sigma bounds need a finite (N >= 2, n) array of predicted std, got shape {std.shape}")
    lo, hi = (np.percentile(std, p, axis=0) for p in SIGMA_PERCENTILES)
    if not np.all((lo >= 0) & (lo < hi)):
        raise ValueError(f"predicted std percentiles {lo.tolist()} / {hi.tolist()} do not give 0 <= sigma_n < sigma_f")
    return SigmaBounds(tuple(lo.tolist()), tuple(hi.tolist()), source)


def write_model_dir(model: nn.Module, ckpt: dict, out_dir: Path, metrics: dict | None = None, *,
                    test_std: np.ndarray | None = None, command: str = "", data_command: str = "",
                    model_version: int | None = None) -> Path:
    """Export ``model`` to ``out_dir`` (model.onnx + metadata.json + golden.npz), validated, whole
    or not at all (temp dir + rename; a failure leaves an existing ``out_dir`` as it was).

    Metadata (:class:`~dynlearn_ros.runtime.metadata.ModelMetadata`): kind "acrkn", model
    (acrkn-inv / acrkn-fwd), role, joint_names, dt (s), inputs / outputs, sigma_bounds (inverse:
    :func:`sigma_bounds_from_std` of ``test_std`` (N, n) N*m, the predicted std on the test
    split; null without it: the controller then keeps its configured sigma_n / sigma_f), normalization (training-split statistics, folded into
    the graph), provenance (``command`` = the export command, data / data hash / training
    configuration from the checkpoint, ``data_command``), ``metrics``, and the "acrkn" section
    (model_config, initial_belief, belief_dim, graph (see :func:`export_onnx`), opset,
    best_epoch, obs / act layout, desired_next for inverse models, see
    ``runtime.acrkn.AcrknInversePredictor``). ``model_version``: default one more than the
    directory's current version.
    """
    stats = Stats.from_dict(ckpt["stats"])
    step = step_module(model, stats)
    inverse = isinstance(step, InverseStep)
    role = "inverse" if inverse else "forward"
    bounds = sigma_bounds_from_std(test_std) if inverse and test_std is not None else None
    version = next_model_version(out_dir, model_version)

    def fill(tmp: Path) -> None:
        graph = export_onnx(step, tmp / "model.onnx")
        ins = example_inputs(step)
        with torch.no_grad():
            outs = step(*ins)
        desc = ACRKN_TENSORS[role]
        tensors = [tuple(TensorSpec(n, tuple(t.shape), "float32", desc[n]) for n, t in zip(names, ts, strict=True))
                   for names, ts in ((step.input_names, ins), (step.output_names, outs))]
        specific = {
            "model_config": ckpt["model_config"], "initial_belief": initial_belief(model).tolist(),
            "belief_dim": int(ins[-1].shape[1]), "graph": graph, "opset": OPSET, "best_epoch": ckpt.get("best_epoch"),
            "obs_layout": ("[q (rad), qd (rad/s)] per joint in joint_names order" if inverse or
                           ckpt["train_config"].get("obs_qd") else "q per joint in joint_names order"),
            "act_layout": "tau (N*m) per joint" if inverse else "actions of the data set (tau column)",
        }
        if not inverse:
            # what the decoder predicts; the graph's outputs are the same for every form
            # (runtime.acrkn.OUTPUT_FORMS; older directories without the key are "difference")
            specific["output_form"] = model.cfg.fwd_output
        if inverse:
            # how the runtime forms the desired next observation (runtime.acrkn.DESIRED_NEXT)
            specific["desired_next"] = "increment"
        details = {"train_command": ckpt.get("train_command", ""), "torch": torch.__version__,
                   "python": platform.python_version()}
        if data_command:
            details["data_command"] = data_command
        fields = {
            "model_version": version, "kind": "acrkn", "model": ckpt["model_config"]["kind"], "role": role,
            "joint_names": tuple(ckpt["joint_names"]), "dt": float(ckpt["dt"]),
            "inputs": tensors[0], "outputs": tensors[1], "sigma_bounds": bounds,
            "normalization": {"applied_in_graph": True, **ckpt["stats"]},
            "provenance": Provenance(command, str(ckpt.get("data", "")), str(ckpt.get("data_hash", "")),
                                     datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), __version__,
                                     ckpt["train_config"], details),
            "metrics": metrics or {}, "specific": specific,
        }
        golden = acrkn_golden_inputs({t.name: t.shape for t in tensors[0]}, ckpt["stats"],
                                     specific["initial_belief"], role)
        finish_model_dir(tmp, fields, golden, {"belief": "belief_out"})

    return publish_model_dir(out_dir, fill, check=validate_model_dir)
