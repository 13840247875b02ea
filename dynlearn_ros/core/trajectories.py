"""Joint-space references: q_d(t), qd_d(t), qdd_d(t), each (n,) in rad, rad/s, rad/s^2.

All references fill caller-owned arrays (``sample(t, q, qd, qdd)``) so the control tick does not
allocate. ``t`` is seconds since the reference started.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence

import numpy as np

#: |omega| (rad/s) from which SineReference.sample takes its short path after the ramp (a sine
#: slower than one cycle in ~100 min keeps the full formula; see SineReference.__init__)
MIN_FAST_OMEGA = 1e-3


def min_jerk(tau: float) -> tuple[float, float, float]:
    """Min-jerk blend s(tau) = 10 tau^3 - 15 tau^4 + 6 tau^5 on [0, 1] and its first and second
    derivatives with respect to tau; tau outside [0, 1] is clipped (s = 0 or 1, derivatives 0)."""
    if tau <= 0.0:
        return 0.0, 0.0, 0.0
    if tau >= 1.0:
        return 1.0, 0.0, 0.0
    t2 = tau * tau
    t3 = t2 * tau
    return (
        t3 * (10.0 - 15.0 * tau + 6.0 * t2),
        30.0 * t2 * (1.0 - 2.0 * tau + t2),
        60.0 * tau * (1.0 - 3.0 * tau + 2.0 * t2),
    )


class Reference(abc.ABC):
    """A joint-space reference trajectory of ``n`` joints."""

    n: int

    @abc.abstractmethod
    def sample(self, t: float, q: np.ndarray, qd: np.ndarray, qdd: np.ndarray) -> None:
        """Fill q, qd, qdd (n,) with the reference at time t (s)."""


class HoldReference(Reference):
    """Hold a fixed configuration q0 (n,) rad."""

    def __init__(self, q0: np.ndarray) -> None:
        self.q0 = np.asarray(q0, dtype=np.float64).copy()
        self.n = self.q0.size

    def sample(self, t: float, q: np.ndarray, qd: np.ndarray, qdd: np.ndarray) -> None:
        q[:] = self.q0
        qd.fill(0.0)
        qdd.fill(0.0)


class SineReference(Reference):
    """q_d = center + A * s(t / ramp_s) * sin(2 pi f t + phase), per joint.

    The amplitude is faded in over ``ramp_s`` seconds with the min-jerk blend s, so the reference
    starts at rest at ``center`` (the robot's start pose) and its acceleration is continuous.

    center (n,) rad, amplitude (n,) rad, freq_hz (n,) Hz, phase (n,) rad, ramp_s >= 0 s.
    """

    def __init__(self, center: np.ndarray, amplitude: np.ndarray, freq_hz: np.ndarray,
                 phase: np.ndarray | float = 0.0, ramp_s: float = 1.0) -> None:
        self.center = np.asarray(center, dtype=np.float64).copy()
        self.n = self.center.size
        shape = (self.n,)
        self.amplitude = np.broadcast_to(np.asarray(amplitude, dtype=np.float64), shape).copy()
        self.omega = 2.0 * np.pi * np.broadcast_to(np.asarray(freq_hz, dtype=np.float64), shape)
        self.phase = np.broadcast_to(np.asarray(phase, dtype=np.float64), shape).copy()
        if ramp_s < 0:
            raise ValueError(f"ramp_s must be >= 0, got {ramp_s}")
        self.ramp_s = float(ramp_s)
        self._s = np.zeros(self.n)
        self._c = np.zeros(self.n)
        # after the ramp (s = 1, s' = s'' = 0) the terms with s', s'' are signed zeros, and adding
        # a zero to a non-zero value returns that value exactly: sample() then computes only the
        # non-zero terms, with the same floating-point operations in the same order (bit for bit,
        # test_trajectories). That holds when no term is zero: phase 0 (w t + 0 = w t) and every
        # |omega| >= MIN_FAST_OMEGA, so for t > 0 neither w t, sin(w t), cos(w t) nor their
        # products with w are 0 (sin / cos of a non-zero double never are); else the full formula
        self._neg_w2 = -(self.omega * self.omega)
        self._fast = bool(np.all(self.phase == 0.0) and np.all(np.abs(self.omega) >= MIN_FAST_OMEGA))

    def sample(self, t: float, q: np.ndarray, qd: np.ndarray, qdd: np.ndarray) -> None:
        sn, cs, w, a = self._s, self._c, self.omega, self.amplitude
        if self._fast and self.ramp_s <= t < math.inf and t > 0.0:
            np.multiply(w, t, out=sn)
            np.cos(sn, out=cs)
            np.sin(sn, out=sn)
            np.multiply(sn, a, out=q)       # c + A sin
            q += self.center
            np.multiply(w, cs, out=qd)      # A w cos
            qd *= a
            np.multiply(self._neg_w2, sn, out=qdd)   # -A w^2 sin
            qdd *= a
            return
        if self.ramp_s > 0:
            s, ds, dds = min_jerk(t / self.ramp_s)
            ds /= self.ramp_s
            dds /= self.ramp_s * self.ramp_s
        else:
            s, ds, dds = 1.0, 0.0, 0.0
        np.multiply(w, t, out=sn)
        sn += self.phase
        np.cos(sn, out=cs)
        np.sin(sn, out=sn)
        # q = c + A s sin
        np.multiply(sn, a * s, out=q)
        q += self.center
        # qd = A (s' sin + s w cos)
        np.multiply(sn, ds, out=qd)
        qd += s * w * cs
        qd *= a
        # qdd = A (s'' sin + 2 s' w cos - s w^2 sin)
        np.multiply(sn, dds, out=qdd)
        qdd += 2.0 * ds * w * cs
        qdd -= s * w * w * sn
        qdd *= a


class WaypointReference(Reference):
    """Point-to-point min-jerk moves through joint-space waypoints (pick-and-place style).

    waypoints (m, n) rad, visited in order from waypoints[0]; each move lasts ``move_s`` seconds
    and is followed by ``dwell_s`` seconds at rest. With ``loop`` the sequence restarts at
    waypoints[0] (a move back is appended), otherwise the last waypoint is held.
    """

    def __init__(self, waypoints: np.ndarray, move_s: float = 2.0, dwell_s: float = 0.5,
                 loop: bool = True) -> None:
        wp = np.atleast_2d(np.asarray(waypoints, dtype=np.float64))
        if wp.shape[0] < 2:
            raise ValueError("need at least 2 waypoints")
        if move_s <= 0 or dwell_s < 0:
            raise ValueError(f"move_s must be > 0 and dwell_s >= 0 (got {move_s}, {dwell_s})")
        if loop:
            wp = np.vstack([wp, wp[:1]])
        self.wp = wp
        self.n = wp.shape[1]
        self.move_s, self.dwell_s, self.loop = float(move_s), float(dwell_s), loop
        self.segment_s = self.move_s + self.dwell_s
        self.n_moves = wp.shape[0] - 1
        self._delta = np.diff(wp, axis=0)

    def sample(self, t: float, q: np.ndarray, qd: np.ndarray, qdd: np.ndarray) -> None:
        t = max(t, 0.0)
        period = self.n_moves * self.segment_s
        if self.loop:
            t = t % period
        elif t >= period:
            q[:] = self.wp[-1]
            qd.fill(0.0)
            qdd.fill(0.0)
            return
        k = min(int(t // self.segment_s), self.n_moves - 1)
        s, ds, dds = min_jerk((t - k * self.segment_s) / self.move_s)
        d = self._delta[k]
        np.multiply(d, s, out=q)
        q += self.wp[k]
        np.multiply(d, ds / self.move_s, out=qd)
        np.multiply(d, dds / (self.move_s * self.move_s), out=qdd)


class SplineReference(Reference):
    """Piecewise cubic Hermite through timed points (a trajectory_msgs/JointTrajectory).

    times (m,) s strictly increasing, positions (m, n) rad, velocities (m, n) rad/s or None.
    Missing velocities are estimated by central differences (zero at both ends), so the curve is
    C1 and the acceleration is piecewise linear. Before times[0] the first point is held, after
    times[-1] the last. To start from the current reference, pass it as the first point at t=0.
    """

    def __init__(self, times: Sequence[float], positions: np.ndarray,
                 velocities: np.ndarray | None = None) -> None:
        t = np.asarray(times, dtype=np.float64).reshape(-1)
        p = np.atleast_2d(np.asarray(positions, dtype=np.float64))
        if p.shape[0] != t.size or t.size < 1:
            raise ValueError(f"{t.size} times for {p.shape[0]} points")
        if np.any(np.diff(t) <= 0):
            raise ValueError("trajectory times must be strictly increasing")
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(p))):
            raise ValueError("trajectory contains non-finite times or positions")
        if velocities is None:
            v = np.zeros_like(p)
            if t.size > 2:
                v[1:-1] = (p[2:] - p[:-2]) / (t[2:] - t[:-2])[:, None]
        else:
            v = np.atleast_2d(np.asarray(velocities, dtype=np.float64))
            if v.shape != p.shape or not np.all(np.isfinite(v)):
                raise ValueError(f"velocities must be finite with shape {p.shape}, got {v.shape}")
        self.t, self.p, self.v = t, p, v
        self.n = p.shape[1]

    @property
    def duration(self) -> float:
        return float(self.t[-1])

    def sample(self, t: float, q: np.ndarray, qd: np.ndarray, qdd: np.ndarray) -> None:
        if t <= self.t[0] or t >= self.t[-1]:
            q[:] = self.p[0] if t <= self.t[0] else self.p[-1]
            qd.fill(0.0)
            qdd.fill(0.0)
            return
        k = int(np.searchsorted(self.t, t, side="right")) - 1
        h = self.t[k + 1] - self.t[k]
        s = (t - self.t[k]) / h
        p0, p1, m0, m1 = self.p[k], self.p[k + 1], self.v[k] * h, self.v[k + 1] * h
        s2, s3 = s * s, s * s * s
        # cubic Hermite basis and derivatives (w.r.t. s)
        h00, h10, h01, h11 = 2 * s3 - 3 * s2 + 1, s3 - 2 * s2 + s, -2 * s3 + 3 * s2, s3 - s2
        d00, d10, d01, d11 = 6 * s2 - 6 * s, 3 * s2 - 4 * s + 1, -6 * s2 + 6 * s, 3 * s2 - 2 * s
        e00, e10, e01, e11 = 12 * s - 6, 6 * s - 4, -12 * s + 6, 6 * s - 2
        np.multiply(p0, h00, out=q)
        q += h10 * m0 + h01 * p1 + h11 * m1
        np.multiply(p0, d00 / h, out=qd)
        qd += (d10 * m0 + d01 * p1 + d11 * m1) / h
        np.multiply(p0, e00 / (h * h), out=qdd)
        qdd += (e10 * m0 + e01 * p1 + e11 * m1) / (h * h)


def pick_place_waypoints(home: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Default pick-and-place waypoints (4, n) rad: above pick, at pick, above place, at place, as
    offsets from ``home`` on the base (+-0.6 rad), shoulder and elbow, kept 0.1 rad inside the
    joint limits ``lower``/``upper``."""
    offsets = np.zeros((4, home.size))
    offsets[:, 0] = [0.6, 0.6, -0.6, -0.6]
    offsets[:, 1] = [0.25, 0.4, 0.25, 0.4]
    offsets[:, 3] = [0.2, 0.35, 0.2, 0.35]
    return np.clip(home + offsets, lower + 0.1, upper - 0.1)


#: how far inside the joint limits (rad) a built-in reference is kept: room for the following
#: error of a stiff controller (well under 0.05 rad at K_max) before the joint meets its stop
REFERENCE_MARGIN = 0.05


def fit_to_limits(ref: Reference, lower: np.ndarray, upper: np.ndarray,
                  margin: float = REFERENCE_MARGIN) -> tuple[Reference, list[str]]:
    """A built-in reference kept inside [lower + margin, upper - margin] (n,) rad.

    Policy (docs/safety.md): a built-in reference is *clipped* (the user asked for a motion
    shape; its amplitude is reduced where it would reach a stop): a sine's amplitude per joint
    to the room on the nearer side of its centre, waypoints and a hold position to the band.
    Returns the reference (the same object when nothing changed) and a list of what changed,
    one string per joint, for the log."""
    lo, hi = np.asarray(lower, dtype=np.float64) + margin, np.asarray(upper, dtype=np.float64) - margin
    notes: list[str] = []
    if isinstance(ref, SineReference):
        room = np.maximum(np.minimum(hi - ref.center, ref.center - lo), 0.0)
        over = ref.amplitude > room
        if over.any():
            for j in np.flatnonzero(over):
                notes.append(f"joint {j}: sine amplitude {ref.amplitude[j]:.3f} -> {room[j]:.3f} rad")
            ref.amplitude = np.minimum(ref.amplitude, room)
    elif isinstance(ref, WaypointReference):
        clipped = np.clip(ref.wp, lo, hi)
        if not np.array_equal(clipped, ref.wp):
            for j in np.flatnonzero((clipped != ref.wp).any(axis=0)):
                notes.append(f"joint {j}: waypoints clipped to [{lo[j]:.3f}, {hi[j]:.3f}] rad")
            ref = WaypointReference(clipped[:-1] if ref.loop else clipped, ref.move_s, ref.dwell_s, ref.loop)
    elif isinstance(ref, HoldReference):
        clipped = np.clip(ref.q0, lo, hi)
        if not np.array_equal(clipped, ref.q0):
            notes.append(f"hold position clipped to the limits: {np.round(clipped, 3).tolist()}")
            ref = HoldReference(clipped)
    return ref, notes


class TrajectoryError(ValueError):
    """A reference trajectory that is refused; the message says why."""


def check_trajectory(msg_names: Sequence[str], joint_names: Sequence[str], times: np.ndarray,
                     positions: np.ndarray, velocities: np.ndarray | None, lower: np.ndarray,
                     upper: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Check a JointTrajectory's content and reorder it to ``joint_names``.

    times (m,) s from its start; positions / velocities (m, k) in ``msg_names`` order (k names).
    Returns (times, positions (m, n), velocities (m, n) or None) in ``joint_names`` order.

    Policy (docs/safety.md): a trajectory is *refused* (TrajectoryError), never clipped, when
    it has no points, misses a joint, has non-finite values or non-increasing times, or has a
    point outside the joint limits [lower, upper] (n,) rad: a sender asking for an unreachable
    point has a bug that clipping would hide, and the shape of a clipped path is not what was
    planned."""
    if times.size == 0:
        raise TrajectoryError("no points")
    names = list(msg_names)
    missing = [j for j in joint_names if j not in names]
    if missing:
        raise TrajectoryError(f"joints {missing} missing from joint_names {names}")
    if len(set(names)) != len(names):
        raise TrajectoryError(f"duplicate joint names {names}")
    order = np.array([names.index(j) for j in joint_names])
    if positions.shape != (times.size, len(names)):
        raise TrajectoryError(f"positions must have {len(names)} values per point")
    pos = positions[:, order]
    vel = None if velocities is None else velocities[:, order]
    if not (np.isfinite(times).all() and np.isfinite(pos).all() and (vel is None or np.isfinite(vel).all())):
        raise TrajectoryError("non-finite times, positions or velocities")
    if times[0] <= 0.0 or np.any(np.diff(times) <= 0.0):
        raise TrajectoryError("time_from_start must be > 0 and strictly increasing")
    lo, hi = np.asarray(lower), np.asarray(upper)
    bad = (pos < lo) | (pos > hi)
    if bad.any():
        k, j = np.argwhere(bad)[0]
        raise TrajectoryError(f"point {k}: joint {joint_names[j]} = {pos[k, j]:.4g} rad is outside its limits "
                              f"[{lo[j]:.4g}, {hi[j]:.4g}] ({int(bad.any(axis=1).sum())} points outside)")
    return times, pos, vel


def interior_velocities(times: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Central-difference velocities (m, n) rad/s of points (times (m,), positions (m, n)), zero
    at the last point; the first row is left 0 for :class:`PrefixedSpline` to fill."""
    v = np.zeros_like(positions)
    if times.size > 2:
        v[1:-1] = (positions[2:] - positions[:-2]) / (times[2:] - times[:-2])[:, None]
    return v


class PrefixedSpline(Reference):
    """A spline ``body`` (built and checked off the control path, its first time > 0) preceded
    by the segment from the state (q0, qd0) (n,) at t = 0 to the body's first point: the same
    curve as :class:`SplineReference` through (0, q0, qd0) and the body's points, built in O(n)
    so it can be swapped in between two ticks whatever the body's size.

    ``estimated``: the body's velocities are central differences (:func:`interior_velocities`);
    its first one, which needs q0, is set here (in ``body``, which this object then owns)."""

    def __init__(self, q0: np.ndarray, qd0: np.ndarray, body: SplineReference, estimated: bool) -> None:
        q0 = np.asarray(q0, dtype=np.float64)
        t = body.t
        if estimated:
            body.v[0] = (body.p[1] - q0) / t[1] if t.size > 1 else 0.0
            qd0 = np.zeros_like(q0)
        self.body = body
        self.head = SplineReference([0.0, t[0]], np.vstack([q0, body.p[0]]), np.vstack([qd0, body.v[0]]))
        self.t1 = float(t[0])
        self.n = body.n

    @property
    def duration(self) -> float:
        return self.body.duration

    def sample(self, t: float, q: np.ndarray, qd: np.ndarray, qdd: np.ndarray) -> None:
        (self.head if t < self.t1 else self.body).sample(t, q, qd, qdd)
