"""Computed-torque control with a learned feed-forward term and variance-scheduled gains.

    tau = tau_ff + K_P (q_d - q) + K_D (qd_d - qd),        clamped to +-tau_max,
    then |tau - tau_prev| <= dtau_max * dt per joint        (torque-rate limit, when set)

tau_ff and its per-joint std sigma come from an :class:`InverseModel` evaluated at the measured
state with the reference acceleration; K_P, K_D come from :class:`GainSchedule` (Eq. 7-8), fed
with sigma itself or its fast-attack / slow-release envelope (:class:`SigmaEnvelope`). With a
:class:`~dynlearn_ros.core.residual.ResidualSigma` (parameter ``residual_window_s`` > 0) the
envelope reads max(sigma, RMS of the model's realized error) instead (``sigma_in``).

Safe behaviour (each mode counted; the node logs them throttled):

* ``NORMAL``: the law above.
* ``MODEL_FALLBACK``: the learned model returned nothing usable (False, NaN/inf): tau_ff from the
  analytic rigid-body model and the gains for maximal uncertainty (K -> K_max): safe, not limp.
* ``HOLD``: no trustworthy state (older than ``stale_timeout_s``), or the law produced a
  non-finite torque: tau = g(q_last) - the analytic gravity torque at the last valid position,
  no feedback on data we do not trust. It keeps a resting arm where it is, and it is what a
  driver's own hold would do; zero torque would drop the arm under gravity.
* ``FAULT``: a joint's tracking error exceeded its limit ``max_error`` (a following-error
  fault: a diverging feed-forward, a collision, a reference the arm cannot follow). Latched: the
  reference becomes a hold at the position where it tripped, the learned model is set aside and
  the law runs with the analytic feed-forward and K_max (a stiff position hold on trusted data).
  A new reference (:meth:`set_reference`) clears it.
* ``WAITING``: no valid joint state yet. No command at all: a real driver must never get a
  command before the controller has seen where the arm is. The hand-over at the first valid
  state q0: the reference clock starts there, and every reference starts at q0 at rest (the
  built-in ones: a hold at q0, a sine whose amplitude fades in over ``ramp_s``, waypoint moves
  from q0; a reference_trajectory starts from the current desired state), so the first command
  holds the arm where it is and the motion ramps in from there.

Learned feed-forward blend-in (``ff_blend_s`` > 0, core/ff_blend.py): for ``ff_blend_s`` seconds
after the learned model takes over (the first valid state, the end of a fault) tau_ff is
tau_a + s (tau_ff - tau_a), s the min-jerk blend from 0 to 1, tau_a the analytic prediction at the
same query; never for the analytic model or the fallback.

Torque-rate limit (``Tuning.dtau_max``, N*m/s per joint, inf = none): every command, the hold
paths included, moves at most dtau_max * dt from the previous command (dt = the nominal control
period), after the clamp to +-tau_max. At start the previous command is the analytic torque of
the reference at the first state (for the built-in references: the torque that holds the arm at
q0), so the first command is not forced to ramp up from zero. Limited joint-ticks are counted.

Late commands (realtime on a loaded machine; the node measures how long the plant ran on each
command, core/safety.py LatenessScale): :meth:`ComputedTorqueController.set_late_bandwidth` bounds
every joint's closed-loop rates by omega and applies the feedback through M(q),

    tau = tau_ff + M(q) (a (q_d - q) + b (qd_d - qd)),   a = min(K_P / I, omega^2), b = min(K_D / I, 2 omega),

so the coupled modes are the designed per-joint ones (docs/safety.md, "Realtime under load");
:meth:`ComputedTorqueController.pause_reference` holds the reference clock back for time the arm
did not follow it. On time (omega = inf, lockstep, the in-process scenarios) the law above is
unchanged, bit for bit.

At run time, new gains and limits arrive as one :class:`Tuning` (built off the control path,
:meth:`ComputedTorqueController.stage_tuning`) and a new model through
:meth:`ComputedTorqueController.swap_model`; both take effect between two ticks.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import numpy as np

from dynlearn_ros.core.analytic import AnalyticInverseModel
from dynlearn_ros.core.ff_blend import FeedForwardBlend
from dynlearn_ros.core.inverse_model import InverseModel, InverseQuery
from dynlearn_ros.core.residual import ResidualSigma
from dynlearn_ros.core.safety import TorqueClamp, _any, rate_limit
from dynlearn_ros.core.schedule import GainSchedule
from dynlearn_ros.core.trajectories import Reference

_sum = np.add.reduce   # ndarray.sum() without its Python-level wrapper (the same pairwise sum)
_max = np.maximum.reduce   # ndarray.max() without its wrapper (NaN propagates the same way)


class Mode(enum.IntEnum):
    NORMAL = 0
    MODEL_FALLBACK = 1
    HOLD = 2
    FAULT = 3
    WAITING = 4   # no valid joint state yet: nothing is commanded


#: default following-error limit per joint (rad): far above any error of the scenarios that track
#: (<= 0.37 rad at K_min with the unknown payload), far below a run-away arm
DEFAULT_MAX_TRACKING_ERROR = 0.5


#: chatter guard (docs/safety.md, "Realtime under load"): late commands excite the arm's fastest
#: coupled mode (M^-1 K_D ~ 900 1/s for the iiwa's defaults, faults/late_commands.py), a velocity
#: oscillating from tick to tick. Measure: the velocity's second difference per tick,
#: max_j |qd - 2 qd' + qd''|_j / v_max_j, averaged over CHATTER_TICKS ticks. Smooth tracking gives
#: ~|jerk| dt^2 ~ 1e-5 of v_max (the sine reference: 34 rad/s^3); an oscillation of amplitude A at
#: the Nyquist rate gives 4 A / v_max, so the level 0.1 is an oscillation of v_max / 40: 1e4 times
#: smooth tracking, a twentieth of the gate's plausibility bound (2 v_max) where states start
#: being rejected. A single torque step (a hot swap, a new reference) is one tick's spike,
#: diluted 20 times: it trips the guard only beyond 2 v_max of second difference.
CHATTER_TICKS = 20
CHATTER_LEVEL = 0.1
#: while chattering, and CHATTER_HOLD_S after, K_D is multiplied by CHATTER_DAMPING (a third of
#: the damping keeps the replay calm with every command late; the P term is unchanged). The hold
#: outlasts the mode's return: released after 0.5 s it chattered again within the next second
#: in the replay (late_commands.py), with 2 s it stayed calm at 20, 50 and 100 % late commands.
CHATTER_HOLD_S = 2.0
CHATTER_DAMPING = 1.0 / 3.0


@dataclass
class Counters:
    """Safety and bookkeeping counters (cumulative)."""

    ticks: int = 0
    model_fallback: int = 0
    stale_hold: int = 0
    nonfinite_torque: int = 0
    clamped_joints: int = 0
    tracking_fault: int = 0
    rate_limited_joints: int = 0
    reference_clipped: int = 0
    late_ticks: int = 0
    chatter_ticks: int = 0    # ticks with K_D lowered by the chatter guard
    withheld_holds: int = 0   # stale holds not sent: the states showed the arm moving implausibly
    reference_paused_s: float = 0.0   # s the reference clock was held back (pause_reference)
    rejected: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "ticks": self.ticks, "model_fallback": self.model_fallback, "stale_hold": self.stale_hold,
            "nonfinite_torque": self.nonfinite_torque, "clamped_joints": self.clamped_joints,
            "tracking_fault": self.tracking_fault, "rate_limited_joints": self.rate_limited_joints,
            "reference_clipped": self.reference_clipped, "late_ticks": self.late_ticks,
            "chatter_ticks": self.chatter_ticks, "withheld_holds": self.withheld_holds,
            "reference_paused_s": self.reference_paused_s,
            **{f"rejected_{k}": v for k, v in sorted(self.rejected.items())},
        }


class TrackingStats:
    """Running per-joint sums for RMSE / mean gain summaries (no per-tick allocation)."""

    def __init__(self, n: int) -> None:
        self.count = 0
        self.sq_err = np.zeros(n)
        self.sum_kp = np.zeros(n)
        self.sum_std = np.zeros(n)
        self.max_abs_err = np.zeros(n)
        self._tmp = np.zeros(n)

    def add(self, err: np.ndarray, kp: np.ndarray, std: np.ndarray) -> None:
        self.count += 1
        np.multiply(err, err, out=self._tmp)
        self.sq_err += self._tmp
        self.sum_kp += kp
        self.sum_std += std
        np.abs(err, out=self._tmp)
        np.maximum(self.max_abs_err, self._tmp, out=self.max_abs_err)

    def summary(self) -> dict:
        c = max(self.count, 1)
        return {
            "ticks_counted": self.count,
            "joint_rmse_rad": np.sqrt(self.sq_err / c).tolist(),
            "joint_max_abs_err_rad": self.max_abs_err.tolist(),
            "rmse_rad_all": float(np.sqrt(self.sq_err.sum() / (c * self.sq_err.size))),
            "mean_kp": (self.sum_kp / c).tolist(),
            "mean_std": (self.sum_std / c).tolist(),
        }


def release_keep(dt: float, release_s: float) -> float:
    """r = exp(-dt / release_s) of :class:`SigmaEnvelope` (0 for release_s = 0: no envelope)."""
    if not (np.isfinite(release_s) and release_s >= 0):
        raise ValueError(f"release_s must be finite and >= 0, got {release_s}")
    return float(np.exp(-dt / release_s)) if release_s > 0 else 0.0


@dataclass(frozen=True)
class Tuning:
    """Everything about the controller that may change while it runs, built off the control
    path and applied between two ticks as one reference (:meth:`ComputedTorqueController.stage_tuning`).

    schedule: the gain schedule;  tau_max: (n,) N*m torque limits (> 0);  max_error: (n,) rad
    following-error limits (inf = none);  release_keep: the std envelope's r (see
    :func:`release_keep`);  stale_timeout_s: s;  analytic_std: (n,) N*m the analytic model reports
    (None: leave it);  dtau_max: (n,) N*m/s torque-rate limits (inf = none on that joint; None:
    no limit at all)."""

    schedule: GainSchedule
    tau_max: np.ndarray
    max_error: np.ndarray
    release_keep: float
    stale_timeout_s: float
    analytic_std: np.ndarray | None = None
    dtau_max: np.ndarray | None = None

    @classmethod
    def make(cls, schedule: GainSchedule, tau_max, dt: float, max_error: float | np.ndarray = 0.0,
             sigma_release_s: float = 0.0, stale_timeout_s: float = 0.05,
             analytic_std: np.ndarray | None = None,
             torque_rate_limit: float | np.ndarray | None = None) -> Tuning:
        """Check and precompute; ``max_error`` 0 or inf = no limit for that joint;
        ``torque_rate_limit`` (N*m/s, scalar or (n,)) None, or 0 / inf on a joint = no rate limit."""
        n = schedule.n
        tau_max = np.asarray(tau_max, dtype=np.float64).copy()
        if tau_max.shape != (n,):
            raise ValueError(f"size mismatch: schedule {n}, tau_max {tau_max.shape}")
        if not np.all(tau_max > 0):
            raise ValueError(f"torque limits must be > 0, got {tau_max}")
        max_error = np.broadcast_to(np.asarray(max_error, dtype=np.float64), (n,)).copy()
        if np.any(np.isnan(max_error)) or np.any(max_error < 0):
            raise ValueError(f"max_error must be >= 0 (0: no limit), got {max_error}")
        if analytic_std is not None:
            analytic_std = np.broadcast_to(np.asarray(analytic_std, dtype=np.float64), (n,)).copy()
        dtau_max = None
        if torque_rate_limit is not None:
            rate = np.broadcast_to(np.asarray(torque_rate_limit, dtype=np.float64), (n,))
            if np.any(np.isnan(rate)) or np.any(rate < 0):
                raise ValueError(f"torque_rate_limit must be >= 0 N*m/s (0: no limit), got {rate}")
            rate = np.where(rate > 0, rate, np.inf)
            dtau_max = rate if np.isfinite(rate).any() else None
        return cls(schedule, tau_max, np.where(max_error > 0, max_error, np.inf),
                   release_keep(dt, sigma_release_s), float(stale_timeout_s), analytic_std, dtau_max)


class SigmaEnvelope:
    """Fast-attack / slow-release envelope of the predictive std, per joint (n,) N*m:

        s_t = sigma_t                                  if sigma_t >= s_{t-1}
        s_t = s_{t-1} + (1 - r) (sigma_t - s_{t-1})    otherwise,   r = exp(-dt / release_s)

    A rise of the uncertainty reaches the gains at once (safety first); a return of confidence
    lowers them with the time constant ``release_s``. It removes the gain ripple a recurrent
    model's std can carry at 1 kHz without delaying any stiffening. ``release_s`` = 0: off
    (s_t = sigma_t). No allocation per call."""

    def __init__(self, n: int, dt: float, release_s: float = 0.0) -> None:
        self.keep = release_keep(dt, release_s)
        self.state = np.zeros(n)
        self._tmp = np.zeros(n)
        self.primed = False

    def reset(self, value: np.ndarray | None = None) -> None:
        """Forget the history; with ``value`` (n,), continue from it (e.g. sigma_f after a fallback)."""
        if value is None:
            self.primed = False
        else:
            self.state[:] = value
            self.primed = True

    def apply(self, sigma: np.ndarray, out: np.ndarray) -> np.ndarray:
        if self.keep == 0.0 or not self.primed:
            self.state[:] = sigma
            self.primed = True
        else:
            # released = keep * s + (1 - keep) * sigma, then the attack: max(released, sigma)
            np.multiply(self.state, self.keep, out=self.state)
            np.multiply(sigma, 1.0 - self.keep, out=self._tmp)
            self.state += self._tmp
            np.maximum(self.state, sigma, out=self.state)
        out[:] = self.state
        return out


class ComputedTorqueController:
    """The control law and its safety modes; one instance per controller node.

    analytic: the URDF model (always present: the fallback feed-forward and the hold torque)
    model: the feed-forward model in use (may be ``analytic`` itself)
    tau_max: (n,) N*m torque limits;  dt: control period (s);  settle_s: time after start
    excluded from the tracking statistics (s);  sigma_release_s: release time constant of the
    std envelope the schedule reads (:class:`SigmaEnvelope`; 0 = the raw std);  max_error: (n,)
    or scalar following-error limit (rad), 0 or inf = none for that joint (``FAULT`` mode).
    """

    def __init__(self, analytic: AnalyticInverseModel, model: InverseModel, schedule: GainSchedule,
                 reference: Reference | None, tau_max: np.ndarray, dt: float = 1e-3,
                 stale_timeout_s: float = 0.05, settle_s: float = 0.0, sigma_release_s: float = 0.0,
                 max_error: float | np.ndarray = 0.0,
                 torque_rate_limit: float | np.ndarray | None = None,
                 residual: ResidualSigma | None = None, ff_blend_s: float = 0.0) -> None:
        n = analytic.n
        if model.n != n or schedule.n != n:
            raise ValueError(f"size mismatch: analytic {n}, model {model.n}, schedule {schedule.n}")
        self.n = n
        tuning = Tuning.make(schedule, tau_max, dt, max_error, sigma_release_s, stale_timeout_s,
                             torque_rate_limit=torque_rate_limit)
        self.faulted = False
        self.q_fault = np.zeros(n)
        self.analytic, self.model = analytic, model
        self.reference = reference
        self.dt, self.settle_s = float(dt), float(settle_s)
        self.query = InverseQuery(n, dt=self.dt)
        # outputs of the last tick, (n,) each
        self.tau = np.zeros(n)
        self.tau_prev = self.query.tau_prev   # the previous command (the rate limit's, the models')
        self.tau_ff = np.zeros(n)
        self.std = np.zeros(n)
        self.sigma_sched = np.zeros(n)   # what the schedule reads: the envelope of std
        self.envelope = SigmaEnvelope(n, self.dt, sigma_release_s)
        self._gains_fresh = False   # kp, kd hold the schedule's gains for the analytic model's constant std
        self._gains_bounded = False  # fresh, but kp, kd were bounded by the late law (restore from the copies)
        self._kp_const, self._kd_const = np.zeros(n), np.zeros(n)
        self.residual = residual          # realized-error estimator (None: the model's std alone)
        if residual is not None:          # its recent steps carry the reference the model read
            residual.bind_query(self.query)
        # a learned feed-forward blended in from the analytic one after it takes over (core/ff_blend.py)
        self.ff_blend = FeedForwardBlend(n, ff_blend_s) if ff_blend_s > 0 else None
        self.sigma_in = np.zeros(n)       # max(std, realized RMS error): the envelope's input
        self._apply_tuning(tuning)
        self._staged_tuning: Tuning | None = None
        self.kp = np.zeros(n)
        self.kd = np.zeros(n)
        self.err = np.zeros(n)
        self._derr = np.zeros(n)
        self._scratch = np.zeros(n)
        self._mask = np.zeros(n, dtype=bool)   # comparisons in the tick, counted with _any (np.count_nonzero)
        self.mode = Mode.WAITING
        self.counters = Counters()
        self.stats = TrackingStats(n)
        self.t0: float | None = None  # state time at which the current reference started
        self.t_ref = 0.0              # reference time: state time since the current reference started
        self.t_first: float | None = None  # state time of the first valid state
        self.t_last = 0.0                  # state time of the latest valid state
        self.q_last = np.zeros(n)
        self.have_state = False
        self.last_state_wall = -np.inf
        self.q_des_limits: tuple[np.ndarray, np.ndarray] | None = None
        self.late_omega = math.inf   # rad/s: bandwidth bound while commands are held long (set_late_bandwidth)
        self._inertia: np.ndarray | None = None       # (n,) I of the late law (enable_late_law)
        self._inv_inertia: np.ndarray | None = None   # (n,) 1/I
        self._fb = np.zeros(n)      # the late law's accelerations a e + b e' (rad/s^2)
        self.damping_scale = 1.0   # < 1: K_D lowered by the chatter guard (set_chatter_guard)
        self.chatter = 0.0         # the guard's level (see CHATTER_LEVEL)
        self._inv_vmax: np.ndarray | None = None
        self._qd1 = np.zeros(n)
        self._qd2 = np.zeros(n)
        self._d2 = np.zeros(n)
        self._chatter_seen = 0
        self._chatter_until = -np.inf

    # -- inputs -------------------------------------------------------------------------
    def set_reference(self, reference: Reference, t_start: float | None = None) -> None:
        """Switch to ``reference``; its t=0 is ``t_start`` (state time, s) or, when None, the
        time of the current tick (the reference continues from where the controller is now).
        Clears a following-error fault (the learned model restarts from its initial belief)."""
        self.reference = reference
        if self.t0 is not None:
            self.t0 = self.t0 + self.t_ref if t_start is None else t_start
        if self.faulted:
            self.faulted = False
            self.model.reset()
            self.envelope.reset()
            self._start_blend()

    def _start_blend(self) -> None:
        """The learned model takes over the feed-forward (start, end of a fault): blend it in."""
        if self.ff_blend is not None:
            self.ff_blend.start()

    @property
    def started(self) -> bool:
        """True once the first valid state was handled (the reference clock runs)."""
        return self.t0 is not None

    def count_rejected(self, reason: str) -> int:
        """Count one rejected input (a joint state or trajectory) under ``reason``; returns the count."""
        rej = self.counters.rejected
        rej[reason] = rej.get(reason, 0) + 1
        return rej[reason]

    def stage_tuning(self, tuning: Tuning) -> None:
        """Hand over new gains / limits built off the control path; the next tick applies them
        at its start (one reference, no allocation in the tick)."""
        if tuning.schedule.n != self.n:
            raise ValueError(f"tuning for {tuning.schedule.n} joints, controller has {self.n}")
        self._staged_tuning = tuning

    def _apply_tuning(self, t: Tuning) -> None:
        self._gains_fresh = False
        self.tuning = t
        self.schedule = t.schedule
        self.tau_max = t.tau_max
        self._clamp = TorqueClamp(t.tau_max)   # (built here, between ticks: nothing allocated in the tick)
        self.max_error = t.max_error
        self._limit_on = bool(np.isfinite(t.max_error).any())
        self.dtau_max = t.dtau_max
        self.envelope.keep = t.release_keep
        self.stale_timeout_s = t.stale_timeout_s
        if t.analytic_std is not None:
            self.analytic.std[:] = t.analytic_std

    def desired_now(self, q_out: np.ndarray, qd_out: np.ndarray, qdd_out: np.ndarray) -> None:
        """The state the controller is steering to now (n,) each: the reference at t_ref, or the
        hold position (at rest) after a fault. A new reference should start here."""
        if self.faulted:
            q_out[:] = self.q_fault
            qd_out.fill(0.0)
            qdd_out.fill(0.0)
        else:
            self.reference.sample(self.t_ref, q_out, qd_out, qdd_out)

    def swap_model(self, model: InverseModel, tuning: Tuning | None = None) -> InverseModel:
        """Replace the feed-forward model (one reference swap, between two ticks); returns the
        previous one. ``tuning`` (built for the new model, e.g. its sigma bounds) replaces the
        current one and any staged tuning (it was built from the latest parameters).

        The new model starts from its initial belief (``reset``): a recurrent model (ac-RKN)
        warms up from the next measured state, with the torque last commanded as its previous
        action. The std envelope keeps its state: a new model's higher std raises the gains at
        once, a lower one lowers them with ``sigma_release_s`` (at once when 0)."""
        if model.n != self.n:
            raise ValueError(f"model has {model.n} joints, controller {self.n}")
        old, self.model = self.model, model
        self._gains_fresh = False
        model.reset()
        if tuning is not None:
            self._staged_tuning = None
            self._apply_tuning(tuning)
        return old

    def set_position_limits(self, lower: np.ndarray, upper: np.ndarray) -> None:
        """Keep the desired position inside [lower, upper] (n,) rad at every tick: the last line
        behind the references' own checks (a spline between two valid points can overshoot)."""
        lo, hi = np.asarray(lower, dtype=np.float64).copy(), np.asarray(upper, dtype=np.float64).copy()
        if lo.shape != (self.n,) or hi.shape != (self.n,) or np.any(lo >= hi):
            raise ValueError(f"position limits must be (n,) with lower < upper, got {lo}, {hi}")
        self.q_des_limits = (lo, hi)

    def set_chatter_guard(self, velocity_limits: np.ndarray) -> None:
        """Turn the chatter guard on (CHATTER_LEVEL above): velocity_limits (n,) rad/s > 0. Off by
        default (the in-process scenarios run lockstep, where commands are never late)."""
        v = np.asarray(velocity_limits, dtype=np.float64)
        if v.shape != (self.n,) or not np.all(v > 0):
            raise ValueError(f"velocity limits must be (n,) and > 0, got {v}")
        self._inv_vmax = 1.0 / v

    def _guard_chatter(self, qd: np.ndarray, t: float) -> None:
        d = self._d2
        np.subtract(qd, self._qd1, out=d)
        d -= self._qd1
        d += self._qd2
        np.abs(d, out=d)
        d *= self._inv_vmax
        if self._chatter_seen >= 2:
            self.chatter += (float(_max(d)) - self.chatter) / CHATTER_TICKS
        else:
            self._chatter_seen += 1
        # the history moves by one: the oldest array takes the newest velocity (no copy of qd')
        self._qd2, self._qd1 = self._qd1, self._qd2
        self._qd1[:] = qd
        if self.chatter > CHATTER_LEVEL:
            self._chatter_until = t + CHATTER_HOLD_S
        if t <= self._chatter_until and not math.isfinite(self.late_omega):
            self.damping_scale = CHATTER_DAMPING
            self.counters.chatter_ticks += 1
        else:
            # (the late law, when on, bounds the damping itself: critically damped per joint; a
            # third of it on top made the brakes' velocity steps ring in the replay)
            self.damping_scale = 1.0

    def pause_reference(self, seconds: float) -> None:
        """Hold the reference clock back by ``seconds`` (>= 0): the plant did not follow the
        reference for that long (the robot braked after its command watchdog ran out; the
        stale hold), so the reference continues from where the arm was left instead of having
        run ahead of it (docs/safety.md, "Realtime under load")."""
        if seconds > 0 and self.t0 is not None:
            self.t0 += float(seconds)
            self.counters.reference_paused_s += float(seconds)

    def enable_late_law(self, inertia: np.ndarray) -> None:
        """Allow the late law (:meth:`set_late_bandwidth`): ``inertia`` (n,) kg*m^2 > 0, the
        per-joint inertias the gains were designed for (K = I omega^2: diag M(home), as
        :func:`~dynlearn_ros.core.schedule.default_gains`)."""
        inertia = np.asarray(inertia, dtype=np.float64)
        if inertia.shape != (self.n,) or not np.all(inertia > 0):
            raise ValueError(f"inertia must be (n,) and > 0, got {inertia}")
        self._inertia = inertia.copy()
        self._inv_inertia = 1.0 / inertia

    def set_late_bandwidth(self, omega: float) -> None:
        """The next ticks' feedback for commands the plant runs on for longer than a period
        (docs/safety.md, "Realtime under load"); ``omega`` rad/s, inf = on time (the law above).

        Finite: every joint's designed rates are bounded, a_j = min(K_P,j / I_j, omega^2),
        b_j = min(K_D,j / I_j, 2 omega), and the feedback goes through the mass matrix,

            tau_fb = M(q) (a (q_d - q) + b (qd_d - qd)),

        so each error obeys e'' = -a e - b e' (with the exact feed-forward): the closed-loop
        modes are the designed per-joint ones, not the coupled M^-1 K_P, M^-1 K_D (134 rad/s,
        904 1/s for the iiwa's diagonal gains, faults/late_commands.py), and all of them stay
        below omega. kp, kd report I a, I b (the equivalent gains at home). Counted in
        ``late_ticks``; needs :meth:`enable_late_law`."""
        if self._inv_inertia is None and math.isfinite(omega):
            raise RuntimeError("set_late_bandwidth needs enable_late_law first")
        self.late_omega = float(omega) if omega > 0 else math.inf
        if math.isfinite(self.late_omega):
            self.counters.late_ticks += 1

    def _bound_rates(self) -> None:
        """kp, kd -> I min(K_P / I, omega^2), I min(K_D / I, 2 omega) (the late law's a, b times I)."""
        bound, w = self._scratch, self.late_omega
        np.multiply(self._inertia, w * w, out=bound)
        np.minimum(self.kp, bound, out=self.kp)
        np.multiply(self._inertia, 2.0 * w, out=bound)
        np.minimum(self.kd, bound, out=self.kd)
        if self._gains_fresh:
            # constant gains (the analytic model): the next tick restores them from the copy
            # instead of running the schedule again (the late law acts on most ticks under load)
            self._gains_bounded = True

    def _feedback(self, q: np.ndarray, tau: np.ndarray) -> None:
        """tau = kp * err + kd * _derr; through M(q) I^-1 while late (:meth:`set_late_bandwidth`)."""
        np.multiply(self.kp, self.err, out=tau)
        self._derr *= self.kd
        tau += self._derr
        if math.isfinite(self.late_omega):
            # M(q) v: one RNEA pass on the gravity-free model (it was RNEA(q, 0, v) - g(q), two
            # passes: the late law runs on most ticks under load), nothing allocated
            np.multiply(tau, self._inv_inertia, out=self._fb)
            self.analytic.rbd.mass_times(q, self._fb, tau)

    def _clip_desired(self, with_next: bool) -> None:
        """Clip q_des and, ``with_next``, q_des_next into the limits; where clipped the desired
        velocity and acceleration are zero (the reference stops at the limit); counted per
        tick. ``with_next`` False: the reference at t + dt was not sampled this tick (the
        analytic model reads only t, not q_des_next, and no realized-error record keeps it):
        what q_des_next holds (zeros at start, the last sample, a fault's hold position) is not
        checked nor counted; it is clipped with q_des when q_des is, as before."""
        lo, hi = self.q_des_limits
        qr = self.query
        m = self._mask
        if (_any(np.less(qr.q_des, lo, out=m)) or _any(np.greater(qr.q_des, hi, out=m))
                or (with_next and (_any(np.less(qr.q_des_next, lo, out=m))
                                   or _any(np.greater(qr.q_des_next, hi, out=m))))):
            self.counters.reference_clipped += 1
            outside = (qr.q_des < lo) | (qr.q_des > hi)
            qr.qd_des[outside] = 0.0
            qr.qdd_des[outside] = 0.0
            np.clip(qr.q_des, lo, hi, out=qr.q_des)
            np.clip(qr.q_des_next, lo, hi, out=qr.q_des_next)
            qr.qd_des_next[(qr.q_des_next <= lo) | (qr.q_des_next >= hi)] = 0.0

    # -- the tick ---------------------------------------------------------------------------
    def step(self, q: np.ndarray, qd: np.ndarray, t_state: float, wall_now: float) -> Mode:
        """One control tick for a valid, fresh state (q, qd) measured at ``t_state`` (s).

        Fills ``self.tau`` (the command) and the status arrays; returns the mode used."""
        c = self.counters
        c.ticks += 1
        staged = self._staged_tuning
        if staged is not None:
            self._staged_tuning = None
            self._apply_tuning(staged)
        self.have_state = True
        self.last_state_wall = wall_now
        self.q_last[:] = q
        self.tau_prev[:] = self.tau
        self.t_last = t_state
        if self.t0 is None:
            self.t0 = self.t_first = t_state
            if self.reference is None:
                raise RuntimeError("no reference set")
            # models that predict relative to the previous torque need a sensible first one:
            # the analytic torque for the reference at the first state, not zero
            self.reference.sample(0.0, self.query.q_des, self.query.qd_des, self.query.qdd_des)
            self.query.q[:] = q
            self.query.qd[:] = qd
            self.analytic.predict(self.query, self.tau, self._scratch)
            self._clamp(self.tau)
            self.tau_prev[:] = self.tau
            self._start_blend()
        self.t_ref = t_state - self.t0
        if self._inv_vmax is not None:
            self._guard_chatter(qd, t_state)
        res = self.residual
        if res is not None:
            res.observe(qd, t_state)
        if self.faulted:
            return self._fault_hold(q, qd)
        qr = self.query
        qr.q[:] = q
        qr.qd[:] = qd
        self.reference.sample(self.t_ref, qr.q_des, qr.qd_des, qr.qdd_des)
        # the analytic model reads the reference at t only; learned ones at t + dt too, and so does
        # the realized-error record (res): a candidate's plant check replays it (runtime/slot.py
        # check_plant_fit) and a learned candidate reads q_des_next also after analytic ticks
        analytic = self.model is self.analytic
        sample_next = not analytic or res is not None
        if sample_next:
            self.reference.sample(self.t_ref + self.dt, qr.q_des_next, qr.qd_des_next, self._scratch)
        if self.q_des_limits is not None:
            self._clip_desired(sample_next)

        ok = self.model.predict(qr, self.tau_ff, self.std)
        # one reduction for both finiteness checks: a NaN or inf anywhere makes the sum non-finite
        # (an overflow of finite values too: then the fallback, the safe side)
        if ok and math.isfinite(_sum(self.tau_ff) + _sum(self.std)):
            self.mode = Mode.NORMAL
            if not self._gains_fresh:
                sig = self.std if res is None else res.combine(self.std, self.sigma_in)
                self.envelope.apply(sig, self.sigma_sched)
                self.schedule.gains(self.sigma_sched, self.kp, self.kd)
                # the analytic model's std is a constant of the tuning: with no envelope and no
                # realized-error sigma its gains stay those until the tuning, the model or the mode changes
                self._gains_fresh = analytic and res is None and self.envelope.keep == 0.0
                if self._gains_fresh:   # kept for the late law, which bounds kp, kd in place
                    np.copyto(self._kp_const, self.kp)
                    np.copyto(self._kd_const, self.kd)
                    self._gains_bounded = False
            elif self._gains_bounded:   # the constant gains, bounded by the late law last tick: restore
                np.copyto(self.kp, self._kp_const)
                np.copyto(self.kd, self._kd_const)
                self._gains_bounded = False
        else:
            self._gains_fresh = False
            c.model_fallback += 1
            self.mode = Mode.MODEL_FALLBACK
            self.analytic.predict(qr, self.tau_ff, self._scratch)
            self.std[:] = self.schedule.sigma_f  # maximal uncertainty
            self.envelope.reset(self.schedule.sigma_f)   # confidence returns gradually afterwards
            self.schedule.max_gains(self.kp, self.kd)

        if self.ff_blend is not None and self.ff_blend.active:
            self._blend_ff(t_state, analytic)
        if math.isfinite(self.late_omega):
            self._bound_rates()
        if self.damping_scale < 1.0:
            self.kd *= self.damping_scale
            self._gains_fresh = False
        np.subtract(qr.q_des, q, out=self.err)
        if self._limit_on:
            np.abs(self.err, out=self._scratch)
            if _any(np.greater(self._scratch, self.max_error, out=self._mask)):
                c.tracking_fault += 1
                self.faulted = True
                self.q_fault[:] = q
                self.model.reset()
                return self._fault_hold(q, qd)
        np.subtract(qr.qd_des, qd, out=self._derr)
        tau = self.tau
        self._feedback(q, tau)
        tau += self.tau_ff
        if not math.isfinite(_sum(tau)):
            c.nonfinite_torque += 1
            return self._hold()
        c.clamped_joints += self._clamp(tau)
        self._limit_rate()
        self.model.commit(tau)
        if res is not None:
            res.record(q, qd, t_state, tau, self.tau_ff, qr.qdd_des)
        if self.t_ref >= self.settle_s:
            self.stats.add(self.err, self.kp, self.std)
        return self.mode

    def _blend_ff(self, t_state: float, analytic: bool) -> None:
        """While the blend runs, tau_ff moves from the analytic toward the learned prediction
        (core/ff_blend.py); nothing to blend for the analytic model itself or in the fallback
        (its feed-forward is the analytic one); the blend's clock runs on regardless."""
        s = self.ff_blend.weight(t_state)
        if s < 1.0 and not analytic and self.mode is Mode.NORMAL:
            self.ff_blend.mix(s, self.analytic, self.query, self.tau_ff)

    def is_stale(self, wall_now: float) -> bool:
        """True when a state was received once but not within ``stale_timeout_s`` of ``wall_now``."""
        return self.have_state and (wall_now - self.last_state_wall) > self.stale_timeout_s

    def stale_hold(self) -> Mode:
        """The command to send when the state is stale: gravity hold at the last valid q
        (rate-limited from the previous command like every other command)."""
        self.counters.stale_hold += 1
        self.tau_prev[:] = self.tau
        self.model.reset()
        self.envelope.reset()
        return self._hold()

    def withhold_hold(self) -> Mode:
        """Stale, and the states that did arrive were rejected as implausible motion (beyond the
        joint limits, faster than the velocity bound, jumping): the arm is moving and the
        controller cannot see it, so no command is the safe answer - a gravity hold at the
        last valid pose would be the wrong torque at the real pose, and every command keeps a
        robot's command watchdog from braking (docs/safety.md). Counts, resets the model's
        belief and the std envelope as a stale hold does; the caller publishes nothing."""
        self.counters.withheld_holds += 1
        self.model.reset()
        self.envelope.reset()
        self._gains_fresh = False
        self.mode = Mode.HOLD
        return self.mode

    def _fault_hold(self, q: np.ndarray, qd: np.ndarray) -> Mode:
        """Stiff hold at q_fault: tau = RNEA_urdf(q, qd, 0) + K_max (q_fault - q) - K_D,max qd."""
        qr = self.query
        qr.q[:] = q
        qr.qd[:] = qd
        qr.q_des[:] = self.q_fault
        qr.qd_des.fill(0.0)
        qr.qdd_des.fill(0.0)
        qr.q_des_next[:] = self.q_fault
        qr.qd_des_next.fill(0.0)
        self._gains_fresh = False
        self.analytic.predict(qr, self.tau_ff, self._scratch)
        self.std[:] = self.schedule.sigma_f
        self.schedule.max_gains(self.kp, self.kd)
        if math.isfinite(self.late_omega):
            self._bound_rates()
        if self.damping_scale < 1.0:
            self.kd *= self.damping_scale
        np.subtract(self.q_fault, q, out=self.err)
        np.negative(qd, out=self._derr)
        tau = self.tau
        self._feedback(q, tau)
        tau += self.tau_ff
        self.mode = Mode.FAULT
        if self.residual is not None:
            self.residual.invalidate()
        if not np.isfinite(tau).all():
            self.counters.nonfinite_torque += 1
            return self._hold()
        self.counters.clamped_joints += self._clamp(tau)
        self._limit_rate()
        if self.t_ref >= self.settle_s:
            self.stats.add(self.err, self.kp, self.std)
        return self.mode

    def _limit_rate(self) -> None:
        """Bound ``self.tau``'s step from ``self.tau_prev`` to dtau_max * dt per joint (in place)."""
        if self.dtau_max is not None:
            self.counters.rate_limited_joints += rate_limit(self.tau_prev, self.tau, self.dtau_max,
                                                            self.dt, self.tau)

    def _hold(self) -> Mode:
        if self.residual is not None:
            self.residual.invalidate()
        self.analytic.rbd.gravity(self.q_last, self.tau)
        self._clamp(self.tau)
        self._limit_rate()
        self._gains_fresh = False
        self.kp.fill(0.0)
        self.kd.fill(0.0)
        self.mode = Mode.HOLD
        return self.mode

    @property
    def state_time_s(self) -> float:
        """State (robot or simulation) time covered from the first valid state to the latest (s);
        unlike ``t_ref`` it does not restart with a new reference."""
        return 0.0 if self.t_first is None else self.t_last - self.t_first

    def summary(self) -> dict:
        return {**self.stats.summary(), "counters": self.counters.as_dict()}
