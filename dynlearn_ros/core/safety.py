"""Input checks between the wire and the control law (numpy only).

``JointStateMapper`` turns a JointState's (name, position, velocity) into the controller's joint
order through a name index built once per distinct name ordering, and rejects what must never
reach the control law. ``clamp_torque`` bounds the command and ``rate_limit`` its rate of change
(a real robot's torque-rate limit, e.g. Franka's 1000 N*m/s). Each rejection has a reason code
the node counts and logs (throttled).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

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
        self._buf_q = np.zeros(self.n)
        self._buf_qd = np.zeros(self.n)
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
        if not (np.isfinite(self._buf_q).all() and np.isfinite(self._buf_qd).all()):
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
