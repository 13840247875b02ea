"""ac-RKN predictors over onnxruntime: the controller's inverse model and a forward predictor.

Both load a model directory written by ``dynlearn-ros export`` (``model.onnx`` + ``metadata.json``
+ ``golden.npz``, see docs/models.md) through the one validator
(:func:`dynlearn_ros.runtime.validate.open_model_dir`), keep the packed belief between calls, and
allocate nothing per step (IOBinding onto preallocated float32 buffers, one intra-op thread).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dynlearn_ros.core.inverse_model import InverseModel, InverseQuery
from dynlearn_ros.runtime.errors import ModelLoadError
from dynlearn_ros.runtime.metadata import ModelMetadata
from dynlearn_ros.runtime.validate import ValidatedModel, joint_permutation, open_model_dir

_all = np.logical_and.reduce

__all__ = ["DESIRED_NEXT", "AcrknForwardPredictor", "AcrknInversePredictor", "joint_permutation"]


def _belief(model: ValidatedModel, belief: np.ndarray) -> np.ndarray:
    init = np.asarray(model.metadata.specific["initial_belief"], dtype=np.float32)
    if init.shape != belief.shape:
        raise ModelLoadError(f"{model.model_dir}: initial_belief {init.shape} vs input 'belief' {belief.shape}")
    return init


#: what each graph tensor holds (metadata inputs / outputs descriptions), by role
ACRKN_TENSORS: dict[str, dict[str, str]] = {
    "inverse": {
        "obs": "o_t = [q (rad), qd (rad/s)] per joint in joint_names order",
        "obs_next": "desired o_{t+1}, same layout (see desired_next)",
        "act_prev": "tau_{t-1} (N*m) executed at the previous tick",
        "belief": "packed belief [z (2m) | cu (m) | cl (m) | cs (m)], posterior at t-1",
        "tau_mean": "tau_t (N*m)",
        "tau_var": "predictive variance of tau_t ((N*m)^2)",
        "belief_out": "packed posterior belief at t",
    },
    "forward": {
        "obs": "observation at t (or the last prediction when valid = 0), joint_names order",
        "valid": "1.0 if obs is a measurement, 0.0 if it is missing",
        "act": "action at t (the data set's tau column)",
        "belief": "packed prior belief at t [z (2m) | cu (m) | cl (m) | cs (m)]",
        "obs_next_mean": "predicted observation at t+1",
        "obs_next_var": "one-step predictive variance of obs_next_mean",
        "belief_out": "packed prior belief at t+1",
    },
}

#: how the desired next observation o_{t+1}^des handed to the model is formed
DESIRED_NEXT = ("increment", "reference")
#: what a forward model's decoder predicts (metadata key ``acrkn.output_form``; absent = the
#: first form): "difference" the whole o_{t+1} - o_t, "acceleration" only qd_{t+1} - qd_t with
#: q_{t+1} = q_t + dt qd_{t+1} in the graph (learning.models.sequence.AcRknForward),
#: "acceleration_residual" the same as a change of the last velocity change (its belief carries
#: the previous velocity and torque: n + d_a + 1 more values). The graph's inputs and outputs are the same for all;
#: the runtime feeds the last prediction as ``obs`` when an observation is missing, which the
#: structured forms read.
OUTPUT_FORMS = ("difference", "acceleration", "acceleration_residual")


def _std_scale(model: ValidatedModel, obs_dim: int) -> tuple[np.ndarray | None, str]:
    """(scale^2 (H, d_o) float32 in model order, source) from metadata ``acrkn.std_scale``
    ({"scale": (H, d_o) positive finite, "source": str}); (None, "") without it."""
    spec = model.metadata.specific.get("std_scale")
    if spec is None:
        return None, ""
    try:
        scale = np.asarray(spec["scale"], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"{model.model_dir}/metadata.json: 'acrkn.std_scale' unreadable: {exc}") from exc
    if scale.ndim != 2 or scale.shape[0] < 1 or scale.shape[1] != obs_dim or not np.all(np.isfinite(scale) & (scale > 0)):
        raise ModelLoadError(f"{model.model_dir}/metadata.json: 'acrkn.std_scale.scale' must be a (H >= 1, {obs_dim}) "
                             f"array of positive finite factors, got shape {scale.shape}")
    return (scale * scale).astype(np.float32), str(spec.get("source", ""))


class AcrknInversePredictor(InverseModel):
    """tau_t = ac-RKN(o_t, o_{t+1}^des, tau_{t-1}; belief) (N*m) with its std, o = (q, qd).

    The step reads the belief (posterior at t-1) and the torque executed at t-1: the one passed
    to :meth:`commit` since the last prediction, else ``query.tau_prev``. A finite result
    advances the belief; a non-finite one leaves the belief untouched and returns False.

    o_{t+1}^des (``desired_next``, from metadata key ``desired_next``, default "increment"):

    * "increment": the measured state moved by the reference's own one-step change,
          qd^des_{t+1} = qd_t + (qd_d(t+dt) - qd_d(t)),   q^des_{t+1} = q_t + dt * qd^des_{t+1}
      (the semi-implicit step of the simulator; dt = the query's control period). The model then
      gives the torque that produces the reference acceleration from where the arm is: a
      feed-forward, while the PD term corrects the tracking error. This keeps the model's input
      inside its training distribution: a 1 kHz model saw one-step changes of ~3e-4 rad.
    * "reference": o_{t+1}^des = (q_d, qd_d)(t + dt). The gap to the measured state then includes
      the whole tracking error (mrad = 10x the one-step changes above), and the model asked to
      close it in one millisecond extrapolates; kept for models trained for that use.

    ``version`` (metadata model_version), ``model_dir`` and ``metadata`` (the parsed
    :class:`~dynlearn_ros.runtime.metadata.ModelMetadata`) describe what was loaded.
    """

    kind = "acrkn"

    def __init__(self, model: ValidatedModel, joint_names: Sequence[str]) -> None:
        super().__init__(tuple(joint_names))
        meta = model.metadata
        self.model_dir: Path = model.model_dir
        self.metadata: ModelMetadata = meta
        self.version: int = meta.model_version
        n = self.n
        self.desired_next = meta.specific["desired_next"]
        if self.desired_next not in DESIRED_NEXT:
            raise ModelLoadError(f"{self.model_dir}/metadata.json: key 'acrkn.desired_next' is "
                                 f"{self.desired_next!r}, not one of {DESIRED_NEXT}")
        self._increment = self.desired_next == "increment"
        self._qn = np.zeros(n)
        self._qdn = np.zeros(n)
        self.perm = joint_permutation(meta.joint_names, self.joint_names)
        self.step = model.step
        need = {"obs": (1, 2 * n), "obs_next": (1, 2 * n), "act_prev": (1, n), "belief": None}
        for name, shape in need.items():
            if self.step.inputs.get(name) is None or (shape and self.step.inputs[name].shape != shape):
                raise ModelLoadError(f"{self.model_dir}: input '{name}' missing or not of shape {shape}")
        for name in ("tau_mean", "tau_var", "belief_out"):
            if name not in self.step.outputs:
                raise ModelLoadError(f"{self.model_dir}: output '{name}' missing")
        self._obs = self.step.inputs["obs"][0]
        self._obs_next = self.step.inputs["obs_next"][0]
        self._act = self.step.inputs["act_prev"][0]
        self._belief = self.step.inputs["belief"][0]
        self._tau = self.step.outputs["tau_mean"][0]
        self._var = self.step.outputs["tau_var"][0]
        self._belief_out = self.step.outputs["belief_out"][0]
        self._init_belief = _belief(model, self._belief)
        self._finite = np.zeros(self.step.out_buf.shape, dtype=bool)
        self._views = (self._obs[:n], self._obs[n:], self._obs_next[:n], self._obs_next[n:])
        self._committed = np.zeros(n)
        self._has_commit = False
        self._tmp = np.zeros(n)
        self._identity = bool(np.array_equal(self.perm, np.arange(n)))
        #: the analytic base's RNEA term (metadata ``base``; None: the graph's mean is the whole
        #: torque), evaluated at the acceleration the graph is asked for, (qd^des_{t+1} - qd_t) / dt
        self.base = None
        if meta.base is not None:
            from dynlearn_ros.runtime.analytic_base import base_term

            self.base = base_term(model, self.joint_names)
            self._acc = np.zeros(n)
        self.reset()

    @classmethod
    def from_directory(cls, model_dir: Path, joint_names: Sequence[str], urdf: str | Path | None = None
                       ) -> AcrknInversePredictor:
        """Validate ``model_dir`` (an ac-RKN inverse model) and map its joints to ``joint_names``;
        ModelLoadError with the reason otherwise. ``urdf``: the controller's URDF, required by a
        model with an analytic base (runtime/analytic_base.py)."""
        vm = open_model_dir(model_dir, kind="acrkn", role="inverse", urdf=urdf)
        if vm.metadata.base is not None and urdf is None:
            raise ModelLoadError(f"{model_dir}: the model declares an analytic base (robot "
                                 f"{vm.metadata.base['robot']!r}); its loader must pass the controller's URDF")
        return cls(vm, joint_names)

    def reset(self) -> None:
        self._belief[:] = self._init_belief
        self._has_commit = False

    def commit(self, tau_applied: np.ndarray) -> None:
        """Torque (n,) N*m actually sent this tick; used as tau_{t-1} by the next prediction."""
        self._committed[:] = tau_applied
        self._has_commit = True

    def predict(self, query: InverseQuery, mean_out: np.ndarray, std_out: np.ndarray) -> bool:
        n, p = self.n, self.perm
        prev = self._committed if self._has_commit else query.tau_prev
        self._has_commit = False
        qn, qdn = self._qn, self._qdn
        if self._increment:
            np.subtract(query.qd_des_next, query.qd_des, out=qdn)
            qdn += query.qd
            np.multiply(qdn, query.dt, out=qn)
            qn += query.q
        else:
            qn[:] = query.q_des_next
            qdn[:] = query.qd_des_next
        if self._identity:   # into float32 views made once (a slice per call costs as much as the copy)
            o_q, o_qd, on_q, on_qd = self._views
            o_q[...] = query.q
            o_qd[...] = query.qd
            on_q[...] = qn
            on_qd[...] = qdn
            self._act[...] = prev
        else:  # model order j <- requested order p[j]
            np.take(query.q, p, out=self._tmp)
            self._obs[:n] = self._tmp
            np.take(query.qd, p, out=self._tmp)
            self._obs[n:] = self._tmp
            np.take(qn, p, out=self._tmp)
            self._obs_next[:n] = self._tmp
            np.take(qdn, p, out=self._tmp)
            self._obs_next[n:] = self._tmp
            np.take(prev, p, out=self._tmp)
            self._act[:] = self._tmp
        self.step.run()
        # tau, var and belief in one scan, into a preallocated mask (ndarray.all() would go
        # through numpy's Python-level wrapper)
        if not _all(np.isfinite(self.step.out_buf, out=self._finite)):
            return False
        self._belief[:] = self._belief_out
        np.sqrt(self._var, out=self._var)
        if self._identity:
            mean_out[...] = self._tau
            std_out[...] = self._var
        else:
            mean_out[p] = self._tau
            std_out[p] = self._var
        if self.base is not None:
            np.subtract(qdn, query.qd, out=self._acc)
            self._acc /= query.dt
            self.base.add(query.q, query.qd, self._acc, mean_out)
        return True

    def noise_and_signal_std(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(sigma_n, sigma_f) per joint (N*m) in the caller's joint order (metadata sigma_bounds),
        None if the model was exported without them."""
        sb = self.metadata.sigma_bounds
        if sb is None:
            return None
        sn, sf = np.zeros(self.n), np.zeros(self.n)
        sn[self.perm] = sb.sigma_n
        sf[self.perm] = sb.sigma_f
        return sn, sf


class AcrknForwardPredictor:
    """Streaming forward prediction: o_hat_{t+1} = ac-RKN(o_t, a_t; belief), mean and variance.

    A missing observation (``valid=False``) is replaced by the last prediction and the variance
    accumulates (sum of one-step variances since the last observation); an observation resets it.
    Observation layout and order as in metadata (``obs_layout``, ``joint_names``); ``joint_names``
    given to :meth:`from_directory` reorders the per-joint observation blocks.

    Calibration (metadata ``acrkn.std_scale``, optional): ``scale`` (H, d_o), the factor on the
    std of the h-th prediction since the last observation (h = 1 .. H; beyond H the last row),
    fitted on validation runs so that the 95 % band covers 95 % (``benchmarks.predictor``
    ``fit_std_scale``). The variance returned is var_acc * scale[h]^2; without the key, scale 1.
    ``output_form`` (:data:`OUTPUT_FORMS`) and ``std_scale_source`` say what was loaded.
    """

    def __init__(self, model: ValidatedModel, joint_names: Sequence[str] | None = None) -> None:
        meta = model.metadata
        self.model_dir: Path = model.model_dir
        self.metadata: ModelMetadata = meta
        self.version: int = meta.model_version
        self.step = model.step
        for name in ("obs", "valid", "act", "belief", "obs_next_mean", "obs_next_var", "belief_out"):
            if name not in self.step.inputs and name not in self.step.outputs:
                raise ModelLoadError(f"{self.model_dir}: graph tensor '{name}' missing")
        self._obs = self.step.inputs["obs"][0]
        self._valid = self.step.inputs["valid"][0]
        self._act = self.step.inputs["act"][0]
        self._belief = self.step.inputs["belief"][0]
        self._mean = self.step.outputs["obs_next_mean"][0]
        self._var = self.step.outputs["obs_next_var"][0]
        self._belief_out = self.step.outputs["belief_out"][0]
        self.obs_dim = self._obs.shape[0]
        self.act_dim = self._act.shape[0]
        names = list(meta.joint_names)
        blocks = self.obs_dim // len(names)
        if joint_names is None:
            joint_names = names
        perm = joint_permutation(names, joint_names)
        self.perm = np.concatenate([perm + k * len(names) for k in range(blocks)])
        self._init_belief = _belief(model, self._belief)
        self.output_form = meta.specific.get("output_form", "difference")
        if self.output_form not in OUTPUT_FORMS:
            raise ModelLoadError(f"{self.model_dir}/metadata.json: key 'acrkn.output_form' is "
                                 f"{self.output_form!r}, not one of {OUTPUT_FORMS}")
        self._scale2, self.std_scale_source = _std_scale(model, self.obs_dim)
        self._last = np.zeros(self.obs_dim, dtype=np.float32)
        self._var_acc = np.zeros(self.obs_dim, dtype=np.float32)
        self._has_last = False
        self._since_obs = 0
        self._tmp = np.zeros(self.obs_dim)
        self._requested = tuple(joint_names)
        #: a second predictor of the same files on its own session (:meth:`with_twin`), for
        #: rollouts on another thread while this one follows the states; None without
        self.rollout_twin: AcrknForwardPredictor | None = None
        self.reset()

    def set_std_scale(self, scale: np.ndarray | None) -> None:
        """Use ``scale`` (H, d_o) (model order, positive) instead of the metadata's calibration;
        None: none (the raw accumulated variance, as a calibration is fitted on)."""
        if scale is None:
            self._scale2 = None
            return
        scale = np.asarray(scale, dtype=np.float64)
        if scale.ndim != 2 or scale.shape[1] != self.obs_dim or not np.all(np.isfinite(scale) & (scale > 0)):
            raise ValueError(f"std scale must be (H, {self.obs_dim}) positive finite, got {scale.shape}")
        self._scale2 = (scale * scale).astype(np.float32)

    def with_twin(self) -> AcrknForwardPredictor:
        """Give this predictor a :attr:`rollout_twin`: the same validated directory on a second
        onnxruntime session with its own buffers (not re-validated: the files were, a moment ago,
        by this one). Returns self."""
        from dynlearn_ros.runtime.onnx_step import OnnxStep

        twin_model = ValidatedModel(self.model_dir, self.metadata, OnnxStep(self.model_dir / "model.onnx"), {})
        self.rollout_twin = AcrknForwardPredictor(twin_model, self._requested)
        if self.rollout_twin.snapshot_size != self.snapshot_size:
            raise ModelLoadError(f"{self.model_dir}: model.onnx changed while it was loaded")
        return self

    @classmethod
    def from_directory(cls, model_dir: Path, joint_names: Sequence[str] | None = None) -> AcrknForwardPredictor:
        """Validate ``model_dir`` (an ac-RKN forward model); ModelLoadError with the reason otherwise."""
        return cls(open_model_dir(model_dir, kind="acrkn", role="forward"), joint_names)

    def reset(self) -> None:
        self._belief[:] = self._init_belief
        self._var_acc[:] = 0.0
        self._has_last = False
        self._since_obs = 0

    def predict(self, obs: np.ndarray | None, action: np.ndarray, mean_out: np.ndarray,
                var_out: np.ndarray) -> bool:
        """obs (d_o,) in the requested joint order or None (missing), action (d_a,) in model order
        -> mean_out / var_out (d_o,) of the next observation (requested order). False if the
        output is not finite (belief unchanged) or no observation was ever given. var_out is
        the accumulated variance times the calibration's scale^2 for this step (class docstring)."""
        p = self.perm
        if obs is not None:
            np.take(obs, p, out=self._tmp)
            self._obs[:] = self._tmp
            self._valid[0] = 1.0
            self._var_acc[:] = 0.0
            self._since_obs = 0
        elif self._has_last:
            self._obs[:] = self._last
            self._valid[0] = 0.0
        else:
            return False
        self._act[:] = action
        self.step.run()
        if not (np.isfinite(self._mean).all() and np.isfinite(self._var).all()
                and np.isfinite(self._belief_out).all()):
            return False
        self._belief[:] = self._belief_out
        self._last[:] = self._mean
        self._var_acc += self._var
        self._has_last = True
        self._since_obs += 1
        mean_out[p] = self._mean
        if self._scale2 is None:
            var_out[p] = self._var_acc
        else:
            np.multiply(self._var_acc, self._scale2[min(self._since_obs, self._scale2.shape[0]) - 1], out=self._tmp)
            var_out[p] = self._tmp
        return True

    # -- rollouts (the predictor node): no allocation, the running belief left as it was ---------
    def snapshot_into(self, snap: np.ndarray) -> None:
        """Copy the recurrent state (belief, last prediction, accumulated variance) into ``snap``
        (:attr:`snapshot_size`,) float32."""
        b, d = self._belief.size, self.obs_dim
        snap[:b] = self._belief
        snap[b:b + d] = self._last
        snap[b + d:b + 2 * d] = self._var_acc
        snap[-2] = float(self._since_obs)
        snap[-1] = 1.0 if self._has_last else 0.0

    def restore(self, snap: np.ndarray) -> None:
        """Set the recurrent state back to one :meth:`snapshot_into` recorded."""
        b, d = self._belief.size, self.obs_dim
        self._belief[:] = snap[:b]
        self._last[:] = snap[b:b + d]
        self._var_acc[:] = snap[b + d:b + 2 * d]
        self._since_obs = int(snap[-2])
        self._has_last = bool(snap[-1] > 0.5)

    @property
    def snapshot_size(self) -> int:
        return self._belief.size + 2 * self.obs_dim + 2

    def rollout(self, obs: np.ndarray, action: np.ndarray, mean_out: np.ndarray, var_out: np.ndarray,
                snap: np.ndarray) -> int:
        """Open-loop prediction from the current belief (the prior at t) without changing it.

        obs (d_o,): the observation o_t (requested order), action (d_a,): the action held over
        the whole horizon (model order); mean_out / var_out (K, d_o): row i = mean / accumulated
        variance of o_{t+i+1} (i = 0 .. K-1); ``snap`` (:attr:`snapshot_size`,) scratch space.
        Returns the number of finite rows written (K when all are; rows after a non-finite
        step are left as they were)."""
        self.snapshot_into(snap)
        done = 0
        try:
            for i in range(mean_out.shape[0]):
                if not self.predict(obs if i == 0 else None, action, mean_out[i], var_out[i]):
                    break
                done += 1
        finally:
            self.restore(snap)
        return done
