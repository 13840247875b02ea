"""The ik node's domain object: validate a target, solve it, or refuse with a reason (no ROS).

:class:`IKPlanner` turns an end-effector pose (position m, quaternion x y z w, base frame) with a
9-component mask, or a full pose-chain target with NaN = "don't care", into joint angles from
``starts`` starts: the current configuration, the home pose, then seeded random ones
(multistart.py: the learned solver runs them as one batch, DLS one after the other). It refuses, with a message and
without a solution, targets that are non-finite, have a degenerate quaternion, lie beyond the
arm's reach from its shoulder, or that no attempt solves within tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dynlearn_ros.learning.ik.chain import POSE_DIM, Chain
from dynlearn_ros.learning.ik.multistart import solve_multistart, start_configs
from dynlearn_ros.learning.ik.problem import IKProblem, IKResult

REACH_MARGIN = 1.02  # targets further than this x the reach from the shoulder are refused at once


class Refused(ValueError):
    """A target the planner will not act on; the message says why."""


def quat_to_matrix(qx: float, qy: float, qz: float, qw: float) -> np.ndarray:
    """Unit quaternion (x, y, z, w) -> (3, 3) rotation; raises Refused for a degenerate one."""
    v = np.array([qx, qy, qz, qw], dtype=np.float64)
    norm = float(np.linalg.norm(v))
    if not math.isfinite(norm) or norm < 1e-6:
        raise Refused(f"orientation quaternion {v.tolist()} has norm {norm:.3g}: not a rotation")
    x, y, z, w = v / norm
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


@dataclass
class Plan:
    q: np.ndarray
    result: IKResult
    start: str  # "current", "home" or "random k"


class IKPlanner:
    """Holds one solver (LearnedIK or DLSIK) for ``chain``; ``solve_*`` return a :class:`Plan`.
    ``starts``: starts per target (current, home, then random ones with ``start_seed``)."""

    def __init__(self, chain: Chain, solver, pos_tol_m: float, rot_tol_deg: float, starts: int = 2,
                 start_seed: int = 0) -> None:
        self.chain, self.solver = chain, solver
        self.pos_tol_m, self.rot_tol_deg = pos_tol_m, rot_tol_deg
        self.starts, self.start_seed = starts, start_seed

    def ee_problem(self, position, quat, mask: np.ndarray) -> IKProblem:
        """position (3,) m, quat (4,) x y z w, mask (9,) 0/1 -> IKProblem (or Refused)."""
        p = np.asarray(position, dtype=np.float64)
        q = np.asarray(quat, dtype=np.float64)
        if not (np.all(np.isfinite(p)) and np.all(np.isfinite(q))):
            raise Refused(f"non-finite target pose (position {p.tolist()}, orientation {q.tolist()})")
        rot = quat_to_matrix(*q) if np.any(mask[3:] > 0) else None
        problem = IKProblem.end_effector(self.chain.n, p, rot, mask, pos_tol_m=self.pos_tol_m,
                                         rot_tol_deg=self.rot_tol_deg)
        if mask[:3].all():
            self._check_reach(p, self.chain.n - 1)
        return problem

    def chain_problem(self, values: np.ndarray) -> IKProblem:
        """values (n, 9) pose-chain targets, NaN = don't care -> IKProblem (or Refused)."""
        v = np.asarray(values, dtype=np.float64)
        if v.shape != (self.chain.n, POSE_DIM):
            raise Refused(f"chain target must be {self.chain.n} x {POSE_DIM} values, got {v.size}")
        if np.any(np.isinf(v)):
            raise Refused("chain target contains inf (use NaN for 'don't care')")
        weight = np.isfinite(v).astype(np.float64)
        if not weight.any():
            raise Refused("chain target is all NaN: nothing constrained")
        for k in range(self.chain.n):
            for sl in (slice(3, 6), slice(6, 9)):
                if weight[k, sl].all() and abs(np.linalg.norm(v[k, sl]) - 1.0) > 1e-3:
                    raise Refused(f"element {k + 1}: axis {v[k, sl].tolist()} is not a unit vector")
            if weight[k, :3].all():
                self._check_reach(v[k, :3], k)
        try:
            return IKProblem(np.nan_to_num(v), weight, pos_tol_m=self.pos_tol_m, rot_tol_deg=self.rot_tol_deg)
        except ValueError as exc:
            raise Refused(str(exc)) from exc

    def _check_reach(self, p: np.ndarray, k: int) -> None:
        c = self.chain
        reach = c.scale if k == c.n - 1 else float(np.sum(np.linalg.norm(c.geometry[1:k + 1, 3:], axis=1)))
        d = float(np.linalg.norm(p - c.shoulder))
        if d > REACH_MARGIN * reach + self.pos_tol_m:
            raise Refused(f"unreachable: element {k + 1} target is {d:.3f} m from the shoulder, the "
                          f"chain reaches {reach:.3f} m")

    def solve(self, problem: IKProblem, q_current: np.ndarray | None) -> Plan:
        """Solve from every start, keep the best true result; Refused when none meets the
        tolerances."""
        starts = start_configs(self.chain, q_current, self.starts, seed=self.start_seed)
        labels = (["current"] if q_current is not None else []) + ["home"]
        labels += [f"random {k + 1}" for k in range(len(starts) - len(labels))]
        r = solve_multistart(self.solver, starts, [problem])[0]
        if r.success:
            return Plan(r.q, r, labels[r.start])
        raise Refused(f"unreachable or not solved: best {1e3 * r.pos_err_m:.1f} mm / {r.rot_err_deg:.2f} deg "
                      f"(tolerance {1e3 * problem.pos_tol_m:.1f} mm / {problem.rot_tol_deg:.2f} deg, "
                      f"{len(starts)} starts)")
