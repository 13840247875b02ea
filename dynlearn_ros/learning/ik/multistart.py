"""Multiple starts for one IK problem: the current configuration, home, and seeded random ones.

A local method (gradient descent through the model, or damped least squares) fails when its
start lies in the basin of a wrong local minimum (e.g. an elbow on the wrong side, or a wrist
flipped by pi); another start often avoids it. :func:`start_configs` gives the starts,
:func:`solve_multistart` runs them and keeps, per problem, the best *true* result: a success
before a failure, then the lowest score pos / pos_tol + rot / rot_tol (Pinocchio FK).

The learned solver runs all B x S (problem, start) pairs as one batch (its cost per iteration
grows sub-linearly with the batch); DLS runs one start after the other per problem and stops at
the first success (what a sequential solver would do; the success rate is the same as running
every start, only the errors of the chosen success may differ).
"""

from __future__ import annotations

import time

import numpy as np

from dynlearn_ros.learning.ik.chain import Chain
from dynlearn_ros.learning.ik.problem import IKProblem, IKResult

RANDOM_FRAC = 0.8  # random starts are uniform over the middle 80 % of every joint's range


def start_configs(chain: Chain, first: np.ndarray | None, count: int, seed: int = 0) -> np.ndarray:
    """(count, n) rad starts: ``first`` (if given), the home pose, then random ones drawn with
    ``seed`` (the same seed gives the same starts: a solve is reproducible)."""
    if count < 1:
        raise ValueError(f"need at least one start, got {count}")
    starts = [np.clip(np.asarray(first, dtype=np.float64), chain.lower, chain.upper)] if first is not None else []
    starts.append(chain.home.astype(np.float64))
    starts = starts[:count]
    extra = count - len(starts)
    if extra > 0:
        starts.extend(chain.sample(np.random.default_rng(seed), extra, RANDOM_FRAC))
    return np.stack(starts)


def score(problem: IKProblem, result: IKResult) -> tuple[bool, float]:
    """Sort key (smaller is better): (not success, pos / pos_tol + rot / rot_tol)."""
    return (not result.success, result.pos_err_m / problem.pos_tol_m + result.rot_err_deg / problem.rot_tol_deg)


def solve_multistart(solver, starts: np.ndarray, problems: list[IKProblem],
                     until_success: bool = False) -> list[IKResult]:
    """Solve each problem from each of its starts; starts (B, S, n) or (S, n) (the same for all).

    Returns one IKResult per problem: the best start's (its ``start`` field says which, 0-based);
    ``iterations`` and ``corrections`` are summed over the starts that ran; ``solve_s`` is the
    batch's wall time per problem (learned) or the problem's own time over its starts (DLS).

    ``until_success`` (batched solvers; DLS always does this): start j runs, as one batch, only
    for the problems no earlier start solved. Rows of a batch are independent problems, so the
    success of every problem is the same as with all starts; only the errors of the chosen
    success may differ (the first success, not the best one), and the batches shrink: with
    ~85 % solved from the first start, ~1.2 starts per problem run instead of S. ``start`` of
    a success is then the number of starts it needed minus one."""
    t0 = time.perf_counter()
    b = len(problems)
    starts = np.asarray(starts, dtype=np.float64)
    if starts.ndim == 2:
        starts = np.broadcast_to(starts, (b,) + starts.shape)
    s = starts.shape[1]
    out: list[IKResult] = []
    if hasattr(solver, "solve_batch") and until_success:
        groups = [[] for _ in range(b)]
        todo = list(range(b))
        for j in range(s):
            if not todo:
                break
            for i, r in zip(todo, solver.solve_batch(starts[todo, j], [problems[i] for i in todo]), strict=True):
                groups[i].append(r)
            todo = [i for i in todo if not groups[i][-1].success]
        times = [(time.perf_counter() - t0) / max(b, 1)] * b
    elif hasattr(solver, "solve_batch"):
        flat = solver.solve_batch(starts.reshape(b * s, -1), [p for p in problems for _ in range(s)])
        groups = [flat[i * s:(i + 1) * s] for i in range(b)]
        times = [(time.perf_counter() - t0) / max(b, 1)] * b
    else:
        groups = []
        for i, p in enumerate(problems):
            g = []
            for j in range(s):
                g.append(solver.solve(starts[i, j], p))
                if g[-1].success:
                    break
            groups.append(g)
        times = [sum(x.solve_s for x in g) for g in groups]
    for p, g, dt in zip(problems, groups, times, strict=True):
        j = min(range(len(g)), key=lambda k: score(p, g[k]))
        r = g[j]
        out.append(IKResult(r.q, r.success, r.pos_err_m, r.rot_err_deg, sum(x.iterations for x in g), dt,
                            sum(x.corrections for x in g), r.reason, start=j))
    return out
