"""Baseline: Pinocchio's Jacobian, damped least squares, on the same masked 9-component residual.

For a constrained element with frame origin p, axes x and z, angular Jacobian J_w and linear J_v
(world-aligned, (3, n) each): dp = J_v dq, dx = w x x = -[x]_x J_w dq, dz = -[z]_x J_w dq. The
rows of the masked components, positions divided by ``pos_unit`` (so 0.1 m weighs like 1 rad),
stacked over the constrained elements (their Jacobians from one O(n) Pinocchio pass,
:meth:`Chain.jacobians`), give J (m, n) and the residual r (m,); each iteration takes

    dq = J^T (J J^T + lambda^2 I)^-1 r,   clamped to +-max_step per joint, q clipped to the limits,

stopping when the errors are within tolerance, when the residual stops shrinking (``patience``
iterations without a 1e-6 relative improvement), or after ``max_iter``.

``jacobian="fd"`` (name ``dls-fd``): the same iteration with J taken by forward differences of
the forward kinematics, as a Jacobian method runs when only a forward model is available:
column i = (f(q + h e_i) - f(q)) / h over the masked components, i.e. n + 1 FK calls per
iteration (f(q) is the one the residual needs anyway). h = 1e-6 rad: the truncation error is
O(h |f''|) ~ 1e-6 relative and the round-off O(eps / h) ~ 1e-10, both far below the 1e-3 a
damped step needs. Pinocchio's analytic Jacobian (the default) stays the baseline.
"""

from __future__ import annotations

import time

import numpy as np

from dynlearn_ros.learning.ik.chain import Chain
from dynlearn_ros.learning.ik.problem import POS, XAXIS, ZAXIS, IKProblem, IKResult


def _skew(v: np.ndarray) -> np.ndarray:
    return np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])


class DLSIK:
    """Damped-least-squares IK on ``chain`` (Pinocchio FK and Jacobians)."""

    name = "dls"

    def __init__(self, chain: Chain, damping: float = 0.05, max_step: float = 0.2, max_iter: int = 300,
                 patience: int = 20, pos_unit: float = 0.1, jacobian: str = "analytic", fd_step: float = 1e-6) -> None:
        if jacobian not in ("analytic", "fd"):
            raise ValueError(f"jacobian must be 'analytic' or 'fd', got {jacobian!r}")
        self.chain, self.damping, self.max_step = chain, damping, max_step
        self.max_iter, self.patience, self.pos_unit = max_iter, patience, pos_unit
        self.jacobian, self.fd_step = jacobian, fd_step
        self.name = "dls" if jacobian == "analytic" else "dls-fd"

    def _system_fd(self, q: np.ndarray, pose: np.ndarray, problem: IKProblem,
                   elements: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """J (m, n) by forward differences of the FK (n more FK calls) and r (m,), both over the
        masked components, positions / pos_unit, times the weights (the rows of :meth:`_system`)."""
        on = problem.weight > 0
        unit = np.where(np.arange(9) < 3, self.pos_unit, 1.0)
        scale = (problem.weight / unit)[on]
        f0 = pose[on]
        jac = np.empty((f0.size, self.chain.n))
        qh = q.copy()
        for i in range(self.chain.n):
            qh[i] = q[i] + self.fd_step
            jac[:, i] = (self.chain.fk(qh, elements=elements)[on] - f0) / self.fd_step
            qh[i] = q[i]
        return jac * scale[:, None], (problem.target[on] - f0) * scale

    def _system(self, q: np.ndarray, pose: np.ndarray, problem: IKProblem) -> tuple[np.ndarray, np.ndarray]:
        rows, res = [], []
        elements = [int(k) for k in np.flatnonzero(problem.constrained)]
        for k, jac in zip(elements, self.chain.jacobians(q, elements), strict=True):
            jv, jw = jac[:3], jac[3:]
            blocks = (jv / self.pos_unit, -_skew(pose[k, XAXIS]) @ jw, -_skew(pose[k, ZAXIS]) @ jw)
            d = problem.target[k] - pose[k]
            d[POS] /= self.pos_unit
            w = problem.weight[k]
            full = np.vstack(blocks)
            on = w > 0
            rows.append(full[on] * w[on, None])
            res.append(d[on] * w[on])
        return np.vstack(rows), np.concatenate(res)

    def solve(self, q0: np.ndarray, problem: IKProblem) -> IKResult:
        """Iterate from q0 (n,) rad; the result's errors are those of the final q."""
        t0 = time.perf_counter()
        c = self.chain
        q = np.clip(np.asarray(q0, dtype=np.float64), c.lower, c.upper)
        elements = [int(k) for k in np.flatnonzero(problem.constrained)]  # the only rows it reads
        best, stall, reason = np.inf, 0, "max_iter"
        it = 0
        for it in range(1, self.max_iter + 1):
            pose = c.fk(q, elements=elements)
            if problem.satisfied(pose):
                reason = "converged"
                it -= 1
                break
            jac, r = (self._system(q, pose, problem) if self.jacobian == "analytic"
                      else self._system_fd(q, pose, problem, elements))
            err = float(r @ r)
            if err < best * (1 - 1e-6):
                best, stall = err, 0
            else:
                stall += 1
                if stall >= self.patience:
                    reason = "stalled"
                    break
            lam2 = self.damping ** 2
            dq = jac.T @ np.linalg.solve(jac @ jac.T + lam2 * np.eye(jac.shape[0]), r)
            q = np.clip(q + np.clip(dq, -self.max_step, self.max_step), c.lower, c.upper)
        pose = c.fk(q)
        pos, rot = problem.errors(pose)
        ok = pos <= problem.pos_tol_m and rot <= problem.rot_tol_deg
        return IKResult(q, ok, pos, rot, it, time.perf_counter() - t0, 0, "converged" if ok else reason)
