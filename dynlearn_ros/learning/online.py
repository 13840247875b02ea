"""Learning while it controls: the ROS-free part of the trainer (issue 10, section 1).

Pipeline, per sample and per cycle:

* :class:`StateDifferencer` turns successive measured states (q, qd at time t, with the torque
  applied since the previous state) into inverse-dynamics samples x = [q, qd, a] (3n,), y = tau
  (n,) with a = (qd_t - qd_{t-1}) / (t - t_{t-1}): the causal one-step difference, paired with the
  torque that was applied over that step (no lag, no misalignment; core/residual.py explains why
  the difference is not filtered here: a filter would have to be applied to tau alike). Non-finite
  states and stale ones (time not increasing, or a gap longer than ``max_gap_s``) are skipped
  and counted.
* :class:`SampleRing` keeps the newest ``capacity`` samples.
* :class:`OnlineLearner.cycle` (every ``batch`` new samples; default 100, as in the SVDKL paper):
  the newest ``holdout`` samples are held out; the others update a Bayesian linear correction
  of the *base* model (the shipped SVDKL directory the controller started from):

      tau(x) = base_mean(x) + y_std * (phi(x) W)                        (N*m)
      phi(x) = [1, x', sqrt(2/R) cos(x' Omega / ell + b)]               (1 + 3n + R features)
      x' = (x - x_mean) / x_std     (the base model's own input normalization)

  with Omega ~ N(0, I), b ~ U(0, 2 pi) fixed at start (random Fourier features of an RBF kernel
  of lengthscale ``ell`` in standardized units, plus a linear part). The statistics
  A = sum rho^age phi^T phi and B = sum rho^age phi^T r' (r' = (tau - base_mean) / y_std) carry
  over from cycle to cycle, discounted by rho = exp(-1 / forget_samples) per sample: the update is
  warm-started from the running model (its posterior is the next prior) and forgets an old
  payload with the time constant ``forget_samples``. W = (A + ridge I)^{-1} B.

  Why a correction and not a gradient step on the SVDKL weights: a model directory holds the
  exported ONNX graph and its caches, not the torch weights, so the running model cannot be
  resumed as an SVDKL; the correction keeps the deep kernel's features and its calibrated std
  (and the novelty term) and learns what the deployment changed. The exported variance adds the
  correction's parameter uncertainty, s2_j * phi^T (A + ridge I)^{-1} phi, with s2_j the
  correction's residual mean square (standardized, times y_std_j^2).

* Gate: the candidate and the running model (the correction now in use, zero at first) are
  scored on the held-out window, RMSE over joints in standardized units; the candidate is
  exported only if it is no worse. Export: the base graph with the correction appended
  (:func:`compose_graph`), through the model-directory contract (written whole or not at all,
  validated, golden replay), into ``out_root/v%04d`` (a new directory per version, so a reader
  never sees a directory change under it; the newest ``keep`` are kept).

Everything here is single-threaded numpy + onnxruntime (one thread): a cycle of 100-1000
samples takes tens of ms plus the export (measured: docs/results_closed_loop.md).
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from dynlearn_ros import __version__
from dynlearn_ros.runtime.metadata import MODEL_FILE, ModelMetadata, Provenance
from dynlearn_ros.runtime.model_store import finish_model_dir, publish_model_dir
from dynlearn_ros.runtime.onnx_step import OnnxStep
from dynlearn_ros.runtime.validate import validate_model_dir

#: the composed float32 graph against the float64 numpy prediction on the golden rows: float32
#: carries ~7 digits; the correction sums ~170 terms of size <= a few y_std, so 1e-4 y_std + 1e-5
#: relative of the base torque is ~10x above rounding and far below any real disagreement
COMPOSE_ATOL_YSTD = 1e-4
COMPOSE_RTOL = 1e-5


class StateDifferencer:
    """Samples (x = [q, qd, a] (3n,), tau (n,)) from successive states; counts what it skips."""

    def __init__(self, n: int, max_gap_s: float = 0.02) -> None:
        self.n, self.max_gap_s = n, float(max_gap_s)
        self._q = np.zeros(n)
        self._qd = np.zeros(n)
        self._t = 0.0
        self._have = False
        self.counts = {"states": 0, "samples": 0, "nonfinite": 0, "stale": 0}

    def push(self, q: np.ndarray, qd: np.ndarray, t: float, tau_prev: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """State (rad, rad/s) at ``t`` (s) and the torque (N*m) applied since the previous state.
        Returns the sample of the previous state, or None (first state, skipped or stale)."""
        c = self.counts
        c["states"] += 1
        q, qd, tau_prev = (np.asarray(v, dtype=np.float64) for v in (q, qd, tau_prev))
        if not (np.isfinite(q).all() and np.isfinite(qd).all() and np.isfinite(tau_prev).all() and np.isfinite(t)):
            c["nonfinite"] += 1
            self._have = False
            return None
        out = None
        if self._have:
            h = float(t) - self._t
            if not (0.0 < h <= self.max_gap_s):
                c["stale"] += 1
                if h <= 0.0:      # an old or repeated state: keep the newer record
                    return None
            else:
                a = (qd - self._qd) / h
                out = (np.concatenate([self._q, self._qd, a]), tau_prev.copy())
                c["samples"] += 1
        self._q[:], self._qd[:], self._t, self._have = q, qd, float(t), True
        return out


class SampleRing:
    """The newest ``capacity`` samples: x (3n,), y (n,); ``total`` counts every sample pushed."""

    def __init__(self, capacity: int, n: int) -> None:
        self.capacity, self.n = int(capacity), n
        self.x = np.zeros((self.capacity, 3 * n))
        self.y = np.zeros((self.capacity, n))
        self.total = 0

    def push(self, x: np.ndarray, y: np.ndarray) -> None:
        i = self.total % self.capacity
        self.x[i], self.y[i] = x, y
        self.total += 1

    def span(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Samples with running index in [start, stop) (oldest dropped ones are clipped away)."""
        start = max(start, self.total - self.capacity, 0)
        idx = np.arange(start, stop) % self.capacity
        return self.x[idx], self.y[idx]


