"""The std the gain schedule reads, made to see the model's realized error (issue 10, section 2).

A learned model's predictive std measures novelty in input space. A payload change is not novel
in input space (same q, qd, qdd), so the std stays low while the feed-forward is wrong by the
payload's torque. This module measures the error the model actually makes, per joint, from what
the controller already has each tick, and combines it with the model's std.

Innovation (no extra learned-model call per tick)
-------------------------------------------------
At tick t-1 the controller sent tau_{t-1} (N*m, after clamping) = tau_ff_{t-1} + feedback, where
tau_ff_{t-1} = f(q_{t-1}, qd_{t-1}, qdd_des_{t-1}) is the model's prediction at the *reference*
acceleration. The motion that torque produced is measured at tick t:

    a_{t-1} = (qd_t - qd_{t-1}) / dt_t                              (rad/s^2)

(with the torque held over the step, as a 1 kHz driver and PyBullet's semi-implicit step do,
this difference *is* the step's mean acceleration: no lag, no misalignment). The model's
prediction at the measured acceleration, to first order in the acceleration,

    f(q, qd, a) ~= f(q, qd, qdd_des) + M(q) (a - qdd_des)            M: the URDF mass matrix

reuses the tick's own prediction; M(q) (a - qdd_des) is one gravity-free RNEA call of the
analytic model (Pinocchio, ~10 us; measured in docs/results_closed_loop.md). The innovation is

    r_{t-1} = tau_{t-1} - f(q, qd, a) = (tau_{t-1} - tau_ff_{t-1}) - M(q_{t-1}) (a_{t-1} - qdd_des_{t-1})

If the model were the plant, r = 0 exactly (up to M's own error times the feedback-induced
acceleration). A payload adds Delta(q, qd, a) to the true torque and r = Delta: r is the
model's realized inverse-dynamics error. (The linearization error (M_true - M)(a - qdd_des) is
itself part of the model's error and welcome in r.)

Filtering, and why the residual rather than the acceleration is filtered
------------------------------------------------------------------------
A finite difference of a noisy velocity is noisy: with white velocity noise sigma_v the
difference has std sqrt(2) sigma_v / dt. Filtering *a* alone with a first-order low-pass of
time constant tau_a delays it by tau_a at low frequency; compared with the unfiltered torque
that misalignment is a spurious residual of about M * tau_a * jerk (for the pick-and-place
reference, peak |jerk| ~ 10 rad/s^3 on joint 2: 2.6 * 0.005 * 10 = 0.13 N*m at tau_a = 5 ms,
below sigma_n there, but growing with the motion's jerk). Since r is linear in a and tau, this
module instead low-passes r itself (both sides delayed alike: no misalignment term):

    y_t = y_{t-1} + beta (r_t - y_{t-1}),     beta = 1 - exp(-dt / filter_s)

Its only cost is a detection delay of ~filter_s; the noise variance it passes is
dt / (2 filter_s) of the raw one: filtered noise std = M sigma_v / sqrt(dt filter_s)
(M = 2.6 kg m^2, sigma_v = 1e-3 rad/s, dt = 1 ms, filter_s = 5 ms: 1.2 N*m on joint 2 of the
iiwa - a real robot's velocity noise sets a floor under sigma; PyBullet's velocities are exact).

Exponentially weighted mean square, and the combined sigma
-----------------------------------------------------------

    v_t = v_{t-1} + gamma (y_t^2 - v_{t-1}),   gamma = 1 - exp(-dt / window_s)      ((N*m)^2)
    sigma_t = sqrt(std_t^2 + max(0, v_t - std_t^2)) = max(std_t, sqrt(v_t))          (N*m)

The model's std is the floor (a calibrated model's realized error variance equals its predicted
variance, and then sigma = std); a realized mean square above the predicted variance replaces it.

Time constants (iiwa defaults, K = I omega^2 with omega_min = 10, omega_max = 40 rad/s):
after a step of size R (N*m) in the true residual, v rises as R^2 (1 - exp(-t / window_s)), so
sigma reaches the schedule's top sigma_f after t_up ~= filter_s + window_s (sigma_f / R)^2.
Meanwhile under K_min the tracking error grows like R t^2 / (2 I) (free acceleration, valid for
t << 1 / omega_min = 0.1 s) and passes the fixed-high-gain steady error R / K_max at
t_e = sqrt(2) / omega_max = 35 ms, the same on every joint since K scales with I. Requiring
t_up < t_e for every error worth stiffening for, R >= 2 sigma_f, gives
window_s < 4 (t_e - filter_s) = 120 ms at filter_s = 5 ms: the defaults are filter_s = 5 ms and
window_s = 0.1 s (R = 2 sigma_f: t_up = 30 ms; R = 10 sigma_f: 6 ms). Slow enough: an
exponential window of 0.1 s averages ~2 window_s / filter_s = 40 independent filtered samples,
so the estimate of a stationary mean square has a relative std of ~sqrt(filter_s / window_s) =
22 % (11 % on sigma); and after a new model fits, sigma falls to it with window_s / 2 = 50 ms
(the std of v decays with window_s, its square root twice as fast).

Ticks in which the law did not run (hold, fault, stale state) break the chain: the next update
only remembers; the estimate keeps its value. No allocation per tick.

Recent samples for a swap's plant check
---------------------------------------
Each update also writes its step into a ring of the newest ``samples`` steps (default
SAMPLE_ROWS, 1 s at 1 kHz): the state (q, qd) at the recorded tick, the measured acceleration a,
the torque applied over the step, the raw innovation r (the running model's realized error
at a), the linearization term M(q) (a - qdd_des) and, once the controller has bound its query
(:meth:`ResidualSigma.bind_query`), the reference the tick's model read (q_des, qd_des,
qdd_des, q_des_next, qd_des_next). :meth:`ResidualSigma.snapshot` copies them without a lock
for another thread: the slot's check of a candidate model (runtime/slot.py
:func:`~dynlearn_ros.runtime.slot.check_plant_fit`) replays the candidate on the same queries
and scores it against r in the same linearized form, so a copy of the running model scores
exactly r.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dynlearn_ros.core.analytic import RigidBodyModel

#: defaults derived above (s)
DEFAULT_FILTER_S = 0.005
DEFAULT_WINDOW_S = 0.1
#: recent steps kept for the swap's plant check (1 s at 1 kHz)
SAMPLE_ROWS = 1000
#: the snapshot's keys of the recorded reference (with a bound query), InverseQuery's names
REFERENCE_KEYS = ("q_des", "qd_des", "qdd_des", "q_des_next", "qd_des_next")


def _keep(dt: float, tc: float) -> float:
    """1 - exp(-dt / tc): the update weight of a first-order filter with time constant tc (s);
    1 (no memory) for tc = 0."""
    return float(-np.expm1(-dt / tc)) if tc > 0 else 1.0


class ResidualSigma:
    """Per-joint realized inverse-dynamics error of the feed-forward model (see module docstring).

    urdf_path, joint_names: the analytic model whose mass matrix M(q) links acceleration and torque
    filter_s: low-pass time constant of the innovation (s, >= 0);  window_s: time constant of the
    exponentially weighted mean square (s, > 0).

    Per tick, in order: :meth:`observe` with the new state (updates the estimate from the
    previous tick's record), then, once the law has produced its torque, :meth:`record`.
    Attributes (n,): ``innovation`` r (N*m, last raw), ``mean`` y (N*m, filtered), ``mean_square``
    v ((N*m)^2), ``updates`` (count)."""

    def __init__(self, urdf_path: str | Path, joint_names: Sequence[str], dt: float,
                 filter_s: float = DEFAULT_FILTER_S, window_s: float = DEFAULT_WINDOW_S,
                 samples: int = SAMPLE_ROWS) -> None:
        if not (np.isfinite(filter_s) and filter_s >= 0):
            raise ValueError(f"filter_s must be finite and >= 0, got {filter_s}")
        if not (np.isfinite(window_s) and window_s > 0):
            raise ValueError(f"window_s must be finite and > 0, got {window_s}")
        self.rbd = RigidBodyModel(urdf_path, joint_names)
        self.rbd.model.gravity.linear[:] = 0.0      # rnea(q, 0, a) = M(q) a
        n = self.n = self.rbd.n
        self.dt, self.filter_s, self.window_s = float(dt), float(filter_s), float(window_s)
        self.innovation = np.zeros(n)
        self.mean = np.zeros(n)
        self.mean_square = np.zeros(n)
        self.updates = 0
        self._q, self._qd, self._fb, self._qdd_des = (np.zeros(n) for _ in range(4))
        self._t_prev = 0.0
        self._pending = False
        self._h_cached, self._beta, self._gamma = -1.0, 1.0, 1.0
        self._a, self._ma, self._zero = np.zeros(n), np.zeros(n), np.zeros(n)
        self._tau = np.zeros(n)
        # the ring of recent steps (module docstring): rows written by observe(), ``total`` counts them
        cap = self.sample_capacity = max(int(samples), 1)
        self._rq, self._rqd, self._ra, self._rtau, self._rr = (np.zeros((cap, n)) for _ in range(5))
        self._rma = np.zeros((cap, n))
        # the reference the recorded tick's model read (bind_query): q_des, qd_des, qdd_des, q_des_next, qd_des_next
        self._rref = np.zeros((5, cap, n))
        self._query = None
        self._rt = np.zeros(cap)
        self.sample_total = 0

    def bind_query(self, query) -> None:
        """Record, with every step, the reference in ``query`` (the controller's
        :class:`~dynlearn_ros.core.inverse_model.InverseQuery`, read at :meth:`record` time: the
        one the tick's model was evaluated at). Without it the snapshot has no reference."""
        self._query = query

    def reset(self) -> None:
        """Forget the record and the estimate (start, or a new plant)."""
        self._pending = False
        self.mean.fill(0.0)
        self.mean_square.fill(0.0)
        self.updates = 0

    def invalidate(self) -> None:
        """The last tick's torque was not the law's (hold, fault): do not use it."""
        self._pending = False

    def record(self, q: np.ndarray, qd: np.ndarray, t_state: float, tau_applied: np.ndarray,
               tau_ff: np.ndarray, qdd_des: np.ndarray) -> None:
        """Remember this tick: state (n,) rad, rad/s at ``t_state`` (s), the torque sent (N*m),
        the model's feed-forward (N*m) and the reference acceleration it was evaluated at (rad/s^2)."""
        self._q[:] = q
        self._qd[:] = qd
        np.subtract(tau_applied, tau_ff, out=self._fb)
        self._tau[:] = tau_applied
        self._qdd_des[:] = qdd_des
        self._t_prev = float(t_state)
        self._pending = True
        qr = self._query
        if qr is not None:   # into the row observe() completes (never one a snapshot returns)
            i = self.sample_total % self.sample_capacity
            ref = self._rref
            ref[0, i], ref[1, i], ref[2, i] = qr.q_des, qr.qd_des, qr.qdd_des
            ref[3, i], ref[4, i] = qr.q_des_next, qr.qd_des_next

    def observe(self, qd: np.ndarray, t_state: float) -> bool:
        """Update the estimate with the motion since the recorded tick: ``qd`` (n,) rad/s at
        ``t_state`` (s). Returns False (nothing updated) without a record or with a non-positive
        or non-finite step."""
        if not self._pending:
            return False
        self._pending = False
        h = float(t_state) - self._t_prev
        if not (np.isfinite(h) and h > 0) or not np.isfinite(qd).all():
            return False
        a = self._a
        np.subtract(qd, self._qd, out=a)
        a /= h
        i = self.sample_total % self.sample_capacity
        self._ra[i] = a                  # the measured acceleration, before a is reused below
        a -= self._qdd_des
        self.rbd.rnea(self._q, self._zero, a, self._ma)       # M(q) (a - qdd_des)
        np.subtract(self._fb, self._ma, out=self.innovation)
        if not np.isfinite(self.innovation).all():
            return False
        self._rq[i] = self._q
        self._rqd[i] = self._qd
        self._rtau[i] = self._tau
        self._rr[i] = self.innovation
        self._rma[i] = self._ma
        self._rt[i] = self._t_prev
        self.sample_total += 1
        if abs(h - self._h_cached) > 1e-9:   # the weights of the last step length (1 kHz: once)
            self._h_cached, self._beta, self._gamma = h, _keep(h, self.filter_s), _keep(h, self.window_s)
        beta, gamma = self._beta, self._gamma
        if self.updates == 0:
            self.mean[:] = 0.0
        self.mean += beta * (self.innovation - self.mean)
        # v += gamma (y^2 - v), without allocation: a holds y^2
        np.multiply(self.mean, self.mean, out=a)
        a -= self.mean_square
        a *= gamma
        self.mean_square += a
        self.updates += 1
        return True

    def snapshot(self, rows: int) -> dict[str, np.ndarray] | None:
        """Copies of the newest <= ``rows`` recorded steps, oldest first: t (m,) s, q, qd, a, tau,
        r, ma (m, n) (rad, rad/s, rad/s^2, N*m applied, N*m innovation, N*m M(q)(a - qdd_des)),
        and with a bound query the reference q_des, qd_des, qdd_des, q_des_next, qd_des_next
        (m, n) (rad, rad/s, rad/s^2, rad, rad/s); None when none.

        Lock-free for a thread other than the tick's: ``sample_total`` is read before and after
        the copy, and rows the tick may have written meanwhile (running indices from the first
        read on wrap onto the oldest positions) are dropped."""
        cap = self.sample_capacity
        first = self.sample_total
        names = ["t", "q", "qd", "a", "tau", "r", "ma"]
        sources = [self._rt, self._rq, self._rqd, self._ra, self._rtau, self._rr, self._rma]
        if self._query is not None:
            names += list(REFERENCE_KEYS)
            sources += list(self._rref)
        start = max(first - min(int(rows), cap), 0)
        idx = np.arange(start, first) % cap
        arrays = [a[idx] for a in sources]   # copies of those rows only (the ring is 10x longer)
        last = self.sample_total
        lo = max(last + 1 - cap, start)
        if first <= lo:
            return None
        return dict(zip(names, (a[lo - start:] for a in arrays), strict=True))

    def combine(self, std: np.ndarray, out: np.ndarray) -> np.ndarray:
        """out = sqrt(std^2 + max(0, v - std^2)) = max(std, sqrt(v)) (n,) N*m."""
        np.sqrt(self.mean_square, out=out)
        np.maximum(out, std, out=out)
        return out
