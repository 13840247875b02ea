"""Joint-velocity monitoring of the simulated robot, as a real arm's safety controller has it
(Franka's joint-velocity reflex, KUKA's axis velocity monitoring): a joint that reaches a
fraction of its velocity limit, or would in the next step at its present acceleration, stops
the arm. The sim bridge brakes on a trip (docs/safety.md, "Velocity stop"). No ROS imports."""

from __future__ import annotations

import numpy as np


class VelocityMonitor:
    """Trips when, for some joint j, max(|qd_j|, |2 qd_j - qd_prev_j|) >= fraction * limit_j.

    ``2 qd - qd_prev`` is the next step's velocity at the present step's acceleration: a light
    wrist joint under a held wrong torque gains 0.07 rad/s per 1 ms step (measured, CPU-hog
    row), so a check of the present velocity alone would see the limit one step late.

    limits: (n,) rad/s > 0 (the robot's velocity limits); fraction in (0, 1]."""

    def __init__(self, limits: np.ndarray, fraction: float) -> None:
        lim = np.asarray(limits, dtype=np.float64)
        if lim.ndim != 1 or not np.all(np.isfinite(lim)) or np.any(lim <= 0):
            raise ValueError(f"velocity limits must be finite and > 0 rad/s, got {lim.tolist()}")
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        self.bound = fraction * lim  # (n,) rad/s
        self._prev = np.zeros(lim.shape[0])
        self._primed = False  # the first check has no previous velocity: |qd| alone
        self._pred = np.zeros(lim.shape[0])
        self.trips = 0  # checks that tripped
        self.last_joint = -1  # index of the joint with the largest ratio at the last trip

    def check(self, qd: np.ndarray) -> bool:
        """Feed the velocity (n,) rad/s after a step; True when it or its one-step extrapolation
        reaches the bound. No allocation."""
        pred = self._pred
        if self._primed:
            np.multiply(qd, 2.0, out=pred)
            pred -= self._prev
            np.abs(pred, out=pred)
        else:
            pred.fill(0.0)
            self._primed = True
        self._prev[:] = qd
        np.maximum(pred, np.abs(qd), out=pred)
        pred /= self.bound
        j = int(np.argmax(pred))
        if pred[j] >= 1.0:
            self.trips += 1
            self.last_joint = j
            return True
        return False

    def reset(self, qd: np.ndarray) -> None:
        """Forget the acceleration (after a jump of the state, e.g. a reset): qd (n,) rad/s."""
        self._prev[:] = qd
        self._primed = True