@dataclass(frozen=True)
class OnlineConfig:
    """Trainer settings. batch: new samples per cycle; holdout: newest samples scored, not fitted;
    features: R random Fourier features; lengthscale: in standardized input units; ridge: prior
    precision of W (standardized); forget_samples: time constant of the statistics (samples);
    capacity: ring size; keep: model versions kept on disk; seed: the features' draw."""

    batch: int = 100
    holdout: int = 200
    features: int = 128
    lengthscale: float = 3.0
    ridge: float = 1.0
    forget_samples: float = 4000.0
    capacity: int = 20000
    keep: int = 5
    seed: int = 0


@dataclass
class CycleResult:
    """One cycle: accepted (exported) or not, scores (standardized RMSE) and the timing (s)."""

    version: int
    accepted: bool
    samples: int
    train_rmse: float
    heldout_candidate: float
    heldout_running: float
    seconds: dict = field(default_factory=dict)
    path: str = ""
    reason: str = ""


class OnlineLearner:
    """Correction of ``base_dir``'s SVDKL model learned from samples; see the module docstring."""

    def __init__(self, base_dir: str | Path, out_root: str | Path, cfg: OnlineConfig = OnlineConfig()) -> None:
        self.base_dir, self.out_root, self.cfg = Path(base_dir), Path(out_root), cfg
        vm = validate_model_dir(self.base_dir)
        self.meta: ModelMetadata = vm.metadata
        if self.meta.kind != "svdkl":
            raise ValueError(f"{base_dir}: online learning needs an svdkl model, got {self.meta.kind}")
        self.base_step: OnnxStep = vm.step
        nz = self.meta.normalization
        self.x_mean, self.x_std = np.asarray(nz["x_mean"]), np.asarray(nz["x_std"])
        self.y_std = np.asarray(nz["y_std"])
        self.n = self.meta.n_joints
        d = 3 * self.n
        rng = np.random.default_rng(cfg.seed)
        self.omega = rng.normal(size=(d, cfg.features)) / cfg.lengthscale
        self.phase = rng.uniform(0.0, 2 * np.pi, cfg.features)
        nf = 1 + d + cfg.features
        self.A = np.zeros((nf, nf))
        self.B = np.zeros((nf, self.n))
        self.W = np.zeros((nf, self.n))          # the running correction (zero: the base model)
        self.s2 = np.ones(self.n)
        self.ring = SampleRing(cfg.capacity, self.n)
        self._trained_to = 0
        # a restarted trainer continues the numbering of its out_root and clears what a killed one
        # left half-written (hidden temporary directories of the model-directory contract)
        old = [int(p.name[1:]) for p in self.out_root.glob("v[0-9][0-9][0-9][0-9]") if p.is_dir()]
        self.version = max([self.meta.model_version, *old])
        for tmp in self.out_root.glob(".v[0-9][0-9][0-9][0-9].*"):
            shutil.rmtree(tmp, ignore_errors=True)
        self.running_dir = self.base_dir
        self.accepted, self.rejected, self.cycles = 0, 0, 0
        self.history: list[CycleResult] = []
        #: guards the ring: :meth:`add` may run in another thread (a node's callback) than :meth:`cycle`
        self.lock = threading.Lock()

    # -- model pieces ----------------------------------------------------------------------
    def features(self, x: np.ndarray) -> np.ndarray:
        """phi(x) (B, 1 + 3n + R) for raw inputs x (B, 3n)."""
        xs = (x - self.x_mean) / self.x_std
        rff = np.sqrt(2.0 / self.cfg.features) * np.cos(xs @ self.omega + self.phase)
        return np.concatenate([np.ones((x.shape[0], 1)), xs, rff], axis=1)

    def base_predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The base graph's mean (B, n) N*m and var (B, n) (N*m)^2, one row at a time."""
        st = self.base_step
        mean, var = np.zeros((len(x), self.n)), np.zeros((len(x), self.n))
        for i, row in enumerate(x):
            st.inputs["x"][0] = row
            st.run()
            mean[i], var[i] = st.outputs["mean"][0], st.outputs["var"][0]
        return mean, var

    def predict(self, x: np.ndarray, W: np.ndarray | None = None) -> np.ndarray:
        """Mean torque (B, n) of base + correction W (default: the running one)."""
        W = self.W if W is None else W
        return self.base_predict(x)[0] + (self.features(x) @ W) * self.y_std

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        """One sample: x = [q, qd, qdd] (3n,) rad, rad/s, rad/s^2; y = tau (n,) N*m."""
        with self.lock:
            self.ring.push(x, y)

    def ready(self) -> bool:
        """True when at least ``batch`` samples beyond the held-out window are new."""
        return self.ring.total - self.cfg.holdout - self._trained_to >= self.cfg.batch

    # -- one cycle ---------------------------------------------------------------------------
    def cycle(self) -> CycleResult | None:
        """Fit, gate and (if no worse) export; None when fewer than ``batch`` new samples."""
        if not self.ready():
            return None
        cfg, t0 = self.cfg, time.perf_counter()
        with self.lock:   # copies (fancy indexing), so add() may continue meanwhile
            total = self.ring.total
            stop = total - cfg.holdout
            xn, yn = self.ring.span(self._trained_to, stop)
            xh, yh = self.ring.span(stop, total)
        m = len(xn)
        rn = (yn - self.base_predict(xn)[0]) / self.y_std
        pn = self.features(xn)
        rho = np.exp(-m / cfg.forget_samples)
        A = rho * self.A + pn.T @ pn
        B = rho * self.B + pn.T @ rn
        reg = A + cfg.ridge * np.eye(len(A))
        W = np.linalg.solve(reg, B)
        train_rmse = float(np.sqrt(np.mean((rn - pn @ W) ** 2)))
        t_fit = time.perf_counter()
        bh = self.base_predict(xh)[0]
        ph = self.features(xh)
        rh = (yh - bh) / self.y_std
        s_cand = float(np.sqrt(np.mean((rh - ph @ W) ** 2)))
        s_run = float(np.sqrt(np.mean((rh - ph @ self.W) ** 2)))
        t_eval = time.perf_counter()
        self.A, self.B, self._trained_to = A, B, stop   # the statistics advance either way
        self.cycles += 1
        res = CycleResult(self.version, False, m, train_rmse, s_cand, s_run)
        if s_cand <= s_run:
            s2 = np.mean((rn - pn @ W) ** 2, axis=0)
            try:
                path = self._export(W, np.linalg.inv(reg), s2, xh, res)
            except Exception as exc:   # a refused export: counted, the running model stays
                res.reason = f"export refused: {type(exc).__name__}: {exc}"
                self.rejected += 1
            else:
                self.W, self.s2, self.version, self.running_dir = W, s2, res.version, path
                res.accepted, res.path = True, str(path)
                self.accepted += 1
        else:
            res.reason = f"held-out RMSE {s_cand:.4f} > running {s_run:.4f} (standardized)"
            self.rejected += 1
        t_end = time.perf_counter()
        res.seconds = {"fit": t_fit - t0, "evaluate": t_eval - t_fit, "export": t_end - t_eval, "total": t_end - t0}
        self.history.append(res)
        return res

    def _export(self, W: np.ndarray, P: np.ndarray, s2: np.ndarray, golden_x: np.ndarray, res: CycleResult) -> Path:
        version = self.version + 1
        res.version = version
        out = self.out_root / f"v{version:04d}"
        proto = compose_graph(onnx.load(str(self.base_dir / MODEL_FILE)), self.x_mean, self.x_std, self.omega,
                              self.phase, W * self.y_std, P, s2 * self.y_std**2)
        gx = golden_x[-min(len(golden_x), 16):]
        ref_mean = self.predict(gx, W)
        digest = hashlib.sha256(np.ascontiguousarray(self.B).tobytes()).hexdigest()[:16]
        online = {"base_model_dir": str(self.base_dir), "base_model_version": self.meta.model_version,
                  "correction": "base + y_std * ([1, x', sqrt(2/R) cos(x' Omega + b)] W), learning/online.py",
                  "config": dataclasses.asdict(self.cfg), "samples_seen": int(self.ring.total),
                  "heldout_rmse_std_units": {"candidate": res.heldout_candidate, "running": res.heldout_running},
                  "train_rmse_std_units": res.train_rmse}
        fields = {f.name: getattr(self.meta, f.name) for f in dataclasses.fields(self.meta)
                  if f.name not in ("golden", "format_version")}
        fields.update(model_version=version, metrics={"online": online},
                      specific={**self.meta.specific, "online": online},
                      provenance=Provenance("dynlearn_ros.learning.online (trainer)", "online samples", digest,
                                            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), __version__,
                                            dataclasses.asdict(self.cfg),
                                            {"base": self.meta.provenance.to_dict()}))
        y_std = self.y_std

        def fill(tmp: Path) -> None:
            onnx.save_model(proto, str(tmp / MODEL_FILE))
            meta = finish_model_dir(tmp, fields, {"x": gx[:, None, :].astype(np.float32)},
                                    reference={"mean": ref_mean})
            with np.load(tmp / meta.golden.file) as z:
                got = z["out.mean"][:, 0].astype(np.float64)
            bound = COMPOSE_ATOL_YSTD * y_std + COMPOSE_RTOL * np.abs(ref_mean)
            if np.any(np.abs(got - ref_mean) > bound):
                raise ValueError(f"composed graph vs numpy: max |diff| {np.abs(got - ref_mean).max():.3g} N*m")

        path = publish_model_dir(out, fill, check=validate_model_dir)
        self._prune()
        return path

    def _prune(self) -> None:
        dirs = sorted(p for p in self.out_root.glob("v[0-9][0-9][0-9][0-9]") if p.is_dir())
        for p in dirs[:-self.cfg.keep] if self.cfg.keep > 0 else []:
            shutil.rmtree(p, ignore_errors=True)

    def metrics(self) -> dict:
        """Summary: samples, cycles, versions accepted / rejected, the last cycle's scores and times."""
        last = self.history[-1] if self.history else None
        return {"samples_seen": int(self.ring.total), "cycles": self.cycles, "accepted": self.accepted,
                "rejected": self.rejected, "model_version": self.version, "model_dir": str(self.running_dir),
                "last": None if last is None else dataclasses.asdict(last)}


