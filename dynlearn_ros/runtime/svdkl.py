"""SVDKL inverse model in onnxruntime: feed-forward torque mean and predictive std per joint.

A model directory holds ``model.onnx`` (input ``x`` float32 (1, 3n) = [q, qd, qdd] in the
model's joint order; outputs ``mean`` (1, n) N*m and ``var`` (1, n) (N*m)^2, the predictive
variance including the likelihood noise) and ``metadata.json`` (kind "svdkl", joint names,
normalization - applied inside the graph -, sigma_n / sigma_f per joint, a golden batch).
Written by ``dynlearn_ros.learning.gp.export``; this module needs only numpy and onnxruntime.

A model may carry a novelty term inside its graph (metadata ``novelty``: K stored training
inputs, per-joint alpha in N*m per standardized input unit, dead zone d0): then ``var`` is
var_gp + (alpha_j max(d - d0, 0))^2 with d the distance of the standardized input to the nearest
stored input, so the std the gain schedule reads grows where the state leaves the training data.
Nothing changes here: the graph's signature and outputs are the same (``novelty`` property).

Per tick (no allocation): x = [q, qd, qdd_des] -> session -> mean_out = mean, std_out = sqrt(var).
``qdd_des`` is the reference acceleration, so the mean is the feed-forward torque of the desired
motion at the measured state.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from dynlearn_ros.core.inverse_model import InverseModel, InverseQuery
from dynlearn_ros.runtime.registry import ModelLoadError

#: metadata format versions this loader understands
SUPPORTED_FORMATS = (1,)
#: golden-batch check at load. The graph is float32; see test/unit/test_svdkl_export.py for why
#: these bounds hold for a correct export: mean within 1 % of the predictive std, variance within
#: 0.1 % relative (float32 rounding amplified by the conditioning of the inducing-point kernel).
GOLDEN_MEAN_TOL_STD = 1e-2
GOLDEN_VAR_RTOL = 1e-3


def _session(path: Path) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


class SvdklPredictor(InverseModel):
    """Feed-forward torque and its predictive std from an exported SVDKL (or SVGP) model.

    joint_names: the caller's joint order (n,); the model's order is mapped once at load.
    """

    kind = "svdkl"

    def __init__(self, session: ort.InferenceSession, meta: dict, joint_names: Sequence[str]) -> None:
        super().__init__(tuple(joint_names))
        model_names = [str(s) for s in meta["joint_names"]]
        if model_names == list(self.joint_names):
            self._in_idx = None
            self._out_idx = None
        elif sorted(model_names) == sorted(self.joint_names):
            self._in_idx = np.array([self.joint_names.index(s) for s in model_names], dtype=np.intp)
            self._out_idx = np.array([model_names.index(s) for s in self.joint_names], dtype=np.intp)
        else:
            raise ModelLoadError(f"model joints {model_names} do not match the requested joints "
                                 f"{list(self.joint_names)}")
        n = self.n
        self.meta = meta
        self.session = session
        self._x = np.zeros((1, 3 * n), dtype=np.float32)
        self._x0 = self._x[0]
        self._out = np.zeros((2, n), dtype=np.float32)  # rows: mean, var (one buffer: one NaN scan)
        self._mean = self._out[0:1]
        self._var = self._out[1:2]
        self._tmp = np.zeros(n)  # float64 scratch for reordering
        self._std = np.zeros(n)
        self._binding = session.io_binding()
        self._binding.bind_ortvalue_input(meta["input_name"], ort.OrtValue.ortvalue_from_numpy(self._x))
        self._binding.bind_ortvalue_output(meta["output_names"][0], ort.OrtValue.ortvalue_from_numpy(self._mean))
        self._binding.bind_ortvalue_output(meta["output_names"][1], ort.OrtValue.ortvalue_from_numpy(self._var))
        sn = np.asarray(meta["sigma_n"], dtype=np.float64)
        sf = np.asarray(meta["sigma_f"], dtype=np.float64)
        if self._out_idx is not None:
            sn, sf = sn[self._out_idx], sf[self._out_idx]
        self._sigma_n, self._sigma_f = sn, sf

    @classmethod
    def from_directory(cls, model_dir: Path, joint_names: Sequence[str]) -> SvdklPredictor:
        """Load and check ``model_dir`` (model.onnx + metadata.json); raises ModelLoadError when
        the kind, format, joints, graph signature or golden batch do not match."""
        model_dir = Path(model_dir)
        try:
            meta = json.loads((model_dir / "metadata.json").read_text())
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{model_dir}: cannot read metadata.json: {exc}") from exc
        if meta.get("kind") != "svdkl":
            raise ModelLoadError(f"{model_dir}: metadata kind is {meta.get('kind')!r}, expected 'svdkl'")
        if meta.get("format_version") not in SUPPORTED_FORMATS:
            raise ModelLoadError(f"{model_dir}: format_version {meta.get('format_version')} not in {SUPPORTED_FORMATS}")
        for key in ("joint_names", "sigma_n", "sigma_f", "inputs", "outputs", "golden"):
            if key not in meta:
                raise ModelLoadError(f"{model_dir}: metadata.json lacks '{key}'")
        n = len(meta["joint_names"])
        try:
            session = _session(model_dir / "model.onnx")
        except Exception as exc:  # onnxruntime raises its own exception types for corrupt files
            raise ModelLoadError(f"{model_dir}: onnxruntime cannot load model.onnx: {exc}") from exc
        ins, outs = session.get_inputs(), session.get_outputs()
        if len(ins) != 1 or list(ins[0].shape) != [1, 3 * n] or len(outs) != 2:
            raise ModelLoadError(f"{model_dir}: graph signature {[(i.name, i.shape) for i in ins]} -> "
                                 f"{[(o.name, o.shape) for o in outs]} does not fit {n} joints")
        for o in outs:
            if list(o.shape) != [1, n]:
                raise ModelLoadError(f"{model_dir}: output {o.name} has shape {o.shape}, expected [1, {n}]")
        meta = dict(meta, input_name=ins[0].name, output_names=[o.name for o in outs])
        if [o.name for o in outs] != list(meta["outputs"]):
            raise ModelLoadError(f"{model_dir}: outputs {[o.name for o in outs]} differ from metadata {list(meta['outputs'])}")
        pred = cls(session, meta, joint_names)
        pred._check_golden(model_dir)
        pred.warm_up()
        return pred

    def _check_golden(self, model_dir: Path) -> None:
        g = self.meta["golden"]
        gx = np.asarray(g["x"], dtype=np.float64)
        gm, gv = np.asarray(g["mean"]), np.asarray(g["var"])
        for i in range(gx.shape[0]):
            self._x[0] = gx[i]
            self.session.run_with_iobinding(self._binding)
            m, v = self._mean[0].astype(np.float64), self._var[0].astype(np.float64)
            ok_m = np.all(np.abs(m - gm[i]) <= GOLDEN_MEAN_TOL_STD * np.sqrt(gv[i]))
            ok_v = np.all(np.abs(v - gv[i]) <= GOLDEN_VAR_RTOL * gv[i])
            if not (ok_m and ok_v):
                raise ModelLoadError(f"{model_dir}: golden batch row {i} mismatch: mean {m} vs {gm[i]}, "
                                     f"var {v} vs {gv[i]}")

    def warm_up(self, runs: int = 20) -> None:
        """Run the session a few times (first calls allocate inside onnxruntime)."""
        self._x[...] = np.asarray(self.meta["golden"]["x"][0], dtype=np.float32)
        for _ in range(runs):
            self.session.run_with_iobinding(self._binding)

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
        self.session.run_with_iobinding(self._binding)
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
        return True

    @property
    def novelty(self) -> dict | None:
        """The novelty term's record from metadata.json (k, d0, alpha, calibration) or None."""
        return self.meta.get("novelty")

    def noise_and_signal_std(self) -> tuple[np.ndarray, np.ndarray]:
        """(sigma_n, sigma_f) per joint (N*m) in the caller's joint order, from metadata.json."""
        return self._sigma_n.copy(), self._sigma_f.copy()
