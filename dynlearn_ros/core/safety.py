"""Input checks between the wire and the control law (numpy only).

``JointStateMapper`` turns a JointState's (name, position, velocity) into the controller's joint
order through a name index built once per distinct name ordering, and rejects what must never
reach the control law. ``clamp_torque`` bounds the command and ``rate_limit`` its rate of change
(a real robot's torque-rate limit, e.g. Franka's 1000 N*m/s). Each rejection has a reason code
the node counts and logs (throttled).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# "any" / "how many" of a boolean mask on the tick's path: np.count_nonzero (a C function; its
# result is truthy exactly when a value is True) takes ~0.24 us on a 7-vector, against ~0.9 us for
# np.logical_or.reduce and ~1 us for ndarray.any() (a ufunc reduction's set-up; the method adds a
# Python-level wrapper), measured with numpy 2.4 here; a dozen of them run per tick
_any = np.count_nonzero
_count = np.count_nonzero

# Reasons a joint state is rejected (also the counter names).
OK = "ok"
SHORT = "short_message"  # position/velocity arrays shorter than the name list, or empty
UNKNOWN_NAMES = "unknown_names"  # an expected joint is missing from the names (or duplicates)
NON_FINITE = "non_finite_state"  # NaN/inf in an expected joint's position or velocity
REJECT_REASONS = (SHORT, UNKNOWN_NAMES, NON_FINITE)


class JointStateMapper:
    """Map JointState fields onto ``joint_names`` order, rejecting unusable messages.

    Extra names (a gripper's, say) are ignored. A message in another order is accepted and
    re-indexed (``reorders`` counts the index rebuilds). On acceptance ``q`` and ``qd`` (n,) hold
    the new values; on rejection they keep the last accepted ones.
    """

    def __init__(self, joint_names: Sequence[str]) -> None:
        self.joint_names = tuple(joint_names)
        self.n = len(self.joint_names)
        if len(set(self.joint_names)) != self.n or self.n == 0:
            raise ValueError(f"joint_names must be non-empty and unique, got {self.joint_names}")
        self.q = np.zeros(self.n)
        self.qd = np.zeros(self.n)
        self._names: list[str] | None = None
        self._index = np.arange(self.n)
        self._identity = True
        self._buf = np.zeros((2, self.n))   # rows: q, qd (one finiteness check for both)
        self._buf_q, self._buf_qd = self._buf[0], self._buf[1]
        self._finite = np.zeros((2, self.n), dtype=bool)
        self.reorders = 0

    def _reindex(self, names: Sequence[str]) -> bool:
        lookup: dict[str, int] = {}
        for i, name in enumerate(names):
            if name in lookup:
                return False  # duplicate name: ambiguous
            lookup[name] = i
        try:
            index = np.array([lookup[j] for j in self.joint_names], dtype=np.intp)
        except KeyError:
            return False
        self._names = list(names)
        self._index = index
        self._identity = len(names) == self.n and bool(np.array_equal(index, np.arange(self.n)))
        self.reorders += 1
        return True

    def update(self, names: Sequence[str], position: Sequence[float], velocity: Sequence[float]) -> str:
        """Validate and copy one message; return :data:`OK` or a rejection reason."""
        m = len(names)
        if m == 0 or len(position) < m or len(velocity) < m:
            return SHORT
        if self._names is None or names != self._names:
            if not self._reindex(names):
                return UNKNOWN_NAMES
        pos = np.asarray(position, dtype=np.float64)
        vel = np.asarray(velocity, dtype=np.float64)
        if self._identity:
            self._buf_q[:] = pos[: self.n]
            self._buf_qd[:] = vel[: self.n]
        else:
            np.take(pos, self._index, out=self._buf_q)
            np.take(vel, self._index, out=self._buf_qd)
        if _count(np.isfinite(self._buf, out=self._finite)) != self._finite.size:
            return NON_FINITE
        self.q[:] = self._buf_q
        self.qd[:] = self._buf_qd
        return OK


def clamp_torque(tau: np.ndarray, limits: np.ndarray) -> int:
    """Clamp ``tau`` (n,) in place to [-limits, limits] (N*m); return how many joints were clamped.

    ``tau`` must be finite (check first: a NaN is not clamped, it is a safety stop)."""
    over = int(np.count_nonzero(np.abs(tau) > limits))
    if over:
        np.clip(tau, -limits, limits, out=tau)
    return over


class TorqueClamp:
    """:func:`clamp_torque` for fixed ``limits`` (n,) N*m > 0, with nothing allocated per call:
    the tick's path (core/control.py). The same result bit for bit: where a joint is over,
    min(max(tau, -limits), limits) is what ``np.clip`` gives a finite value; the count is the
    same comparison's. ``tau`` must be finite (as for :func:`clamp_torque`)."""

    def __init__(self, limits: np.ndarray) -> None:
        self.hi = np.array(limits, dtype=np.float64)
        self.lo = np.negative(self.hi)
        self._abs = np.zeros(self.hi.shape)
        self._over = np.zeros(self.hi.shape, dtype=bool)

    def __call__(self, tau: np.ndarray) -> int:
        """Clamp ``tau`` in place; return how many joints were clamped."""
        over = self._over
        np.abs(tau, out=self._abs)
        if not _any(np.greater(self._abs, self.hi, out=over)):
            return 0
        np.minimum(tau, self.hi, out=tau)
        np.maximum(tau, self.lo, out=tau)
        return int(_count(over))


def rate_limit(tau_prev: np.ndarray, tau: np.ndarray, dtau_max: np.ndarray | float, dt: float,
               out: np.ndarray) -> int:
    """Bound the torque's rate of change; return how many joints were limited.

    out = clip(tau, tau_prev - dtau_max * dt, tau_prev + dtau_max * dt)

    tau_prev, tau, out: (n,) N*m (``out`` may be ``tau`` itself: in place); dtau_max: (n,) or
    scalar N*m/s (inf: no limit on that joint); dt: the command period (s), > 0. Where a joint
    is within its limit ``out`` is ``tau`` bit for bit. Inputs must be finite (check first, as
    for :func:`clamp_torque`). Allocates only on the limiting path and for the comparison.
    """
    if not dt > 0.0:
        raise ValueError(f"rate_limit: dt must be > 0 s, got {dt}")
    step = np.multiply(dtau_max, dt)
    over = int(np.count_nonzero(np.abs(tau - tau_prev) > step))
    if over:
        np.clip(tau, tau_prev - step, tau_prev + step, out=out)
    elif out is not tau:
        np.copyto(out, tau)
    return over


# Reasons the plausibility / ordering gate rejects a state (also counter names).
OUT_OF_RANGE = "position_out_of_range"  # beyond the joint limits plus the margin
TOO_FAST = "velocity_implausible"  # |qd| beyond vel_factor x the velocity limit
JUMP = "position_jump"  # moved further than vel_factor x v_max allows since the last good state
STAMP_BACKWARDS = "stamp_backwards"  # older than the last accepted state
STAMP_REPEATED = "stamp_repeated"  # the same stamp as the last accepted state
RATE = "rate_too_high"  # newer, but less than min_interval_s after the last accepted state
SECOND_SOURCE = "second_source"  # from another publisher than the one the controller follows
GATE_REASONS = (OUT_OF_RANGE, TOO_FAST, JUMP, STAMP_BACKWARDS, STAMP_REPEATED, RATE, SECOND_SOURCE)

#: position margin beyond the URDF limits (rad) still accepted: PyBullet and real joints enforce
#: their stops softly (a joint pressed into its stop at full torque overshoots by a few mrad to a
#: few 10 mrad); a reading 0.1 rad past the stop is a sensor or driver fault, not a pose
POSITION_MARGIN = 0.1
#: readings above this multiple of the velocity limit are implausible: a real drive stops the arm
#: at its limit (FRI / libfranka monitor it), so twice the limit is a broken reading, not motion
VELOCITY_FACTOR = 2.0
#: allowance (rad) on top of the velocity bound for a jump between two samples: quantisation and
#: stamp jitter of a driver (encoders resolve urad; 10 mrad covers a 3 ms stamp error at 3 rad/s)
JUMP_EPS = 0.01


class StateGate:
    """Plausibility and ordering checks of joint states already mapped to URDF order.

    A state (q, qd) (n,) rad, rad/s stamped ``t`` (s) passes when

    * lower - margin <= q <= upper + margin                      (else OUT_OF_RANGE)
    * |qd| <= vel_factor * v_max                                 (else TOO_FAST)
    * t > t_last (strictly; equal: STAMP_REPEATED, less: STAMP_BACKWARDS)
    * t - t_last >= min_interval_s                               (else RATE: a flood)
    * |q - q_last| <= vel_factor * v_max * (t - t_last) + JUMP_EPS (else JUMP)

    where (q_last, t_last) is the last state that passed. The first state has no history: only
    the range checks apply. :meth:`check` does not change anything on rejection; :meth:`accept`
    records a state that passed. :meth:`reset` forgets the history (a new source). Allocates
    nothing per call (comparisons go into a preallocated mask)."""

    def __init__(self, lower: np.ndarray, upper: np.ndarray, velocity: np.ndarray, min_interval_s: float,
                 margin: float = POSITION_MARGIN, vel_factor: float = VELOCITY_FACTOR) -> None:
        self.lo = np.asarray(lower, dtype=np.float64) - margin
        self.hi = np.asarray(upper, dtype=np.float64) + margin
        self.vmax = vel_factor * np.asarray(velocity, dtype=np.float64)
        if not (self.lo.shape == self.hi.shape == self.vmax.shape) or np.any(self.vmax <= 0):
            raise ValueError("lower, upper, velocity must be (n,) with velocity > 0")
        self.min_interval_s = float(min_interval_s)
        self.q_last = np.zeros(self.lo.size)
        self.t_last: float | None = None
        self._tmp = np.zeros(self.lo.size)
        self._bound = np.zeros(self.lo.size)
        self._over = np.zeros(self.lo.size, dtype=bool)

    def reset(self) -> None:
        self.t_last = None

    def check(self, q: np.ndarray, qd: np.ndarray, t: float) -> str:
        """:data:`OK` or the first failed check's reason (see the class docstring)."""
        over = self._over   # comparisons into one preallocated mask, reduced with the method
        if _any(np.less(q, self.lo, out=over)) or _any(np.greater(q, self.hi, out=over)):
            return OUT_OF_RANGE
        np.abs(qd, out=self._tmp)
        if _any(np.greater(self._tmp, self.vmax, out=over)):
            return TOO_FAST
        if self.t_last is None:
            return OK
        dt = t - self.t_last
        if dt == 0.0:
            return STAMP_REPEATED
        if dt < 0.0:
            return STAMP_BACKWARDS
        if dt < self.min_interval_s:
            return RATE
        np.subtract(q, self.q_last, out=self._tmp)
        np.abs(self._tmp, out=self._tmp)
        np.multiply(self.vmax, dt, out=self._bound)
        self._bound += JUMP_EPS
        if _any(np.greater(self._tmp, self._bound, out=over)):
            return JUMP
        return OK

    def accept(self, q: np.ndarray, t: float) -> None:
        self.q_last[:] = q
        self.t_last = t


class SourceLock:
    """Follow one publisher of joint states (by its gid) and notice a second one.

    :meth:`check` returns True for a message from the followed publisher (the first one seen,
    or a new one once the followed publisher is gone: ``publishers`` == 1 and nothing from it
    for ``silence_s``), False otherwise; ``conflict`` is set from a message of a second
    publisher while the followed one is alive, or from ``publishers`` > 1 (see
    :meth:`note_publishers`), and cleared when one publisher remains."""

    def __init__(self, silence_s: float) -> None:
        self.silence_s = float(silence_s)
        self.gid: bytes | None = None
        self.last_wall = -np.inf
        self.conflict = False
        self.publishers = 0
        self.relocks = 0

    def check(self, gid: bytes | None, wall: float) -> bool:
        if gid is None:  # the middleware gives no gid: count-based detection only
            return not self.conflict
        if self.gid is None or (gid != self.gid and not self.conflict and self.publishers <= 1
                                and wall - self.last_wall > self.silence_s):
            if self.gid is not None:
                self.relocks += 1
            self.gid = gid
        if gid != self.gid:
            self.conflict = True
            return False
        self.last_wall = wall
        return not self.conflict

    def note_publishers(self, count: int) -> None:
        """The publisher count on the state topic (from the graph); > 1 is a conflict, 1 ends it."""
        self.publishers = count
        if count > 1:
            self.conflict = True
        elif self.conflict:
            self.conflict = False


#: omega * hold kept at or below this (rad) while commands are held long (:class:`LatenessScale`).
#: A zero-order hold of d acts as a delay of about d / 2: 0.65 rad costs ~20-40 deg of phase (with
#: the transport delay) out of a critically damped PD's ~76 deg margin. The damping rate is then at
#: most 2 omega, 1.3 per hold, below the stability limit 2 of a held damping command. Chosen in
#: the replay (faults/late_commands.py replay_starved, median gaps 3-25 periods, lag 2-4, 0 and
#: 3 kg of unknown payload, seeds 0-2): 0.5 stayed calm but soft (an unknown 3 kg payload:
#: errors up to 0.49 rad, 2 following-error faults in 9 runs); 0.8 tracked best but passed the
#: velocity limit without payload at the heaviest starvation (1.21 v_max); 0.65: at most 0.92
#: v_max without payload, errors up to 0.41 rad and no fault with 3 kg.
LATENESS_PHASE = 0.65

#: release time constant (s) of the predicted hold (:class:`LatenessScale`): a loaded machine
#: starves the loop in bursts, so the late law stays on until about release_s * ln(d_hat / T)
#: of on-time ticks have passed (~3 s after a 20 ms hold at 1 kHz)
HOLD_RELEASE_S = 1.0


class LatenessScale:
    """The bandwidth bound for a loop whose commands the plant runs on for longer than one
    period (a loaded machine, realtime stepping; docs/safety.md "Realtime under load").

    Each accepted state reports how long the plant ran on the previous command (``delay_s``,
    :func:`held_delay`). The next command will be held for an unknown time; the estimate is the
    fast-attack / slow-release envelope of the measured holds,

        d_hat = max(d, T + (d_hat' - T) exp(-d / release_s)),

    because starvation comes in bursts: softer gains only for the tick right after a long hold
    still ran away in the replay (faults/late_commands.py). With d_hat of at least LATE_PERIODS
    periods T the bound is omega = LATENESS_PHASE / d_hat (rad/s) for
    :meth:`~dynlearn_ros.core.control.ComputedTorqueController.set_late_bandwidth`; on time
    (d_hat < 2 T) it is inf and the law is untouched - lockstep never looks late, so its
    figures do not move."""

    def __init__(self, period_s: float, release_s: float = HOLD_RELEASE_S) -> None:
        if not (period_s > 0 and release_s > 0):
            raise ValueError(f"period_s and release_s must be > 0, got {period_s}, {release_s}")
        self.period_s, self.release_s = float(period_s), float(release_s)
        self.d_hat = self.period_s   # s, the predicted hold of the next command

    def reset(self) -> None:
        """Forget the history of holds (d_hat = one period)."""
        self.d_hat = self.period_s

    def update(self, delay_s: float) -> float:
        """Fold in the hold before this state (s); returns this tick's bound (rad/s, inf = none)."""
        t = self.period_s
        d = max(float(delay_s), t)
        self.d_hat = max(d, t + (self.d_hat - t) * math.exp(-d / self.release_s))
        if self.d_hat < LATE_PERIODS * t * (1.0 - 1e-6):   # (stamps in ns: 2 ms may read 1.999999)
            return math.inf
        return LATENESS_PHASE / self.d_hat


#: a stamp step of this many control periods or more is a held command (see held_delay): held
#: 2 periods, the default gains' coupled fast mode gets a damping impulse M^-1 K_D d = 1.8 (the
#: iiwa: 904 1/s; 2 is the stability limit of a held command), held 3 periods it is past it
LATE_PERIODS = 2


def held_delay(dstamp: float, dwall: float, period_s: float, resumed: bool, timeout_s: float = math.inf) -> float:
    """How long (s) the plant ran on the previous control command before this state: the stamp
    step ``dstamp`` since the last accepted state, at most ``timeout_s`` (the robot's command
    watchdog: past it the robot brakes, it does not run on the command), unless

    * ``resumed``: the controller sent its stale hold in between (the plant ran on the hold, and
      this tick is the resumption after it), or
    * the stamps advance more than twice as fast as the messages arrive (``dwall`` <
      dstamp / 2): a driver publishing slower than its clock says nothing about held commands;
    * the step is shorter than LATE_PERIODS periods (the next state on time);

    then one ``period_s``. A lockstep plant waits for each command, so its stamps step one
    period per exchange however slow the exchange: it never looks late."""
    if not resumed and dstamp >= LATE_PERIODS * period_s * (1.0 - 1e-6) and dwall >= 0.5 * dstamp:
        return min(dstamp, timeout_s)
    return period_s


def unfollowed_time(dstamp: float, dwall: float, timeout_s: float) -> float:
    """The part (s) of a gap of ``dstamp`` between two accepted states in which the arm did not
    follow the reference: beyond the robot's command watchdog ``timeout_s`` it braked (or, past
    the stale timeout, held the controller's gravity hold). The controller pauses its reference
    clock by this much (:meth:`~dynlearn_ros.core.control.ComputedTorqueController.pause_reference`)
    so the arm is not asked to catch up a reference that ran on without it. 0 when the stamps
    run more than twice as fast as the messages (a slow driver, see :func:`held_delay`)."""
    if dwall >= 0.5 * dstamp and dstamp > timeout_s:
        return dstamp - timeout_s
    return 0.0


class AppliedCommandMatch:
    """Lateness the stamps do not show: which of the controller's recent commands the plant ran.

    In realtime a state arrives every period with stamps one period apart even when the command
    answering it missed the plant's next deadline: the plant then ran one more period on the
    previous command, and the stamps cannot tell. ``sim_bridge`` (like a driver that echoes its
    commanded torque) fills each state's ``effort`` with the clamped command applied during the
    step that led to it. Commands travel as float64 and are applied unchanged within the torque
    limits, so the effort equals, bit for bit, the command the plant ran:

    * the newest command (answering the previous state): on time, one period (``None`` is
      returned for "nothing to add": the stamp rule stands);
    * the command j places older: the newest one(s) missed their deadline and the plant ran
      the matched one for j + 1 periods (j periods late plus its own): a hold of (j + 1) T, the
      same quantity :func:`held_delay` reads from a stamp gap, for :class:`LatenessScale`;
    * none (a measured effort of a real driver, the bridge's brakes, a clamped command): no
      information, ``None``.

    Lockstep waits for each command, so its effort is always the newest one: the law is not
    touched there (the vgain figures do not move). Bitwise comparison of the raw float64 bytes:
    one bytes comparison (~0.1 us) on the common, on-time path."""

    def __init__(self, depth: int = 4) -> None:
        if depth < 2:
            raise ValueError(f"depth must be >= 2, got {depth}")
        self.depth = int(depth)
        self._sent: list[bytes] = []   # newest first: the raw float64 bytes of the published commands
        self.late = 0                  # states whose effort matched an older command than the newest

    def reset(self) -> None:
        """Forget the commands sent (a new start, a reset after a stop)."""
        self._sent.clear()

    def record(self, tau) -> None:
        """Note a published command ``tau`` ((n,) N*m: an ndarray or array.array('d'));
        a re-sent copy of the newest one is not a new command."""
        self.record_bytes(tau.tobytes())

    def record_bytes(self, values: bytes) -> None:
        """:meth:`record` for a command already as its raw float64 bytes (n * 8)."""
        sent = self._sent
        if sent and sent[0] == values:
            return
        sent.insert(0, values)
        del sent[self.depth:]

    def held_delay(self, effort, period_s: float) -> float | None:
        """The hold (s) the state with ``effort`` ((n,) N*m, ndarray or array.array('d'))
        shows: (j + 1) * period_s when it matches the command j >= 1 places older than the
        newest; None when it matches the newest (on time) or none of them (no information)."""
        sent = self._sent
        if not sent:
            return None
        e = effort.tobytes()
        if e == sent[0]:
            return None
        for j in range(1, len(sent)):
            if e == sent[j]:
                self.late += 1
                return (j + 1) * period_s
        return None
