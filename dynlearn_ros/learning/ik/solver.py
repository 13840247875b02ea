"""Learned IK: momentum gradient descent on the joint angles through the frozen pose-chain model.

With the masked, weighted loss over the predicted pose chain f(q) (n, 9),

    L(q) = sum_k,c  w_kc ((f_kc(q) - t_kc) / u_c)^2,   u = pos_unit (m) for positions, 1 for axes,

each iteration back-propagates through the LSTM (BPTT over the joint sequence) and steps

    v <- mu v + dL/dq,   dq = clamp(-lr v, +-max_step),   q <- clip(q + dq, lower, upper).

The learning rate adapts: x1.1 after a step that lowered L, x0.5 (and v reset) after one that
did not (the step is then undone). Stopping rule: the predicted errors are within
``inner_slack`` x the tolerances, or ``patience`` iterations without a 1e-4 relative improvement,
or ``max_iter``.

Target correction (when the true forward kinematics is known, here Pinocchio in simulation):
after a solve, the bias b = f(q) - f_true(q) of the model at the solution is added to the
targets the network is asked for (t' = t + b) and the solve restarts from q; up to
``corrections`` rounds, stopping as soon as the *true* pose is within tolerance. It removes the
model's local error, which is nearly constant over the small distance between rounds.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from dynlearn_ros.learning.ik.chain import Chain
from dynlearn_ros.learning.ik.model import PoseChainLSTM
from dynlearn_ros.learning.ik.problem import IKProblem, IKResult


class LearnedIK:
    """Gradient-descent IK through ``model``; ``chain`` gives limits and the true FK."""

    name = "learned"

    def __init__(self, model: PoseChainLSTM, chain: Chain, *, lr: float = 0.02, momentum: float = 0.8,
                 max_step: float = 0.1, max_iter: int = 300, patience: int = 25, pos_unit: float = 0.1,
                 inner_slack: float = 0.3, corrections: int = 0) -> None:
        if model.n != chain.n:
            raise ValueError(f"model has {model.n} steps, chain {chain.name} {chain.n} DoF")
        self.model, self.chain = model, chain
        self.lr, self.momentum, self.max_step, self.max_iter = lr, momentum, max_step, max_iter
        self.patience, self.pos_unit, self.inner_slack, self.corrections = patience, pos_unit, inner_slack, corrections
        for p in model.parameters():
            p.requires_grad_(False)
        unit = np.ones(9)
        unit[:3] = pos_unit
        self._unit = torch.tensor(unit, dtype=torch.float32)
        self._lo = torch.as_tensor(chain.lower, dtype=torch.float32)
        self._hi = torch.as_tensor(chain.upper, dtype=torch.float32)

    def predict(self, q: np.ndarray) -> np.ndarray:
        """The model's pose chain (n, 9) at q (n,)."""
        with torch.no_grad():
            return self.model(torch.as_tensor(q, dtype=torch.float32)[None])[0].double().numpy()

    def _descend(self, q0: np.ndarray, target: np.ndarray, problem: IKProblem) -> tuple[np.ndarray, int]:
        w = torch.as_tensor(problem.weight, dtype=torch.float32)
        t = torch.as_tensor(target, dtype=torch.float32)
        q = torch.as_tensor(q0, dtype=torch.float32).clone()
        v = torch.zeros_like(q)
        lr = self.lr
        best, stall, it = float("inf"), 0, 0

        def loss_grad(qq: torch.Tensor) -> tuple[float, torch.Tensor, np.ndarray]:
            qq = qq.detach().requires_grad_(True)
            pred = self.model(qq[None])[0]
            loss = (w * ((pred - t) / self._unit) ** 2).sum()
            (g,) = torch.autograd.grad(loss, qq)
            return float(loss.detach()), g, pred.detach().double().numpy()

        loss, g, pred = loss_grad(q)
        for it in range(1, self.max_iter + 1):
            # within tolerance on the (corrected) target, in the model's own prediction
            shifted = IKProblem(target, problem.weight, problem.pos_tol_m, problem.rot_tol_deg)
            if shifted.satisfied(pred, self.inner_slack):
                return q.numpy().astype(np.float64), it - 1
            v = self.momentum * v + g
            step = torch.clamp(-lr * v, -self.max_step, self.max_step)
            q_new = torch.minimum(torch.maximum(q + step, self._lo), self._hi)
            new_loss, new_g, new_pred = loss_grad(q_new)
            if new_loss < loss:
                q, loss, g, pred = q_new, new_loss, new_g, new_pred
                lr *= 1.1
            else:
                lr *= 0.5
                v.zero_()
            if loss < best * (1 - 1e-4):
                best, stall = loss, 0
            else:
                stall += 1
                if stall >= self.patience:
                    break
        return q.numpy().astype(np.float64), it

    def solve(self, q0: np.ndarray, problem: IKProblem, correct: bool | None = None) -> IKResult:
        """Solve from q0 (n,) rad; ``correct``: use target correction (default: corrections > 0)."""
        t0 = time.perf_counter()
        rounds = self.corrections if correct is None else (self.corrections or 3) if correct else 0
        c = self.chain
        q = np.clip(np.asarray(q0, dtype=np.float64), c.lower, c.upper)
        target = problem.target.copy()
        iters, used = 0, 0
        best_q, best_err = q, np.inf
        for r in range(rounds + 1):
            q, n_it = self._descend(q, target, problem)
            iters += n_it
            true = c.fk(q)
            pos, rot = problem.errors(true)
            score = pos / problem.pos_tol_m + rot / problem.rot_tol_deg
            if score < best_err:
                best_q, best_err = q.copy(), score
            if pos <= problem.pos_tol_m and rot <= problem.rot_tol_deg:
                break
            if r < rounds:
                used += 1
                target = target + (self.predict(q) - true) * (problem.weight > 0)
        pos, rot = problem.errors(c.fk(best_q))
        ok = pos <= problem.pos_tol_m and rot <= problem.rot_tol_deg
        return IKResult(best_q, ok, pos, rot, iters, time.perf_counter() - t0, used,
                        "converged" if ok else "tolerance not reached")