def compose_graph(base: onnx.ModelProto, x_mean: np.ndarray, x_std: np.ndarray, omega: np.ndarray,
                  phase: np.ndarray, w_nm: np.ndarray, P: np.ndarray, s2_nm: np.ndarray) -> onnx.ModelProto:
    """The base graph (input x (1, 3n); outputs mean, var (1, n)) with the correction appended:
    mean += phi(x) w_nm (w_nm (F, n) in N*m), var += (phi P phi^T) s2_nm (s2_nm (n,) (N*m)^2)."""
    g = base.graph
    rename = {"mean": "base_mean", "var": "base_var"}
    for node in g.node:
        node.output[:] = [rename.get(o, o) for o in node.output]
        node.input[:] = [rename.get(i, i) for i in node.input]
    R = omega.shape[1]
    f32 = lambda name, a: numpy_helper.from_array(np.asarray(a, dtype=np.float32), name)  # noqa: E731
    g.initializer.extend([
        f32("oc_x_mean", x_mean[None, :]), f32("oc_x_std", x_std[None, :]), f32("oc_omega", omega),
        f32("oc_phase", phase[None, :]), f32("oc_scale", np.full((1, 1), np.sqrt(2.0 / R))),
        f32("oc_one", np.ones((1, 1))), f32("oc_w", w_nm), f32("oc_p", P), f32("oc_s2", s2_nm[None, :]),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "oc_axis1")])
    g.node.extend([
        helper.make_node("Sub", ["x", "oc_x_mean"], ["oc_xc"]),
        helper.make_node("Div", ["oc_xc", "oc_x_std"], ["oc_xs"]),
        helper.make_node("MatMul", ["oc_xs", "oc_omega"], ["oc_proj"]),
        helper.make_node("Add", ["oc_proj", "oc_phase"], ["oc_arg"]),
        helper.make_node("Cos", ["oc_arg"], ["oc_cos"]),
        helper.make_node("Mul", ["oc_cos", "oc_scale"], ["oc_rff"]),
        helper.make_node("Concat", ["oc_one", "oc_xs", "oc_rff"], ["oc_phi"], axis=1),
        helper.make_node("MatMul", ["oc_phi", "oc_w"], ["oc_corr"]),
        helper.make_node("Add", ["base_mean", "oc_corr"], ["mean"]),
        helper.make_node("MatMul", ["oc_phi", "oc_p"], ["oc_pphi"]),
        helper.make_node("Mul", ["oc_pphi", "oc_phi"], ["oc_quad_terms"]),
        helper.make_node("ReduceSum", ["oc_quad_terms", "oc_axis1"], ["oc_quad"], keepdims=1),
        helper.make_node("Mul", ["oc_quad", "oc_s2"], ["oc_var_extra"]),
        helper.make_node("Add", ["base_var", "oc_var_extra"], ["var"]),
    ])
    onnx.checker.check_model(base)
    return base

