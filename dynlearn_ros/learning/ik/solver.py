"""Learned IK: momentum gradient descent on the joint angles through the frozen pose-chain model.

With the masked, weighted loss over the predicted pose chain f(q) (n, 9) of one target,

    L(q) = sum_k,c  w_kc ((f_kc(q) - t_kc) / u_c)^2,   u = pos_unit (m) for positions, 1 for axes,

each iteration back-propagates through the LSTM (BPTT over the joint sequence) and steps

    v <- mu v + dL/dq,   dq = clamp(-lr v, +-max_step),   q <- clip(q + dq, lower, upper).

The learning rate adapts per target: x1.1 after a step that lowered L, x0.5 (and v reset) after
one that did not (the step is then undone). Stopping rule per target: the predicted errors are
within ``inner_slack`` x the tolerances, or ``patience`` iterations without a 1e-4 relative
improvement, or ``max_iter``. Many targets are solved as one batch (independent problems: the
gradient of the summed loss is each target's own gradient); a single target is a batch of one.

Target correction (when the true forward kinematics is known, here Pinocchio in simulation):
after a descent, the bias b = f(q) - f_true(q) of the model at the solution is added to the
targets the network is asked for (t' = t + b) and the descent restarts from q; up to
``corrections`` rounds, stopping as soon as the *true* pose is within tolerance. It removes the
model's local error, which changes little over the short distance between rounds.

Polish (``polish`` > 0, needs the true forward kinematics like the correction): Levenberg-
Marquardt steps whose Jacobian is the *model's* (autograd through the LSTM) and whose residual is
the true one, r = t - f_true(q) (masked, positions / ``pos_unit``):

    dq = J_m^T (J_m J_m^T + lambda^2 I)^-1 r,   clamped to +-2 max_step, q clipped to the limits.

``jacobian_every`` = k > 1 (the ``learned-broyden`` variant): the network's Jacobian is taken at
the first step and then only every k steps (a rejected step's secant updates it too); in between it is
refined by Broyden's rank-1 secant update from the true residuals the steps measure anyway,
J <- J + ((r_old - r_new) - J dq) dq^T / |dq|^2 (weighted residual space), so that most steps
cost one true FK instead of a forward and backward pass through the LSTM. The learned Jacobian
is the start of the estimate; the secant moves it towards the true one along the directions
the steps explore.

This is target correction applied at every step, with a Gauss-Newton step through the network
instead of a gradient descent: t' = t + f(q) - f_true(q) makes the model's residual t' - f(q)
equal to the true one. A step that does not lower the true loss is undone and lambda x4; one
that does, lambda x0.5. No Pinocchio Jacobian is used: the true FK only measures the error. It
converges as long as the model's Jacobian is a fair approximation of the true one (the
contraction factor is |I - J_true J_m^+|), which holds far better than the model's absolute
accuracy does.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from dynlearn_ros.learning.ik.chain import Chain
from dynlearn_ros.learning.ik.model import PoseChainLSTM
from dynlearn_ros.learning.ik.problem import IKProblem, IKResult


def broyden_update(jac: np.ndarray, dq: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Broyden's rank-1 ("good") update of Jacobian estimates jac (B, m, n) after steps dq
    (B, n) that changed the function by df (B, m): J + (df - J dq) dq^T / |dq|^2, the closest
    matrix (Frobenius) to J that maps dq to df; J is unchanged along every direction orthogonal
    to dq. A row with a zero step (clipped at a limit) keeps its J."""
    nn2 = (dq ** 2).sum(1)
    ok = nn2 > 1e-20
    upd = (df - (jac @ dq[..., None])[..., 0]) / np.where(ok, nn2, 1.0)[:, None]
    return jac + np.where(ok[:, None, None], upd[:, :, None] * dq[:, None, :], 0.0)


