"""The seed's three tasks on the generated 40-joint (80-DoF) arm, and the joint-count scaling.

Tip frame of ``arm40``: z = the pointing ("forward") axis along the last link, x = its "up"
axis. Each task is a sequence of IK problems, each solved warm-started from the previous
solution; errors are measured with Pinocchio.

1. ``level_reach``: reach a point keeping the end effector level: up axis (x) = world +z,
   forward (z) free, i.e. mask = position + x axis.
2. ``ellipse``: the tip follows an ellipse in a horizontal plane with the forward axis fixed
   (world +x) and the up axis free: mask = position + z axis; 24 points.
3. ``hold_circle``: the end-effector pose (position and both axes) is held while the frame after
   the 20th joint (element 39, both its DoF) moves its (x, y) on a circle of 5 cm; 24 points.

:mod:`.scaling` times the solvers against the joint count on armN (N joints, 2N DoF).
"""

from __future__ import annotations

import math

import numpy as np

from dynlearn_ros.learning.ik.chain import POSE_DIM, Chain
from dynlearn_ros.learning.ik.problem import IKProblem

MID = 39  # pose-chain element after the 20th joint's second DoF (0-based)


def _problem(n: int, entries: list[tuple[int, slice, np.ndarray]]) -> IKProblem:
    t, w = np.zeros((n, POSE_DIM)), np.zeros((n, POSE_DIM))
    for k, sl, v in entries:
        t[k, sl], w[k, sl] = v, 1.0
    return IKProblem(t, w)


def task_problems(c: Chain, q_start: np.ndarray, points: int = 24) -> dict[str, list[IKProblem]]:
    start = c.fk(q_start)
    n = c.n
    ee = n - 1
    up = np.array([0.0, 0.0, 1.0])
    fwd = np.array([1.0, 0.0, 0.0])
    ang = np.linspace(0.0, 2 * math.pi, points, endpoint=False)
    level = [_problem(n, [(ee, slice(0, 3), np.array([0.45, 0.2, 0.6])), (ee, slice(3, 6), up)])]
    centre = np.array([0.45, 0.0, 0.55])
    ellipse = [_problem(n, [(ee, slice(0, 3), centre + np.array([0.0, 0.15 * math.cos(a), 0.08 * math.sin(a)])),
                            (ee, slice(6, 9), fwd)]) for a in ang]
    mid0 = start[MID, :2]
    hold = [_problem(n, [(ee, slice(0, 9), start[ee]),
                         (MID, slice(0, 2), mid0 + 0.05 * np.array([math.cos(a) - 1.0, math.sin(a)]))]) for a in ang]
    return {"level_reach": level, "ellipse": ellipse, "hold_circle": hold}


def run_tasks(solvers: dict, c: Chain, q_start: np.ndarray, log=print) -> dict:
    """{task: {solver: {success, pos_mm (per point), rot_deg, ms (per point), q (per point)}}}."""
    out: dict = {}
    for task, problems in task_problems(c, q_start).items():
        out[task] = {}
        for name, s in solvers.items():
            q = q_start.copy()
            rec = {"success": [], "pos_mm": [], "rot_deg": [], "ms": [], "q": []}
            for p in problems:
                r = s.solve(q, p)
                q = r.q
                rec["success"].append(bool(r.success))
                rec["pos_mm"].append(1e3 * r.pos_err_m)
                rec["rot_deg"].append(r.rot_err_deg)
                rec["ms"].append(1e3 * r.solve_s)
                rec["q"].append(r.q.tolist())
            out[task][name] = rec
            log(f"{task:<12} {name:<18} success {np.mean(rec['success']) * 100:5.1f} %  "
                f"max {max(rec['pos_mm']):.2f} mm {max(rec['rot_deg']):.2f} deg  {np.mean(rec['ms']):.0f} ms/point")
    return out


def plot_tasks(res: dict, c: Chain, q_start: np.ndarray, path: str) -> None:
    """One panel per task: the arm at a few solutions (x-z or x-y projections) and the targets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problems = task_problems(c, q_start)
    fig, axes = plt.subplots(1, 3, figsize=(15, 5))
    views = {"level_reach": (0, 2, "x (m)", "z (m)"), "ellipse": (1, 2, "y (m)", "z (m)"),
             "hold_circle": (0, 1, "x (m)", "y (m)")}
    for ax, (task, by_solver) in zip(axes, res.items(), strict=False):
        i, j, xl, yl = views[task]
        for name, rec in by_solver.items():
            qs = rec["q"]
            picks = qs if len(qs) <= 1 else qs[:: max(1, len(qs) // 4)]
            for q in picks:
                pc = c.fk(np.asarray(q))
                ax.plot(pc[:, i], pc[:, j], lw=0.8, alpha=0.7, label=None)
            tips = np.array([c.fk(np.asarray(q))[-1, :3] for q in qs])
            ax.plot(tips[:, i], tips[:, j], "o", ms=3, label=f"{name}: tip")
            if task == "hold_circle":
                mids = np.array([c.fk(np.asarray(q))[MID, :3] for q in qs])
                ax.plot(mids[:, i], mids[:, j], "s", ms=3, label=f"{name}: joint 20")
        tgt = np.array([p.target[-1, :3] if task != "hold_circle" else p.target[MID, :3] for p in problems[task]])
        ax.plot(tgt[:, i], tgt[:, j], "k+", ms=8, label="targets")
        ax.set_title(task)
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.set_aspect("equal")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
