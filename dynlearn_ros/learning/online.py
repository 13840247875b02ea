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
  the base model (:mod:`dynlearn_ros.learning.online_base`: SVDKL, or the ac-RKN inverse model
  run over the samples in order) is evaluated once per new sample; the newest ``holdout`` samples
  are held out; the others update a Bayesian linear correction of the *base* model (the
  directory the controller started from):

      tau(x) = base_mean(x) + y_std * (phi(x) W) + dm * Y(x)                  (N*m)
      phi(x) = [1, x', sqrt(2/R) cos(x' Omega / ell + b)]                   (1 + 3n + R features)
      x' = (x - x_mean) / x_std     (the base model's own input normalization)
      Y(x)  = the torque a point mass at the end effector adds per kg (learning/payload_features.py)

  with Omega ~ N(0, I), b ~ U(0, 2 pi) fixed at start (random Fourier features of an RBF kernel
  of lengthscale ``ell`` in standardized units, plus a linear part), and dm (kg) one number
  shared by every joint: a payload's torque is exactly dm Y(x), so a payload change is learned
  as one parameter that holds everywhere, while W learns what is left (friction, the base
  model's own error) slowly. The statistics A = sum rho^age phi^T phi, B = sum rho^age phi^T r'
  (r' = (tau - base_mean) / y_std), C = sum phi^T Y', d = sum |Y'|^2, e = sum Y'.r'
  (Y' = Y / y_std) carry over from cycle to cycle, discounted by rho = exp(-1 / forget_samples)
  per sample: the update is warm-started from the running model (its posterior is the next
  prior). (W, dm) solve the joint normal equations with the ridge on W and a prior std
  PAYLOAD_PRIOR_KG on dm (:meth:`OnlineLearner._solve`).

  A changed plant (the new batch's error beyond sigma_f, see the comment in the cycle) releases
  dm: the old samples keep informing W with the old payload taken out of their targets, and dm
  restarts from the new samples (:meth:`OnlineLearner._release_payload`).

  Why a correction and not a gradient step on the SVDKL weights: a model directory holds the
  exported ONNX graph and its caches, not the torch weights, so the running model cannot be
  resumed as an SVDKL; the correction keeps the deep kernel's features and its calibrated std
  (and the novelty term) and learns what the deployment changed. The exported variance adds the
  correction's parameter uncertainty, s2_j * phi^T (A + ridge I)^{-1} phi + var(dm) Y_j^2, with
  s2_j the correction's residual mean square (standardized, times y_std_j^2).

* Two bases (``OnlineConfig.base``, default "auto"): the correction above is fitted on the base
  model's mean ("model") and, side by side with its own statistics (:class:`Track`), on the URDF's
  rigid-body torque RNEA(q, qd, a) ("analytic", an svdkl base of a robot in the table):

      tau(x) = RNEA_urdf(x) + y_std * (phi(x) W_a) + dm_a Y(x)

  where the URDF is exact but for the payload and friction (DESIGN.md: 1e-14 against PyBullet),
  the learned base carries its own ~sigma_n error everywhere, which a correction from a few
  seconds of samples cannot remove (the 0 kg phases: docs/results_closed_loop.md). Here dm_a is the
  payload itself, not its change from the base model's training payload.

* Gate: each base's candidate and its previous fit are scored on the held-out window, RMSE over
  joints in standardized units (the same y_std for both bases, so the scores compare); of the
  candidates no worse than their own previous fit, the lowest is exported if it is no worse than
  the running model (the version now in use, on its base; the base model itself at first). A
  version on the RNEA declares ``"base": {"kind": "analytic", ...}`` in its metadata and its
  graph's mean is the correction alone: the loader adds the RNEA of the controller's URDF
  (runtime/analytic_base.py). Export: the base graph with the correction appended
  (:func:`compose_graph`), through the model-directory contract (written whole or not at all,
  validated, golden replay), into ``out_root/v%04d`` (a new directory per version, so a reader
  never sees a directory change under it; the newest ``keep`` are kept).

Everything here is single-threaded numpy (BLAS held to one thread) + onnxruntime (one thread):
a cycle of 100-1000 samples takes tens of ms plus the export (measured:
docs/results_closed_loop.md).
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
from dynlearn_ros.datasets.robot_limits import robot_for_joints
from dynlearn_ros.learning.blas import one_blas_thread
from dynlearn_ros.learning.online_base import make_base
from dynlearn_ros.learning.payload_features import (
    NumpyOps,
    OnnxOps,
    PointMassChain,
    point_mass_regressor,
)
from dynlearn_ros.runtime.metadata import MODEL_FILE, ModelMetadata, Provenance
from dynlearn_ros.runtime.model_store import finish_model_dir, publish_model_dir
from dynlearn_ros.runtime.onnx_step import OnnxStep
from dynlearn_ros.runtime.validate import open_model_dir, validate_model_dir

#: the composed float32 graph against the float64 numpy prediction on the golden rows: float32
#: carries ~7 digits; the correction sums ~170 terms of size <= a few y_std, so 1e-4 y_std + 1e-5
#: relative of the base torque is ~10x above rounding and far below any real disagreement
COMPOSE_ATOL_YSTD = 1e-4
COMPOSE_RTOL = 1e-5
#: rows ahead averaged when locating a change inside a batch (10 ms at 1 kHz)
CHANGE_ROWS = 10
#: prior std (kg) of the correction's payload coefficients: far beyond any payload of the arms here
PAYLOAD_PRIOR_KG = 100.0
#: ``OnlineConfig.analytic_var`` "auto", per base model kind: the variance a version on the
#: analytic base carries. Its mean is RNEA + the correction for either kind; the base model's own
#: mean is not used. An SVDKL's variance is its likelihood noise plus the GP's (and novelty's) input
#: uncertainty: flat near sigma_n on the data it was trained on, it acts as the schedule's floor
#: that the realized-error sigma (core/residual.py) tops, and its input novelty still describes
#: where the correction has no samples either ("base": met the goal in 10 of 10 phases, session 5).
#: An ac-RKN's std is a function of its belief over the executed torques, i.e. the uncertainty
#: of the prediction the controller no longer makes; measured, it depends on the payload the
#: ac-RKN was trained at (joint 1: 2.81 N*m at its 5 kg, 1.81-2.04 at 0-12 kg) and held K_P of
#: joints 1 and 3 at 63-72 % of fixed at 5 kg and joint 1 at K_min at 0 kg (2x fixed's error).
#: So an ac-RKN version takes the correction's own variance and this plant's bounds
#: ("correction", :meth:`OnlineLearner._correction_sigma_bounds`): its std describes its mean.
AUTO_ANALYTIC_VAR = {"svdkl": "base", "acrkn": "correction"}
#: floor of the standardized residual mean square s2 where the correction's own variance is the
#: std the gains are scheduled on (analytic_var = correction), and of the held-out one in its
#: sigma_f: std >= 1e-5 y_std. The fit's general floor (1e-6, std 1e-3 y_std; the change test and
#: the payload's variance divide by s2) was above the real error of joints the URDF model already
#: fits: at 0 kg the iiwa ac-RKN's exact realized error on joints 3, 5, 7 was 5e-4, 9e-5, 7e-6 N*m
#: against that floor's std 4.6e-3, 6.3e-4, 1.1e-5, so sigma sat at the floor and sigma_f at twice
#: it (rho = 0.5, K = 0.79 K_max on those joints whatever their tracking; the 0 kg phase's cut
#: 38.1 % against the goal's 40 %). 1e-10 puts the floor 10x or more below those errors.
S2_VARIANCE_FLOOR = 1e-10


class StateDifferencer:
    """Samples (x = [q, qd, a] (3n,), tau (n,)) from successive states; counts what it skips."""

    def __init__(self, n: int, max_gap_s: float = 0.02) -> None:
        self.n, self.max_gap_s = n, float(max_gap_s)
        self._q = np.zeros(n)
        self._qd = np.zeros(n)
        self._t = 0.0
        self._have = False
        #: whether the last returned sample directly follows the one returned before it (False
        #: after a skipped, stale or first state: a recurrent model's belief restarts there)
        self.contiguous = False
        self._chained = False
        self.counts = {"states": 0, "samples": 0, "nonfinite": 0, "stale": 0}

    def push(self, q: np.ndarray, qd: np.ndarray, t: float, tau_prev: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """State (rad, rad/s) at ``t`` (s) and the torque (N*m) applied since the previous state.
        Returns the sample of the previous state, or None (first state, skipped or stale)."""
        c = self.counts
        c["states"] += 1
        q, qd, tau_prev = (np.asarray(v, dtype=np.float64) for v in (q, qd, tau_prev))
        if not (np.isfinite(q).all() and np.isfinite(qd).all() and np.isfinite(tau_prev).all() and np.isfinite(t)):
            c["nonfinite"] += 1
            self._have = self._chained = False
            return None
        out = None
        if self._have:
            h = float(t) - self._t
            if not (0.0 < h <= self.max_gap_s):
                c["stale"] += 1
                self._chained = False
                if h <= 0.0:      # an old or repeated state: keep the newer record
                    return None
            else:
                a = (qd - self._qd) / h
                out = (np.concatenate([self._q, self._qd, a]), tau_prev.copy())
                c["samples"] += 1
                self.contiguous, self._chained = self._chained, True
        self._q[:], self._qd[:], self._t, self._have = q, qd, float(t), True
        return out


class SampleRing:
    """The newest ``capacity`` samples: x (3n,), y (n,), and ``base`` (n,) N*m, the base model's
    mean at x, filled once per sample by the learner (a sample is first held out, then fitted:
    the base graph runs once for it, not twice); ``total`` counts every sample pushed."""

    def __init__(self, capacity: int, n: int) -> None:
        self.capacity, self.n = int(capacity), n
        self.x = np.zeros((self.capacity, 3 * n))
        self.y = np.zeros((self.capacity, n))
        self.base = np.zeros((self.capacity, n))
        #: the analytic base's RNEA at x (n,) N*m (filled like ``base`` when the learner has one)
        self.base_an = np.zeros((self.capacity, n))
        self.contiguous = np.zeros(self.capacity, dtype=bool)
        self.total = 0

    def push(self, x: np.ndarray, y: np.ndarray, contiguous: bool = True) -> None:
        i = self.total % self.capacity
        self.x[i], self.y[i], self.contiguous[i] = x, y, contiguous
        self.total += 1

    def index(self, start: int, stop: int) -> np.ndarray:
        """Ring positions of the samples with running index in [start, stop) (the oldest,
        dropped ones clipped away)."""
        start = max(start, self.total - self.capacity, 0)
        return np.arange(start, stop) % self.capacity

    def span(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Samples x, y (copies) with running index in [start, stop)."""
        idx = self.index(start, stop)
        return self.x[idx], self.y[idx]


@dataclass(frozen=True)
class OnlineConfig:
    """Trainer settings. batch: new samples per cycle; holdout: newest samples scored, not fitted;
    features: R random Fourier features; lengthscale: in standardized input units; ridge: prior
    precision of W (standardized); forget_samples: time constant of the statistics (samples);
    capacity: ring size; keep: model versions kept on disk; seed: the features' draw; linear:
    include the standardized input x' among the features (features = 0 and linear False leave
    the bias and the payload regressor);
    robot: the robot table entry whose URDF gives the payload regressor features
    (:mod:`dynlearn_ros.learning.payload_features`), "auto" (the entry with the model's joints; none
    found: no such features) or "" (off); change_ratio: a new batch whose mean square error under
    the running correction, per joint relative to the larger of its held-out mean square and
    the schedule's sigma_f^2, averages above this is a changed plant, and the statistics of the
    old one are dropped (see :meth:`OnlineLearner.cycle`); hold_w_ratio: in a cycle that detects
    a change with a ratio above this, solve the payload dm alone on the batch's rows after the
    change and keep the running W (see :meth:`OnlineLearner._payload_only`; inf: never);
    k_max: the controller's K_P ceiling per joint (N*m/rad) as its schedule runs it (its k_max
    parameter raised by its payload_margin_kg floor, core/assembly.py build_schedule), for the
    arm-level term of the gain-schedule bounds of a version that carries the correction's own
    variance (:meth:`OnlineLearner._correction_sigma_bounds`); () = that term off (the per-joint
    bounds alone: higher gains, never lower). Only the ratios between joints enter the bound."""

    batch: int = 100
    holdout: int = 200
    features: int = 128
    lengthscale: float = 3.0
    ridge: float = 1.0
    forget_samples: float = 4000.0
    capacity: int = 20000
    keep: int = 5
    seed: int = 0
    linear: bool = True
    robot: str = "auto"
    change_ratio: float = 1.0
    hold_w_ratio: float = 100.0
    base: str = "auto"
    urdf: str = ""
    analytic_var: str = "auto"
    k_max: tuple[float, ...] = ()


@dataclass
class Track:
    """One base's correction: its statistics (A (F, F), B, C (F, n), d, e; see the module
    docstring) and its own latest fit that passed its held-out test (W (F, n), dm kg, dm_var kg^2,
    s2 (n,) standardized residual mean square, s2_heldout (n,) the change test's yardstick), and
    the base's own mean square error on the rows it fitted (``r2_sum`` / ``r2_weight``)."""

    name: str
    nf: int
    n: int
    fitted: bool = False

    def __post_init__(self) -> None:
        nf, n = self.nf, self.n
        self.A, self.B, self.C = np.zeros((nf, nf)), np.zeros((nf, n)), np.zeros((nf, n))
        self.d, self.e = 0.0, 0.0
        self.W = np.zeros((nf, n))
        self.dm, self.dm_var = 0.0, 0.0
        self.s2, self.s2_heldout = np.ones(n), np.ones(n)
        #: the base's own error on the rows fitted: discounted sum of squares (n,) (standardized)
        #: and its weight, with the statistics' discount; restarted at a detected change
        self.r2_sum, self.r2_weight = np.zeros(n), 0.0


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
    change_ratio: float = float("nan")
    forgot: bool = False
    payload_kg: float = 0.0
    base: str = "model"
    heldout_by_base: dict = field(default_factory=dict)


class OnlineLearner:
    """Correction of ``base_dir``'s SVDKL model learned from samples; see the module docstring."""

    def __init__(self, base_dir: str | Path, out_root: str | Path, cfg: OnlineConfig = OnlineConfig()) -> None:
        self.base_dir, self.out_root, self.cfg = Path(base_dir), Path(out_root), cfg
        vm = validate_model_dir(self.base_dir)
        self.meta: ModelMetadata = vm.metadata
        #: the corrected model's adapter (learning/online_base.py): svdkl or acrkn
        self.base = make_base(self.base_dir, self.meta, vm.step)
        self.kind = self.base.kind
        self.base_step: OnnxStep = vm.step
        self.x_mean, self.x_std, self.y_std = self.base.x_mean, self.base.x_std, self.base.y_std
        self.n = self.meta.n_joints
        d = 3 * self.n
        rng = np.random.default_rng(cfg.seed)
        self.omega = rng.normal(size=(d, cfg.features)) / cfg.lengthscale
        self.phase = rng.uniform(0.0, 2 * np.pi, cfg.features)
        robot = robot_for_joints(self.meta.joint_names) if cfg.robot == "auto" else cfg.robot
        self.robot = robot or ""
        #: the payload regressor's chain (None: no such features)
        self.chain = PointMassChain.from_robot(robot, self.meta.joint_names) if robot else None
        nf = 1 + (d if cfg.linear else 0) + cfg.features
        self._ridge = np.full(nf, cfg.ridge)
        self._based_to = 0
        sb = self.meta.sigma_bounds      # none recorded: y_std, the targets' own spread
        sigma_f = np.asarray(sb.sigma_f if sb is not None else self.y_std, dtype=float)
        #: sigma_f^2 in standardized units: the change test's floor
        self._s2_floor = (sigma_f / self.y_std) ** 2
        #: the bases fitted side by side (:class:`Track`); the gate exports the best
        self.tracks = [Track("model", nf, self.n)]
        self.urdf: str | None = None
        self.rbd = None
        if cfg.analytic_var not in ("auto", "base", "correction"):
            raise ValueError(f"OnlineConfig.analytic_var must be 'auto', 'base' or 'correction', got {cfg.analytic_var!r}")
        if cfg.analytic_var == "auto":
            self.cfg = cfg = dataclasses.replace(cfg, analytic_var=AUTO_ANALYTIC_VAR[self.kind])
        #: the controller's K_P ceiling (n,) N*m/rad for the bounds' arm term; None: that term off
        self.k_max: np.ndarray | None = None
        self.set_k_max(cfg.k_max)
        cfg = self.cfg
        if cfg.base not in ("model", "analytic", "auto"):
            raise ValueError(f"OnlineConfig.base must be 'model', 'analytic' or 'auto', got {cfg.base!r}")
        if cfg.base != "model":
            if not self.robot:
                if cfg.base == "analytic":
                    raise ValueError(f"{self.base_dir}: an analytic base needs a model of a robot in the table "
                                     f"(joints {list(self.meta.joint_names)})")
            else:
                from dynlearn_ros.core.analytic import RigidBodyModel
                from dynlearn_ros.core.robots import robot_spec

                self.urdf = str(cfg.urdf or robot_spec(self.robot).urdf_path)
                self.rbd = RigidBodyModel(self.urdf, self.meta.joint_names)
                an = Track("analytic", nf, self.n)
                self.tracks = [an] if cfg.base == "analytic" else [*self.tracks, an]
        #: the exported (running) correction: its track and (W, dm, dm_var, s2); at first the
        #: base model itself (track "model", zero correction), whatever tracks are fitted
        self.running = Track("model", nf, self.n)
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
        """phi(x) (B, 1 + 3n + R) for raw inputs x (B, 3n): [1, x', rff] (x' only if ``linear``)."""
        xs = (x - self.x_mean) / self.x_std
        parts = [np.ones((x.shape[0], 1))]
        if self.cfg.linear:
            parts.append(xs)
        if self.cfg.features:
            parts.append(np.sqrt(2.0 / self.cfg.features) * np.cos(xs @ self.omega + self.phase))
        return np.concatenate(parts, axis=1)

    def payload(self, x: np.ndarray) -> np.ndarray:
        """Y(x) (B, n) N*m per kg at the payload point (zeros without a chain)."""
        if self.chain is None:
            return np.zeros((len(x), self.n))
        return point_mass_regressor(NumpyOps(), self.chain, x)

    def base_predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The (stateless, svdkl) base graph's mean (B, n) N*m and var (B, n) (N*m)^2."""
        if self.kind != "svdkl":
            raise ValueError("base_predict on rows is for stateless models; the ring's samples carry "
                             "the recurrent model's prediction")
        return self.base.predict(x)

    def analytic_predict(self, x: np.ndarray) -> np.ndarray:
        """RNEA of the analytic base's URDF (B, n) N*m at rows x (B, 3n) (needs an analytic track)."""
        from dynlearn_ros.runtime.analytic_base import rnea_rows

        if self.rbd is None:
            raise ValueError("no analytic base in this learner (OnlineConfig.base, kind, robot)")
        return rnea_rows(self.rbd, x)

    def predict(self, x: np.ndarray, W: np.ndarray | None = None, dm: float | None = None,
                base: str | None = None) -> np.ndarray:
        """Mean torque (B, n) of base + correction (W, dm) (default: the running one, on its base);
        stateless base."""
        run = self.running
        W, dm = (run.W if W is None else W), (run.dm if dm is None else dm)
        b = self.analytic_predict(x) if (base or run.name) == "analytic" else self.base_predict(x)[0]
        return b + (self.features(x) @ W) * self.y_std + dm * self.payload(x)

    @property
    def W(self) -> np.ndarray:
        """The running correction's W (F, n) (standardized)."""
        return self.running.W

    @property
    def dm(self) -> float:
        """The running correction's payload (kg, relative to its base: the base model's training
        payload for "model", none for "analytic")."""
        return self.running.dm

    def add(self, x: np.ndarray, y: np.ndarray, contiguous: bool = True) -> None:
        """One sample: x = [q, qd, qdd] (3n,) rad, rad/s, rad/s^2; y = tau (n,) N*m; contiguous:
        False when it does not directly follow the previous sample (a recurrent base restarts)."""
        with self.lock:
            self.ring.push(x, y, contiguous)

    def ready(self) -> bool:
        """True when at least ``batch`` samples beyond the held-out window are new."""
        return self.ring.total - self.cfg.holdout - self._trained_to >= self.cfg.batch

    # -- one cycle ---------------------------------------------------------------------------
    def cycle(self) -> CycleResult | None:
        """Fit, gate and (if no worse) export; None when fewer than ``batch`` new samples.

        numpy's BLAS is held to one thread meanwhile: on 2 shared cores a threaded solve of the
        ~160 x 160 system waited ~0.1 s for the other thread (measured; docs/results_closed_loop.md)."""
        if not self.ready():
            return None
        with one_blas_thread():
            return self._cycle()

    def _cycle(self) -> CycleResult:
        cfg, t0 = self.cfg, time.perf_counter()
        ring = self.ring
        with self.lock:   # copies (fancy indexing), so add() may continue meanwhile
            total = ring.total
            idx_fill = ring.index(self._based_to, total)
            x_fill, y_fill, c_fill = ring.x[idx_fill], ring.y[idx_fill], ring.contiguous[idx_fill]
            if len(idx_fill) and self._based_to < max(total - ring.capacity, 0):
                c_fill[0] = False      # samples were dropped unseen: a recurrent base restarts
        # the base model once per sample, in order (the ring holds >> one cycle's samples:
        # positions filled here are not overwritten before the write-back)
        b_fill = self.base.predict(x_fill, y_fill, c_fill)[0]
        a_fill = self.analytic_predict(x_fill) if self.rbd is not None else None
        with self.lock:
            ring.base[idx_fill] = b_fill
            if a_fill is not None:
                ring.base_an[idx_fill] = a_fill
            self._based_to = total
            stop = total - cfg.holdout
            i_new, i_h = ring.index(self._trained_to, stop), ring.index(stop, total)
            xn, yn = ring.x[i_new], ring.y[i_new]
            xh, yh = ring.x[i_h], ring.y[i_h]
            bases = {"model": (ring.base[i_new], ring.base[i_h])}
            if a_fill is not None:
                bases["analytic"] = (ring.base_an[i_new], ring.base_an[i_h])
        pn = self.features(xn)
        yp = self.payload(xn) / self.y_std
        ph = self.features(xh)
        yph = self.payload(xh) / self.y_std
        fits = {tr.name: self._fit_track(tr, (yn - bases[tr.name][0]) / self.y_std, pn, yp,
                                         (yh - bases[tr.name][1]) / self.y_std, ph, yph) for tr in self.tracks}
        self._trained_to = stop
        if "analytic" in fits:   # the URDF model's own error (N*m), per joint: held-out rows, fitted rows
            fits["analytic"]["r_base_heldout"] = np.sqrt(np.mean((yh - bases["analytic"][1]) ** 2, axis=0))
            tr_a = fits["analytic"]["track"]
            fits["analytic"]["r_base_fitted"] = self.y_std * np.sqrt(tr_a.r2_sum / max(tr_a.r2_weight, 1e-300))
        t_fit = time.perf_counter()
        # the exported model on this held-out window, and the best fit that passed its own test
        run = self.running
        rh_run = (yh - bases[run.name][1]) / self.y_std if run.name in bases else None
        s_run = (float(np.sqrt(np.mean((rh_run - ph @ run.W - run.dm * yph) ** 2))) if rh_run is not None
                 else float("inf"))
        passed = [f for f in fits.values() if f["s_cand"] <= f["s_track"]]
        best = min(passed or fits.values(), key=lambda f: f["s_cand"])
        t_eval = time.perf_counter()
        self.cycles += 1
        res = CycleResult(self.version, False, best["m"], best["train_rmse"], best["s_cand"], s_run,
                          change_ratio=best["ratio"], forgot=best["forgot"], payload_kg=best["dm"],
                          base=best["track"].name, heldout_by_base={k: f["s_cand"] for k, f in fits.items()})
        for f in passed:
            if f is not best:
                self._take_fit(f)
        if passed and best["s_cand"] <= s_run:
            try:
                path = self._export(best, xh, res)
            except Exception as exc:   # a refused export: counted, the running model stays
                res.reason = f"export refused: {type(exc).__name__}: {exc}"
                self.rejected += 1
            else:
                self._take_fit(best)
                tr = best["track"]
                self.running = Track(tr.name, tr.nf, tr.n, True)
                self.running.W, self.running.dm, self.running.dm_var = tr.W, tr.dm, tr.dm_var
                self.running.s2, self.running.s2_heldout = tr.s2, tr.s2_heldout
                self.version, self.running_dir = res.version, path
                res.accepted, res.path = True, str(path)
                self.accepted += 1
        else:
            res.reason = f"held-out RMSE {best['s_cand']:.4f} > running {min(s_run, best['s_track']):.4f} (standardized)"
            self.rejected += 1
        t_end = time.perf_counter()
        res.seconds = {"fit": t_fit - t0, "evaluate": t_eval - t_fit, "export": t_end - t_eval, "total": t_end - t0}
        self.history.append(res)
        return res

    def _fit_track(self, tr: Track, rn: np.ndarray, pn: np.ndarray, yp: np.ndarray, rh: np.ndarray,
                   ph: np.ndarray, yph: np.ndarray) -> dict:
        """Advance ``tr``'s statistics with the new rows (standardized residuals rn (m, n) of its
        base, features pn (m, F), payload regressor yp (m, n)) and fit; score on the held-out rows
        (rh, ph, yph). Returns the fit (W, dm, ...) and its scores: s_cand (the fit) and s_track
        (the track's previous fit) on the held-out window, standardized RMSE."""
        cfg = self.cfg
        m = len(rn)
        # Changed plant. The yardstick per joint: the larger of the running correction's mean
        # square error on the held-out window it was accepted on and sigma_f^2, the std at which
        # the gain schedule is already at its top (standardized). While the plant is the one the
        # correction was fitted on, the new samples' errors are of the held-out size or at the
        # model's noise (sigma_n < sigma_f): ratio < 1. An error above sigma_f is what the
        # schedule answers with full stiffness; a payload change of Delta m adds Delta m Y_j,
        # ~6 N*m/kg on joint 2 of the iiwa against sigma_f = 1.5 N*m: 1 kg passes 1 (mean over
        # the 7 joints: (6 / 1.5)^2 / 7 = 2.3). Then the old statistics describe a plant that no
        # longer exists as far as the payload goes: the payload is released
        # (:meth:`_release_payload`) instead of fading with forget_samples, which would leave a
        # fraction exp(-t / forget) of the old payload in the fit for seconds.
        # (Measured without the sigma_f floor: successive 0.5 s stretches of the same plant
        # differ by 5-50x in held-out error, and the false resets destabilized the loop.)
        # The rows of the batch before the change go with the old statistics: the fit starts at
        # the first row that passes and whose next CHANGE_ROWS rows pass on average (an isolated
        # noisy row does not move the start; a single row of the old plant kept in the fit
        # weighs (Delta m Y)^2).
        ratio, forgot = float("nan"), False
        if tr.fitted:
            per_row = np.mean((rn - pn @ tr.W - tr.dm * yp) ** 2 / np.maximum(tr.s2_heldout, self._s2_floor),
                              axis=1)
            ratio = float(per_row.mean())
            forgot = ratio > cfg.change_ratio
            if forgot:
                w = min(CHANGE_ROWS, m)
                c = np.concatenate([[0.0], np.cumsum(per_row)])
                ahead = np.full(m, np.inf)
                ahead[:m - w + 1] = (c[w:] - c[:-w]) / w
                first = int(np.argmax((per_row > cfg.change_ratio) & (ahead > cfg.change_ratio)))
                rn, pn, yp = rn[first:], pn[first:], yp[first:]
                m = len(rn)
        rho = np.exp(-m / cfg.forget_samples)
        A, B, C = rho * tr.A, rho * tr.B, rho * tr.C
        d, e = rho * tr.d, rho * tr.e
        # the base's own error over the plant as it is now: the same discount, restarted at a change
        r2_sum = (0.0 if forgot else rho) * tr.r2_sum + np.sum(rn ** 2, axis=0)
        r2_weight = (0.0 if forgot else rho) * tr.r2_weight + m
        if forgot:
            B, C, d, e = self._release_payload(tr, B, C, d, e)
        A = A + pn.T @ pn
        B = B + pn.T @ rn
        C = C + pn.T @ yp
        d, e = d + float(np.sum(yp * yp)), e + float(np.sum(yp * rn))
        W, dm, dm_var_unit, chol = self._solve(A, B, C, d, e)
        if forgot and ratio > cfg.hold_w_ratio and self.chain is not None:
            W, dm, dm_var_unit = self._payload_only(tr, rn, pn, yp)
        train_rmse = float(np.sqrt(np.mean((rn - pn @ W - dm * yp) ** 2)))
        # the statistics advance either way
        tr.A, tr.B, tr.C, tr.d, tr.e = A, B, C, d, e
        tr.r2_sum, tr.r2_weight = r2_sum, r2_weight
        # floor: a fit that interpolates its batch must not claim a zero residual (the change
        # test divides by it); 1e-6 y_std^2 is far below any joint's noise
        s2_raw = np.mean((rn - pn @ W - dm * yp) ** 2, axis=0)
        eh2 = (rh - ph @ W - dm * yph) ** 2    # the candidate's held-out squared errors (once)
        s2h_raw = np.mean(eh2, axis=0)
        s2 = np.maximum(s2_raw, 1e-6)
        return {"track": tr, "W": W, "dm": dm, "dm_var": float(np.mean(s2)) * dm_var_unit, "chol": chol, "s2": s2,
                "m": m, "train_rmse": train_rmse, "ratio": ratio, "forgot": forgot,
                "s_cand": float(np.sqrt(np.mean(eh2))),
                "s_track": float(np.sqrt(np.mean((rh - ph @ tr.W - tr.dm * yph) ** 2))),
                "s2_heldout": np.maximum(s2h_raw, 1e-6),
                # the correction's own variance where it is the schedule's std (analytic_var =
                # correction): a finer floor, see S2_VARIANCE_FLOOR
                "s2_var": np.maximum(s2_raw, S2_VARIANCE_FLOOR),
                "s2_heldout_var": np.maximum(s2h_raw, S2_VARIANCE_FLOOR)}

    @staticmethod
    def _take_fit(f: dict) -> None:
        """The fit ``f`` becomes its track's latest (the change test's reference)."""
        tr = f["track"]
        tr.W, tr.dm, tr.dm_var, tr.s2, tr.s2_heldout = f["W"], f["dm"], f["dm_var"], f["s2"], f["s2_heldout"]
        tr.fitted = True

    def _solve(self, A, B, C, d, e):
        """Posterior mean of (W, dm): with K = A + ridge, G_B = K^-1 B, G_C = K^-1 C,
        dm = (e - sum_j C_j . G_B,j) / (d + PAYLOAD_PRIOR_KG^-2 - sum_j C_j . G_C,j) and
        W = G_B - dm G_C (the normal equations of r'_tj = phi_t W_j + dm Y'_tj, dm eliminated by
        its Schur complement). Returns (W, dm, 1 / complement (dm's variance per unit residual
        variance, kg^2), chol(K))."""
        chol = np.linalg.cholesky(A + np.diag(self._ridge))   # positive definite: ridge > 0
        GB = _chol_solve(chol, B)
        if self.chain is None:
            return GB, 0.0, 0.0, chol
        GC = _chol_solve(chol, C)
        schur = d + PAYLOAD_PRIOR_KG ** -2 - float(np.sum(C * GC))
        dm = (e - float(np.sum(C * GB))) / schur
        return GB - dm * GC, dm, 1.0 / schur, chol

    def _payload_only(self, tr: Track, rn: np.ndarray, pn: np.ndarray, yp: np.ndarray
                      ) -> tuple[np.ndarray, float, float]:
        """(W, dm, dm's variance per unit residual variance) for a batch that follows a detected
        change: W stays the running one, dm = sum Y'.(r' - phi W) / (sum |Y'|^2 + prior^-2) from
        the batch's rows after the change (standardized, (m, n) each; pn (m, F)).

        Why not the joint solve: the rows right after a change are the controller's transient
        (the wrist swinging at its stiffness floor, accelerations far outside the steady motion)
        and few (a few hundred), and the joint solve lets the 128 random features fit them. In
        the lockstep 12 -> 0 kg drop (seed 0, docs/results_closed_loop.md) that version had the
        right payload (-4.9 kg vs the true -5) but its random-feature part drove the wrist into
        a growing oscillation within 50 ms of the swap (following-error trip); with the
        features off the same step was ridden through. A payload change is one number: it is
        all a short transient window is asked for; W learns from the following, steady
        batches, whose statistics include these rows as usual.

        Only for a large change (ratio > ``hold_w_ratio``, default 100): a payload change of dm
        gives a ratio of ~2.3 dm^2 (kg; the change test's comment), so 100 is ~6.6 kg, and the
        drops that destabilized were 7-12 kg. Holding W at every detected change (also the false
        ones of ratio 1-3 that a steady plant gives now and then) stopped W from learning: a
        0 kg phase from the 5 kg base, seed 1, then detected 9 "changes" in 16 s and tracked at
        1.20 mrad against 0.46 with the joint solve (2 detections), measured in lockstep."""
        resid = rn - pn @ tr.W
        denom = float(np.sum(yp * yp)) + PAYLOAD_PRIOR_KG ** -2
        return tr.W, float(np.sum(yp * resid)) / denom, 1.0 / denom

    def _release_payload(self, tr: Track, B, C, d, e):
        """Statistics after a detected change: the old samples keep informing the rest of the
        correction (friction, the base model's own error - a payload does not change them) with
        the old payload taken out of their targets (B - dm_old C: their residual as if the
        payload term were known), and say nothing about the new payload (C, d, e = 0): the
        estimate of dm restarts from the new samples alone, while W keeps its support. A short
        window then pins one number (dm), not the whole correction. Without a regressor the
        old statistics are dropped (B = 0; A fades as usual, as a prior on W)."""
        if self.chain is None:
            return np.zeros_like(B), C, d, e
        return B - tr.dm * C, np.zeros_like(C), 0.0, 0.0

    def _export(self, fit: dict, golden_x: np.ndarray, res: CycleResult) -> Path:
        """Write the fit ``fit`` (:meth:`_fit_track`) on its base as a new version (module docstring)."""
        W, dm, dm_var, s2, tr = fit["W"], fit["dm"], fit["dm_var"], fit["s2"], fit["track"]
        P = _chol_solve(fit["chol"], np.eye(len(tr.A)))
        analytic = tr.name == "analytic"
        if analytic and self.cfg.analytic_var == "correction":   # its std schedules: the finer floor
            s2 = fit["s2_var"]
        version = self.version + 1
        res.version = version
        out = self.out_root / f"v{version:04d}"
        proto = compose_graph(onnx.load(str(self.base_dir / MODEL_FILE)), self.x_mean, self.x_std, self.omega,
                              self.phase, W * self.y_std, P, s2 * self.y_std**2, self.chain, dm, dm_var,
                              self.cfg.linear, self.base, keep_base_mean=not analytic,
                              keep_base_var=not (analytic and self.cfg.analytic_var == "correction"))
        golden_in, golden_state, gx = self.base.golden(golden_x)
        y_gold = self.payload(gx)
        corr = (self.features(gx) @ W) * self.y_std + dm * y_gold
        ref_mean = corr if analytic else self.base.reference(golden_in) + corr
        mean_out = self.base.mean_out
        reference = {mean_out: ref_mean}
        base_record = None
        if analytic:
            from dynlearn_ros.runtime.analytic_base import analytic_base_record

            base_record = analytic_base_record(self.robot, self.urdf, self.meta.joint_names)
            # the whole torque the loader's prediction must reproduce (runtime/analytic_base.py)
            reference["full_mean"] = ref_mean + self.analytic_predict(gx)
        digest = hashlib.sha256(np.ascontiguousarray(tr.B).tobytes()).hexdigest()[:16]
        online = {"base_model_dir": str(self.base_dir), "base_model_version": self.meta.model_version,
                  "base": tr.name,
                  "correction": ("RNEA_urdf" if analytic else "base")
                  + " + y_std * ([1, x', sqrt(2/R) cos(x' Omega + b)] W) + dm Y(x), learning/online.py",
                  "payload_regressor_robot": self.robot,
                  ("payload_kg_vs_urdf" if analytic else "payload_kg_vs_base"): dm,
                  "payload_kg_std": float(np.sqrt(max(dm_var, 0.0))),
                  "config": dataclasses.asdict(self.cfg), "samples_seen": int(self.ring.total),
                  "heldout_rmse_std_units": {"candidate": res.heldout_candidate, "running": res.heldout_running,
                                             "by_base": res.heldout_by_base},
                  "train_rmse_std_units": res.train_rmse}
        fields = {f.name: getattr(self.meta, f.name) for f in dataclasses.fields(self.meta)
                  if f.name not in ("golden", "format_version")}
        if analytic and self.cfg.analytic_var == "correction":
            fields["sigma_bounds"] = self._correction_sigma_bounds(fit)
            online["sigma_bounds_from"] = "correction (learning/online.py _correction_sigma_bounds)"
        fields.update(model_version=version, metrics={"online": online},
                      specific={**self.meta.specific, "online": online}, base=base_record,
                      provenance=Provenance("dynlearn_ros.learning.online (trainer)", "online samples", digest,
                                            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), __version__,
                                            dataclasses.asdict(self.cfg),
                                            {"base": self.meta.provenance.to_dict()}))
        y_std = self.y_std

        # one onnxruntime session per export: it runs the golden and serves the validation
        # (runtime/validate.py open_model_dir's ``step``); the independent replay is the
        # controller's load, in its own session
        session: list[OnnxStep] = []

        def fill(tmp: Path) -> None:
            onnx.save_model(proto, str(tmp / MODEL_FILE))
            session.append(OnnxStep(tmp / MODEL_FILE))
            meta = finish_model_dir(tmp, fields, golden_in, golden_state, reference=reference,
                                    step=session[0])
            with np.load(tmp / meta.golden.file) as z:
                got = z[f"out.{mean_out}"][:, 0].astype(np.float64)
            # + the payload term's float32 rounding: the regressor's ~45 nodes measured 2e-7 of the
            # row's largest |Y| (test_online_payload.py); COMPOSE_RTOL of it is a 50x margin, and it
            # matters on a joint the payload barely loads (|Y_7| ~ 0 on the iiwa, y_std ~ 0.008)
            bound = (COMPOSE_ATOL_YSTD * y_std + COMPOSE_RTOL * np.abs(ref_mean)
                     + COMPOSE_RTOL * abs(dm) * np.abs(y_gold).max(axis=1, keepdims=True))
            if np.any(np.abs(got - ref_mean) > bound):
                raise ValueError(f"composed graph vs numpy: max |diff| {np.abs(got - ref_mean).max():.3g} N*m")

        path = publish_model_dir(out, fill, check=lambda tmp: open_model_dir(tmp, step=session[0], urdf=self.urdf))
        self._prune()
        return path

    def set_k_max(self, k_max) -> None:
        """The controller's K_P ceiling per joint (N*m/rad, the model's joint order; empty or None:
        the arm term off) for the bounds of the versions exported from now on; recorded in their
        config. ValueError (nothing changed) unless n finite values > 0."""
        if k_max is None or len(k_max) == 0:
            self.k_max = None
            self.cfg = dataclasses.replace(self.cfg, k_max=())
            return
        arr = np.asarray(k_max, dtype=float).ravel()
        if arr.shape != (self.n,) or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
            raise ValueError(f"OnlineConfig.k_max: need {self.n} finite values > 0 (the controller's K_P "
                             f"ceiling per joint, the model's joint order), got {list(k_max)}")
        # one assignment each: a cycle running in another thread reads either the old or the new
        self.cfg = dataclasses.replace(self.cfg, k_max=tuple(float(v) for v in arr))
        self.k_max = arr

    def _correction_sigma_bounds(self, fit: dict):
        """Gain-schedule bounds for a version on the analytic base that carries the correction's
        own variance (``analytic_var`` "correction"), from this plant's held-out rows (the cycle's
        gate window) and not from the base model's metadata (a model of another arm, or of another payload,
        has bounds that say nothing about this correction).

        sigma_f,j = the URDF model's own error on the held-out rows, RMS_t |tau_j - RNEA_j| (N*m):
        the feed-forward error of "fixed high gains + analytic" on the plant as it is now. A
        realized error that large means the correction is no better than the analytic model, so
        the gains must be that configuration's, K_max. sigma_n,j = 0, so with the schedule
        K(sigma) = K_min + (1 - exp(-C sigma / sigma_f)) (K_max - K_min) and tracking error ~
        torque error / stiffness (first order), the corrected loop's error against fixed's,
        (sigma / K(sigma)) / (sigma_f / K_max) at sigma = rho sigma_f, is
        rho / (r + (1 - exp(-C rho)) (1 - r)),  r = K_min / K_max: increasing in rho (K is concave),
        0.33 / 0.49 / 0.63 / 1.05 at rho = 0.1 / 0.3 / 0.5 / 1 for C = 3, r = 1/16 (the iiwa's
        defaults). So a correction that removes at least ~6 % of the URDF model's error tracks no
        worse than fixed high gains + analytic, and a larger sigma_f (lower gains) would break that
        near rho = 1; the K_P cut is then set by rho alone: 1 - K / K_max >= 40 % needs
        rho <~ 0.28, i.e. a correction that removes ~3/4 of the URDF model's error as the
        controller realizes it.
        Floor: sigma_f >= 2 x the correction's held-out RMS (a correction no better than half the
        analytic error schedules near K_max; its mean square floored at S2_VARIANCE_FLOOR, as the
        exported variance, not at the fit's 1e-6 y_std^2, which sat above the real errors of the
        joints the URDF already fits) and >= 1e-6 N*m (the schedule needs sigma_f > sigma_n).

        Over which rows: the URDF model's error over the rows the correction was fitted on, with
        the statistics' own discount (``forget_samples``, 4 s at 1 kHz) and restarted at a detected
        change (``Track.r2_sum``), i.e. over the motion of the plant as it is now. Until session 5
        it was taken on the held-out window alone (the newest 200 rows, 0.2 s): at 0 kg, where
        that error is the friction alone, it then swung 10x from version to version with the
        window's part of the motion (Panda joint 1: 0.055-0.62 N*m over 5 successive versions, a
        dwell against a move), while the realized error the schedule reads is averaged over 0.1 s
        windows and steady (0.045-0.062): half the versions put joints 1, 2 and 4 near K_max and
        the 0 kg K_P cut at 25-27 %. (The held-out rows are fitted in the next cycle; before the
        first fitted row, the held-out figure is used.) Known answer: test_online_analytic_base.py.

        The arm term (with ``k_max``, the controller's K_P ceiling K_max,j): sigma_f,j >=
        K_max,j E_fix, E_fix = RMS_j(r_a,j / K_max,j) (rad), the fixed loop's position error
        RMS over joints to first order (quasi-static K e = torque error; with K_D = zeta sqrt(K_P)
        at damping ratio 1 the loop's |e / torque error| is at most 1 / K at every frequency, so
        1 / K is also the most a lower K can add). The goal is on the arm's RMSE, the mean over
        joints, and the terms above are per joint: a joint whose URDF error is small against its
        own stiffness (at 0 kg, the joints the friction barely loads) was held at rho ~ 0.5 (K =
        0.79 K_max) by 2 r_c whatever its share of the arm's error. With the arm term, such a
        joint may err up to g(rho) E_fix, g(rho) = rho / k(rho) <= 0.63 at rho <= 0.5 (sigma_f >=
        2 r_c), and a joint bound by r_a keeps g(rho) e_fix,j, so the arm's mean square is at most
        0.63^2 (sum_A e_fix,j^2 + |B| E_fix^2) / n <= 2 (0.63 E_fix)^2: RMSE <= 0.89 E_fix (worst
        case: every joint of B at rho = 0.5 at once). The tracking then spent on the joints of B
        is what mean_j K_j is minimized for under mean_j e_j^2 <= E_fix^2 (K_j / K_max,j ~
        (sigma_j / K_max,j)^(2/3)): stiffness where the torque error moves the arm. Only the
        ratios K_max,j / K_max,i enter (a uniform scale cancels). Derivation and closed-loop
        figures: docs/results_closed_loop.md, session 10."""
        from dynlearn_ros.runtime.metadata import SigmaBounds

        r_a = fit["r_base_fitted"] if fit["track"].r2_weight > 0 else fit["r_base_heldout"]
        r_c = np.sqrt(fit["s2_heldout_var"]) * self.y_std
        sigma_f = np.maximum(r_a, 2.0 * r_c)
        text = ("online correction: sigma_n 0, sigma_f = max(RMS(tau - RNEA_urdf) over the fitted rows "
                "(discounted as the statistics, restarted at a change), 2 x the correction's held-out RMS")
        if self.k_max is not None:
            e_fix = float(np.sqrt(np.mean((r_a / self.k_max) ** 2)))
            sigma_f = np.maximum(sigma_f, self.k_max * e_fix)
            text += f", k_max x E_fix (E_fix {e_fix:.4g} rad at k_max {np.round(self.k_max, 3).tolist()})"
        sigma_f = np.maximum(sigma_f, 1e-6)
        return SigmaBounds(tuple(0.0 for _ in sigma_f), tuple(float(v) for v in sigma_f), text + ")")

    def _prune(self) -> None:
        dirs = sorted(p for p in self.out_root.glob("v[0-9][0-9][0-9][0-9]") if p.is_dir())
        for p in dirs[:-self.cfg.keep] if self.cfg.keep > 0 else []:
            shutil.rmtree(p, ignore_errors=True)

    def metrics(self) -> dict:
        """Summary: samples, cycles, versions accepted / rejected, the running version (its payload
        estimate payload_kg_running: dm in kg relative to the base model), the last cycle's scores and times."""
        last = self.history[-1] if self.history else None
        return {"samples_seen": int(self.ring.total), "cycles": self.cycles, "accepted": self.accepted,
                "rejected": self.rejected, "model_version": self.version, "model_dir": str(self.running_dir),
                "payload_kg_running": float(self.dm), "base_running": self.running.name,
                "last": None if last is None else dataclasses.asdict(last)}


def compose_graph(base: onnx.ModelProto, x_mean: np.ndarray, x_std: np.ndarray, omega: np.ndarray,
                  phase: np.ndarray, w_nm: np.ndarray, P: np.ndarray, s2_nm: np.ndarray,
                  chain: PointMassChain | None = None, dm: float = 0.0, dm_var: float = 0.0,
                  linear: bool = True, adapter=None, keep_base_mean: bool = True,
                  keep_base_var: bool = True) -> onnx.ModelProto:
    """The base graph (input x (1, 3n); outputs mean, var (1, n)) with the correction appended:
    mean += phi(x) w_nm + dm Y(x) (w_nm (F, n) in N*m, dm kg), var += (phi P phi^T) s2_nm +
    dm_var Y(x)^2 (s2_nm (n,) (N*m)^2, dm_var kg^2); phi = [1, x' (if ``linear``),
    sqrt(2/R) cos(x' omega + phase) (if R = omega.shape[1] > 0)]; Y (with ``chain``):
    :func:`point_mass_regressor` emitted as ONNX nodes, the same code the trainer's features
    run. ``adapter`` (learning/online_base.py; default: an SVDKL graph) names the mean / variance
    outputs and builds x from the graph's inputs. ``keep_base_mean`` False: the mean output is the
    correction alone (an analytic base: the loader adds the RNEA; the base graph's variance stays,
    its mean is left unused). ``keep_base_var`` False: the variance output is the correction's alone
    plus s2_nm as its noise (learning/online.py OnlineConfig.analytic_var).

    The initializers that change from version to version (oc_w, oc_p, oc_s2, oc_pm_dm, oc_pm_dmvar)
    are :data:`dynlearn_ros.runtime.shared_graph.PARAM_NAMES`: a reader runs every version of a
    track on one session with them as inputs; anything else that varied would make each version a
    structure of its own (test/unit/test_shared_graph.py counts the sessions built)."""
    g = base.graph
    mean_out, var_out = (adapter.mean_out, adapter.var_out) if adapter is not None else ("mean", "var")
    rename = {mean_out: "base_mean", var_out: "base_var"}
    for node in g.node:
        node.output[:] = [rename.get(o, o) for o in node.output]
        node.input[:] = [rename.get(i, i) for i in node.input]
    R = omega.shape[1]
    f32 = lambda name, a: numpy_helper.from_array(np.asarray(a, dtype=np.float32), name)  # noqa: E731
    g.initializer.extend([
        f32("oc_x_mean", x_mean[None, :]), f32("oc_x_std", x_std[None, :]), f32("oc_one", np.ones((1, 1))),
        f32("oc_w", w_nm), f32("oc_p", P), f32("oc_s2", s2_nm[None, :]),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "oc_axis1")])
    nodes, inits = [], []
    x_name = adapter.graph_x(nodes, inits) if adapter is not None else "x"
    g.initializer.extend(inits)
    nodes += [helper.make_node("Sub", [x_name, "oc_x_mean"], ["oc_xc"]),
              helper.make_node("Div", ["oc_xc", "oc_x_std"], ["oc_xs"])]
    parts = ["oc_one", "oc_xs"] if linear else ["oc_one"]
    if R:
        g.initializer.extend([f32("oc_omega", omega), f32("oc_phase", phase[None, :]),
                              f32("oc_scale", np.full((1, 1), np.sqrt(2.0 / R)))])
        nodes += [helper.make_node("MatMul", ["oc_xs", "oc_omega"], ["oc_proj"]),
                  helper.make_node("Add", ["oc_proj", "oc_phase"], ["oc_arg"]),
                  helper.make_node("Cos", ["oc_arg"], ["oc_cos"]),
                  helper.make_node("Mul", ["oc_cos", "oc_scale"], ["oc_rff"])]
        parts.append("oc_rff")
    mean_in, var_in = "oc_corr", "oc_var_extra"
    nodes += [
        helper.make_node("Concat", parts, ["oc_phi"], axis=1),
        helper.make_node("MatMul", ["oc_phi", "oc_w"], ["oc_corr"]),
        helper.make_node("MatMul", ["oc_phi", "oc_p"], ["oc_pphi"]),
        helper.make_node("Mul", ["oc_pphi", "oc_phi"], ["oc_quad_terms"]),
        helper.make_node("ReduceSum", ["oc_quad_terms", "oc_axis1"], ["oc_quad"], keepdims=1),
        helper.make_node("Mul", ["oc_quad", "oc_s2"], ["oc_var_extra"])]
    if chain is not None:
        ops = OnnxOps("oc_pm")
        y = point_mass_regressor(ops, chain, x_name)
        nodes += ops.nodes
        g.initializer.extend(ops.inits)
        g.initializer.extend([f32("oc_pm_dm", np.full((1, 1), dm)), f32("oc_pm_dmvar", np.full((1, 1), dm_var))])
        nodes += [helper.make_node("Mul", [y, "oc_pm_dm"], ["oc_pm_tau"]),
                  helper.make_node("Add", ["oc_corr", "oc_pm_tau"], ["oc_corr_all"]),
                  helper.make_node("Mul", [y, y], ["oc_pm_y2"]),
                  helper.make_node("Mul", ["oc_pm_y2", "oc_pm_dmvar"], ["oc_pm_var"]),
                  helper.make_node("Add", ["oc_var_extra", "oc_pm_var"], ["oc_var_all"])]
        mean_in, var_in = "oc_corr_all", "oc_var_all"
    nodes += [helper.make_node("Add", ["base_mean", mean_in], [mean_out]) if keep_base_mean
              else helper.make_node("Identity", [mean_in], [mean_out]),
              helper.make_node("Add", ["base_var" if keep_base_var else "oc_s2", var_in], [var_out])]
    g.node.extend(nodes)
    onnx.checker.check_model(base)
    return base


def _chol_solve(chol: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """(L L^T)^{-1} rhs for the lower Cholesky factor L (F, F); rhs (F, k)."""
    from scipy.linalg import cho_solve

    return cho_solve((chol, True), rhs)