class LearnedIK:
    """Gradient-descent IK through ``model``; ``chain`` gives limits and the true FK."""

    name = "learned"

    def __init__(self, model: PoseChainLSTM, chain: Chain, *, lr: float = 0.02, momentum: float = 0.8,
                 max_step: float = 0.1, max_iter: int = 300, patience: int = 25, pos_unit: float = 0.1,
                 inner_slack: float = 0.3, corrections: int = 0, polish: int = 0, damping: float = 0.05,
                 jacobian_every: int = 1) -> None:
        if model.n != chain.n:
            raise ValueError(f"model has {model.n} steps, chain {chain.name} {chain.n} DoF")
        self.model, self.chain = model, chain
        self.lr, self.momentum, self.max_step, self.max_iter = lr, momentum, max_step, max_iter
        self.patience, self.pos_unit, self.inner_slack, self.corrections = patience, pos_unit, inner_slack, corrections
        self.polish, self.damping = polish, damping
        if jacobian_every < 1:
            raise ValueError(f"jacobian_every must be >= 1, got {jacobian_every}")
        self.jacobian_every = jacobian_every
        for p in model.parameters():
            p.requires_grad_(False)
        unit = np.ones(9)
        unit[:3] = pos_unit
        self._unit = torch.tensor(unit, dtype=torch.float32)
        self._lo = torch.as_tensor(chain.lower, dtype=torch.float32)
        self._hi = torch.as_tensor(chain.upper, dtype=torch.float32)

    def predict(self, q: np.ndarray) -> np.ndarray:
        """The model's pose chains (B, n, 9) at q (B, n) (or (n, 9) at q (n,))."""
        q = np.asarray(q)
        with torch.no_grad():
            out = self.model(torch.as_tensor(np.atleast_2d(q), dtype=torch.float32)).double().numpy()
        return out[0] if q.ndim == 1 else out

    def _inner_done(self, pred: torch.Tensor, t: torch.Tensor, w: torch.Tensor, tol: torch.Tensor) -> torch.Tensor:
        """(B,) bool: predicted position errors <= slack * pos tol and axis angles (2 asin(|d|/2)
        of each masked axis difference) <= slack * rot tol, for every constrained element."""
        d = torch.where(w > 0, pred - t, torch.zeros_like(pred))
        pos = d[..., :3].norm(dim=-1).amax(dim=-1)
        ang = torch.stack([d[..., 3:6].norm(dim=-1), d[..., 6:9].norm(dim=-1)], -1).amax(dim=(-1, -2))
        ang = 2 * torch.asin(torch.clamp(ang / 2, max=1.0))
        return (pos <= self.inner_slack * tol[:, 0]) & (ang <= self.inner_slack * tol[:, 1])

    def _descend(self, q0: np.ndarray, target: np.ndarray, weight: np.ndarray, tol: np.ndarray,
                 active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Descend the active rows of q0 (B, n); returns q (B, n) and iterations (B,)."""
        if self.max_iter == 0:  # learned-gn: no descent, and no forward/backward pass spent on it
            return q0.copy(), np.zeros(q0.shape[0], dtype=int)
        idx = np.flatnonzero(active)
        q = torch.as_tensor(q0[idx], dtype=torch.float32).clone()
        t = torch.as_tensor(target[idx], dtype=torch.float32)
        w = torch.as_tensor(weight[idx], dtype=torch.float32)
        tol_t = torch.as_tensor(tol[idx], dtype=torch.float32)
        b = q.shape[0]
        v = torch.zeros_like(q)
        lr = torch.full((b, 1), self.lr)
        best = torch.full((b,), float("inf"))
        stall = torch.zeros(b, dtype=torch.long)
        running = torch.ones(b, dtype=torch.bool)
        iters = torch.zeros(b, dtype=torch.long)

        def loss_grad(qq: torch.Tensor):
            qq = qq.detach().requires_grad_(True)
            pred = self.model(qq)
            loss = (w * ((pred - t) / self._unit) ** 2).sum(dim=(1, 2))
            (g,) = torch.autograd.grad(loss.sum(), qq)
            return loss.detach(), g, pred.detach()

        loss, g, pred = loss_grad(q)
        for _ in range(self.max_iter):
            running &= ~self._inner_done(pred, t, w, tol_t)
            if not running.any():
                break
            iters += running.long()
            run = running.unsqueeze(1)
            v = torch.where(run, self.momentum * v + g, v)
            step = torch.clamp(-lr * v, -self.max_step, self.max_step)
            q_new = torch.where(run, torch.minimum(torch.maximum(q + step, self._lo), self._hi), q)
            new_loss, new_g, new_pred = loss_grad(q_new)
            better = (new_loss < loss) & running
            bm = better.unsqueeze(1)
            q = torch.where(bm, q_new, q)
            g = torch.where(bm, new_g, g)
            pred = torch.where(bm.unsqueeze(2), new_pred, pred)
            loss = torch.where(better, new_loss, loss)
            worse = running & ~better
            lr = torch.where(bm, lr * 1.1, torch.where(worse.unsqueeze(1), lr * 0.5, lr))
            v = torch.where(worse.unsqueeze(1), torch.zeros_like(v), v)
            improved = loss < best * (1 - 1e-4)
            best = torch.where(improved, loss, best)
            stall = torch.where(improved, torch.zeros_like(stall), stall + running.long())
            running &= stall < self.patience
        out = q0.copy()
        out[idx] = q.numpy().astype(np.float64)
        its = np.zeros(q0.shape[0], dtype=int)
        its[idx] = iters.numpy()
        return out, its

    def model_jacobian(self, q: np.ndarray, comps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The model's pose chains (B, n, 9) at q (B, n) rad and its Jacobian (B, m, n) of the
        flat pose-chain components ``comps`` (m,) (index k * 9 + c) with respect to q: one
        forward and one backward pass over a batch of B x m copies of q, copy j of row b
        back-propagating component comps[j] only (rows are independent problems)."""
        b, m = q.shape[0], len(comps)
        qq = torch.as_tensor(q, dtype=torch.float32).repeat_interleave(m, dim=0).requires_grad_(True)
        pred = self.model(qq).reshape(b, m, -1)
        picked = pred[:, torch.arange(m), torch.as_tensor(comps)]
        (g,) = torch.autograd.grad(picked.sum(), qq)
        jac = g.reshape(b, m, -1).double().numpy()
        return pred[:, 0].detach().double().numpy().reshape(b, -1, 9), jac

    def _polish(self, q0: np.ndarray, problems: list[IKProblem], active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Levenberg-Marquardt on the true residual with the model's Jacobian (module docstring),
        for the active rows of q0 (B, n); returns q (B, n) and iterations (B,)."""
        c = self.chain
        q = q0.copy()
        its = np.zeros(len(problems), dtype=int)
        idx = [i for i in np.flatnonzero(active)]
        if not idx:
            return q, its
        weight = np.stack([problems[i].weight.reshape(-1) for i in idx])
        target = np.stack([problems[i].target.reshape(-1) for i in idx])
        comps = np.flatnonzero(weight.any(axis=0))
        unit = np.tile(np.where(np.arange(9) < 3, self.pos_unit, 1.0), c.n)[comps]
        w = weight[:, comps] / unit

        elements = [int(k) for k in np.unique(comps // 9)]

        def residual(qs: np.ndarray, rows) -> tuple[np.ndarray, np.ndarray]:
            fk = c.fk_batch(qs, elements)
            return w[rows] * (target[rows][:, comps] - fk.reshape(len(qs), -1)[:, comps]), fk

        qa = q[idx]
        r, fk = residual(qa, slice(None))
        loss = (r ** 2).sum(1)
        lam = np.full(len(idx), self.damping)
        run = np.array([not problems[i].satisfied(fk[j]) for j, i in enumerate(idx)])
        eye = np.eye(len(comps))
        jw = np.zeros((len(idx), len(comps), c.n))  # weighted Jacobian estimate per row
        age = np.full(len(idx), self.jacobian_every)  # steps since the network's Jacobian
        for _ in range(self.polish):
            if not run.any():
                break
            sel = np.flatnonzero(run)
            fresh = sel[age[sel] >= self.jacobian_every]
            if fresh.size:
                jw[fresh] = self.model_jacobian(qa[fresh], comps)[1] * w[fresh, :, None]
                age[fresh] = 0
            jac = jw[sel]
            jjt = jac @ jac.transpose(0, 2, 1) + (lam[sel] ** 2)[:, None, None] * eye
            dq = (jac.transpose(0, 2, 1) @ np.linalg.solve(jjt, r[sel][..., None]))[..., 0]
            q_new = np.clip(qa[sel] + np.clip(dq, -2 * self.max_step, 2 * self.max_step), c.lower, c.upper)
            r_new, fk_new = residual(q_new, sel)
            l_new = (r_new ** 2).sum(1)
            better = l_new < loss[sel]
            its[np.asarray(idx)[sel]] += 1
            if self.jacobian_every > 1:  # Broyden: the step's true secant, taken or not
                jw[sel] = broyden_update(jac, q_new - qa[sel], r[sel] - r_new)
            age[sel] += 1
            acc = sel[better]
            qa[acc], r[acc], loss[acc] = q_new[better], r_new[better], l_new[better]
            lam[acc] = np.maximum(lam[acc] * 0.5, 1e-4)
            lam[sel[~better]] *= 4.0
            for j, pc in zip(acc, fk_new[better], strict=True):
                if problems[idx[j]].satisfied(pc):
                    run[j] = False
            run &= lam < 1e3
        q[idx] = qa
        return q, its

    def solve_batch(self, q0: np.ndarray, problems: list[IKProblem], correct: bool | None = None) -> list[IKResult]:
        """Solve B problems from q0 (B, n) rad as one batch; each result's ``solve_s`` is the
        batch's wall time divided by B. ``correct``: target correction (default: corrections > 0)."""
        t0 = time.perf_counter()
        c = self.chain
        rounds = self.corrections if correct is None else (self.corrections or 3) if correct else 0
        bsz = len(problems)
        q = np.clip(np.asarray(q0, dtype=np.float64).reshape(bsz, c.n), c.lower, c.upper)
        target = np.stack([p.target for p in problems])
        weight = np.stack([p.weight for p in problems])
        tol = np.array([[p.pos_tol_m, np.radians(p.rot_tol_deg)] for p in problems])
        active = np.ones(bsz, dtype=bool)
        iters, used = np.zeros(bsz, dtype=int), np.zeros(bsz, dtype=int)
        best_q, best_score = q.copy(), np.full(bsz, np.inf)
        errs = np.zeros((bsz, 2))
        for r in range(rounds + 1):
            q, its = self._descend(q, target, weight, tol, active)
            iters += its
            pred = self.predict(q[active]) if r < rounds else None  # only a correction reads it
            for j, i in enumerate(np.flatnonzero(active)):
                true = c.fk(q[i])
                pos, rot = problems[i].errors(true)
                score = pos / problems[i].pos_tol_m + rot / problems[i].rot_tol_deg
                if score < best_score[i]:
                    best_q[i], best_score[i], errs[i] = q[i], score, (pos, rot)
                if pos <= problems[i].pos_tol_m and rot <= problems[i].rot_tol_deg:
                    active[i] = False
                elif r < rounds:
                    used[i] += 1
                    target[i] = problems[i].target + (pred[j] - true) * (weight[i] > 0)
            if not active.any():
                break
        if self.polish and (correct is None or correct) and active.any():
            q, its = self._polish(best_q, problems, active)
            iters += its
            for i in np.flatnonzero(active):
                pos, rot = problems[i].errors(c.fk(q[i]))
                score = pos / problems[i].pos_tol_m + rot / problems[i].rot_tol_deg
                if score < best_score[i]:
                    best_q[i], best_score[i], errs[i] = q[i], score, (pos, rot)
        dt = (time.perf_counter() - t0) / bsz
        out = []
        for i, p in enumerate(problems):
            ok = errs[i, 0] <= p.pos_tol_m and errs[i, 1] <= p.rot_tol_deg
            out.append(IKResult(best_q[i].copy(), bool(ok), float(errs[i, 0]), float(errs[i, 1]), int(iters[i]),
                                dt, int(used[i]), "converged" if ok else "tolerance not reached"))
        return out

    def solve(self, q0: np.ndarray, problem: IKProblem, correct: bool | None = None) -> IKResult:
        """Solve one problem from q0 (n,) rad (a batch of one)."""
        return self.solve_batch(np.asarray(q0)[None], [problem], correct)[0]
