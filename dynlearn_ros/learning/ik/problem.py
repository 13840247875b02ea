"""An IK problem: per pose-chain element targets with per-component "don't care" masks (numpy).

``target`` and ``weight`` are (n, 9) in the pose-chain layout of :mod:`.chain`
(``[px py pz | xx xy xz | zx zy zz]``, metres and unit-vector components, base frame). A weight
of 0 marks a component the task leaves free; every solver zeroes its residual. Examples:

* reach a position, any orientation: weight 1 on the last element's px, py, pz only;
* keep the tool axis (z) pointing down, heading (x) free: last element's p and z axis;
* place an intermediate joint: weight on element k's position, the end effector's pose too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from dynlearn_ros.learning.ik.chain import POSE_DIM

POS, XAXIS, ZAXIS = slice(0, 3), slice(3, 6), slice(6, 9)
#: success thresholds of the issue: 5 mm and 2 deg on constrained components
POS_TOL_M, ROT_TOL_DEG = 5e-3, 2.0


@dataclass
class IKProblem:
    target: np.ndarray  # (n, 9)
    weight: np.ndarray  # (n, 9), 0 = don't care
    pos_tol_m: float = POS_TOL_M
    rot_tol_deg: float = ROT_TOL_DEG
    constrained: np.ndarray = field(init=False)  # (n,) bool: elements with any weight

    def __post_init__(self) -> None:
        self.target = np.asarray(self.target, dtype=np.float64)
        self.weight = np.asarray(self.weight, dtype=np.float64)
        if self.target.ndim != 2 or self.target.shape[1] != POSE_DIM or self.weight.shape != self.target.shape:
            raise ValueError(f"target and weight must both be (n, {POSE_DIM}); got "
                             f"{self.target.shape} and {self.weight.shape}")
        if not np.all(np.isfinite(self.weight)) or np.any(self.weight < 0):
            raise ValueError("weights must be finite and >= 0")
        on = self.weight > 0
        if not on.any():
            raise ValueError("every component is masked: nothing to solve for")
        if not np.all(np.isfinite(self.target[on])):
            raise ValueError("non-finite target value on a constrained component")
        self.target = np.where(on, self.target, 0.0)
        self.constrained = on.any(axis=1)

    @classmethod
    def end_effector(cls, n: int, position: np.ndarray, rotation: np.ndarray | None = None,
                     mask: np.ndarray | None = None, **tol) -> IKProblem:
        """EE target: position (3,) m, rotation (3, 3) or None (orientation free); ``mask``
        (9,) overrides the EE element's weights (e.g. only the z axis of the orientation)."""
        target = np.zeros((n, POSE_DIM))
        weight = np.zeros((n, POSE_DIM))
        target[-1, POS] = position
        weight[-1, POS] = 1.0
        if rotation is not None:
            rotation = np.asarray(rotation, dtype=np.float64)
            target[-1, XAXIS], target[-1, ZAXIS] = rotation[:, 0], rotation[:, 2]
            weight[-1, 3:] = 1.0
        if mask is not None:
            weight[-1] = np.asarray(mask, dtype=np.float64)
        return cls(target, weight, **tol)

    @classmethod
    def from_pose_chain(cls, pose_chain: np.ndarray, weight: np.ndarray, **tol) -> IKProblem:
        """Targets taken from a pose chain (n, 9) (e.g. the FK of a known configuration)."""
        return cls(np.array(pose_chain, dtype=np.float64), weight, **tol)

    def errors(self, pose_chain: np.ndarray) -> tuple[float, float]:
        """(position error m, orientation error deg) of a pose chain (n, 9), worst element.

        Position: norm of the constrained position components' differences. Orientation: the
        rotation angle when both axes are fully constrained; else the angle between each fully
        constrained axis and its target; a partly constrained axis counts asin(|component diff|)."""
        d = np.where(self.weight > 0, pose_chain - self.target, 0.0)
        pos = float(np.max(np.linalg.norm(d[:, POS], axis=1)))
        rot = 0.0
        for k in np.flatnonzero(self.constrained):
            w = self.weight[k] > 0
            if w[3:].all():
                rot = max(rot, _frame_angle(pose_chain[k, 3:], self.target[k, 3:]))
                continue
            for sl in (XAXIS, ZAXIS):
                ws = w[sl]
                if ws.all():
                    c = float(np.dot(_unit(pose_chain[k, sl]), _unit(self.target[k, sl])))
                    rot = max(rot, math.acos(max(-1.0, min(1.0, c))))
                elif ws.any():
                    rot = max(rot, math.asin(min(1.0, float(np.max(np.abs(d[k, sl]))))))
        return pos, math.degrees(rot)

    def satisfied(self, pose_chain: np.ndarray, slack: float = 1.0) -> bool:
        pos, rot = self.errors(pose_chain)
        return pos <= slack * self.pos_tol_m and rot <= slack * self.rot_tol_deg


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _frame_angle(a: np.ndarray, b: np.ndarray) -> float:
    def frame(xz):
        x = _unit(xz[:3])
        z = _unit(xz[3:] - np.dot(xz[3:], x) * x)
        return np.column_stack([x, np.cross(z, x), z])

    tr = float(np.trace(frame(a).T @ frame(b)))
    return math.acos(max(-1.0, min(1.0, (tr - 1.0) / 2.0)))


@dataclass
class IKResult:
    """q (n,) rad; errors from the true forward kinematics (Pinocchio): pos m, rot deg."""

    q: np.ndarray
    success: bool
    pos_err_m: float
    rot_err_deg: float
    iterations: int
    solve_s: float
    corrections: int = 0
    reason: str = ""
    start: int = 0  # which start gave this result (multistart.solve_multistart), 0-based

    def as_dict(self) -> dict:
        return {"success": self.success, "pos_err_m": self.pos_err_m, "rot_err_deg": self.rot_err_deg,
                "iterations": self.iterations, "solve_s": self.solve_s, "corrections": self.corrections,
                "reason": self.reason, "start": self.start}
