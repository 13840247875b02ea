"""SVDKL inverse model in onnxruntime: feed-forward torque mean and predictive std per joint.

A model directory holds ``model.onnx`` (input ``x`` float32 (1, 3n) = [q, qd, qdd] in the
model's joint order; outputs ``mean`` (1, n) N*m and ``var`` (1, n) (N*m)^2, the predictive
variance including the likelihood noise), ``metadata.json`` (kind "svdkl", schema in
docs/models.md: joint names, normalization - applied inside the graph -, sigma bounds per joint)
and ``golden.npz``. Written by ``dynlearn_ros.learning.export.gp``, loaded through
:func:`dynlearn_ros.runtime.validate.open_model_dir`; this module needs only numpy and onnxruntime.

A model may carry a novelty term inside its graph (metadata ``svdkl.novelty``: K stored training
inputs, per-joint alpha in N*m per standardized input unit, dead zone d0): then ``var`` is
var_gp + (alpha_j max(d - d0, 0))^2 with d the distance of the standardized input to the nearest
stored input, so the std the gain schedule reads grows where the state leaves the training data.
Nothing changes here: the graph's signature and outputs are the same (``novelty`` property).

A model may declare an analytic base (metadata ``base``, runtime/analytic_base.py): then the
graph predicts tau - RNEA_urdf(q, qd, qdd) and this predictor adds RNEA(q, qd, qdd_des) of the
URDF it is given (the controller's; the load refuses another robot's or no URDF).

Per tick (no allocation): x = [q, qd, qdd_des] -> session -> mean_out = mean (+ the base's
RNEA), std_out = sqrt(var).
``qdd_des`` is the reference acceleration, so the mean is the feed-forward torque of the desired
motion at the measured state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dynlearn_ros.core.inverse_model import InverseModel, InverseQuery
from dynlearn_ros.runtime.errors import ModelLoadError
from dynlearn_ros.runtime.metadata import ModelMetadata
from dynlearn_ros.runtime.validate import ValidatedModel, joint_permutation, open_model_dir

#: what each graph tensor holds (metadata inputs / outputs descriptions)
SVDKL_TENSORS: dict[str, str] = {
    "x": "[q (rad), qd (rad/s), qdd (rad/s^2)], each in joint_names order",
    "mean": "feed-forward torque (N*m)",
    "var": "predictive variance including the likelihood noise ((N*m)^2)",
}


class SvdklPredictor(InverseModel):
    """Feed-forward torque and its predictive std from an exported SVDKL (or SVGP) model.

    joint_names: the caller's joint order (n,); the model's order is mapped once at load.
    ``version`` (metadata model_version), ``model_dir`` and ``metadata`` describe what was loaded.
    """

    kind = "svdkl"

    def __init__(self, model: ValidatedModel, joint_names: Sequence[str]) -> None:
        super().__init__(tuple(joint_names))
        meta = model.metadata
        #: the analytic base's RNEA term (None: the graph's mean is the whole torque)
        self.base = None
        if meta.base is not None:
            from dynlearn_ros.runtime.analytic_base import base_term

            self.base = base_term(model, self.joint_names)
        self.model_dir: Path = model.model_dir
        self.metadata: ModelMetadata = meta
        self.version: int = meta.model_version
        perm = joint_permutation(meta.joint_names, self.joint_names)
        if np.array_equal(perm, np.arange(self.n)):
            self._in_idx = None
            self._out_idx = None
        else:
            self._in_idx = perm.astype(np.intp)
            self._out_idx = np.argsort(perm).astype(np.intp)
        n = self.n
        self.step = model.step
        self.session = self.step.session
        ins, outs = list(self.step.inputs.items()), list(self.step.outputs.items())
        if len(ins) != 1 or ins[0][1].shape != (1, 3 * n) or len(outs) != 2 or any(v.shape != (1, n) for _, v in outs):
            raise ModelLoadError(f"{self.model_dir}: graph signature {[(k, v.shape) for k, v in ins]} -> "
                                 f"{[(k, v.shape) for k, v in outs]} does not fit {n} joints")
        if [k for k, _ in outs] != ["mean", "var"]:
            raise ModelLoadError(f"{self.model_dir}: outputs {[k for k, _ in outs]}, expected ['mean', 'var']")
        self._x0 = ins[0][1][0]
        self._out = self.step.out_buf.reshape(2, n)  # rows: mean, var (one buffer: one NaN scan)
        self._tmp = np.zeros(n)  # float64 scratch for reordering
        self._std = np.zeros(n)
        sb = meta.sigma_bounds
        if sb is None:
            raise ModelLoadError(f"{self.model_dir}/metadata.json: key 'sigma_bounds' is null; an SVDKL model "
                                 "always has them (noise / signal std)")
        sn = np.asarray(sb.sigma_n, dtype=np.float64)
        sf = np.asarray(sb.sigma_f, dtype=np.float64)
        if self._out_idx is not None:
            sn, sf = sn[self._out_idx], sf[self._out_idx]
        self._sigma_n, self._sigma_f = sn, sf

    @classmethod
    def from_directory(cls, model_dir: Path, joint_names: Sequence[str], urdf: str | Path | None = None
                       ) -> SvdklPredictor:
        """Validate ``model_dir`` (files, schema, initializers, graph signature, golden replay) and
        map its joints to ``joint_names``; raises ModelLoadError with the reason otherwise.
        ``urdf``: the controller's URDF, required by a model with an analytic base (which must
        reproduce the base's probe torques with it)."""
        vm = open_model_dir(model_dir, kind="svdkl", role="inverse", urdf=urdf)
        if vm.metadata.base is not None and urdf is None:
            raise ModelLoadError(f"{model_dir}: the model declares an analytic base (robot "
                                 f"{vm.metadata.base['robot']!r}); its loader must pass the controller's URDF")
        pred = cls(vm, joint_names)
        if not getattr(vm.step, "params", None):
            pred.warm_up()
        return pred

    def warm_up(self, runs: int = 20) -> None:
        """Run the session a few times (first calls allocate inside onnxruntime; the input is
        whatever the golden replay left in the buffer, a row near the training data). Not for an
        online version on a shared session (runtime/shared_graph.py): the session has run before
        and the golden replay has run this version's own binding."""
        for _ in range(runs):
            self.step.run()

    def predict(self, query: InverseQuery, mean_out: np.ndarray, std_out: np.ndarray) -> bool:
        """mean_out (n,) N*m: feed-forward torque for (q, qd, qdd_des); std_out (n,) N*m:
        predictive std including the likelihood noise. False if any output is not finite."""
        n, x = self.n, self._x0
        if self._in_idx is None:
            x[:n] = query.q
            x[n:2 * n] = query.qd
            x[2 * n:] = query.qdd_des
        else:
            idx = self._in_idx
            np.take(query.q, idx, out=self._tmp)
            x[:n] = self._tmp
            np.take(query.qd, idx, out=self._tmp)
            x[n:2 * n] = self._tmp
            np.take(query.qdd_des, idx, out=self._tmp)
            x[2 * n:] = self._tmp
        self.step.run()
        if not math.isfinite(self._out.sum()):
            return False
        if self._out_idx is None:
            mean_out[:] = self._out[0]
            np.sqrt(self._out[1], out=std_out)
        else:
            self._tmp[:] = self._out[0]
            np.take(self._tmp, self._out_idx, out=mean_out)
            np.sqrt(self._out[1], out=self._std)
            np.take(self._std, self._out_idx, out=std_out)
        if self.base is not None:
            self.base.add(query.q, query.qd, query.qdd_des, mean_out)
        return True

    @property
    def novelty(self) -> dict | None:
        """The novelty term's record from metadata.json (k, d0, alpha, calibration) or None."""
        return self.metadata.specific.get("novelty")

    def noise_and_signal_std(self) -> tuple[np.ndarray, np.ndarray]:
        """(sigma_n, sigma_f) per joint (N*m) in the caller's joint order, from metadata.json."""
        return self._sigma_n.copy(), self._sigma_f.copy()
