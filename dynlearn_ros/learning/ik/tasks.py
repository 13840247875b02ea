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

:func:`scaling`: time per iteration and per target of both solvers on armN (N joints, 2N DoF).
"""

from __future__ import annotations

import math
import time

import numpy as np

from dynlearn_ros.learning.ik.chain import POSE_DIM, Chain, chain
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


def _step_costs(net, c: Chain, reps: int = 10) -> dict:
    """ms (median of ``reps``) of the parts of one learned-gn step on chain ``c`` for an
    end-effector pose (9 constrained components, so 9 copies of q: model_jacobian): the LSTM's
    forward + backward alone, the composition of the relative outputs forward + backward
    (log-depth scan, and the sequential product it replaced), the whole model Jacobian, and one
    true FK of the constrained element (what a Broyden step costs besides a 9 x 9 solve)."""
    import torch

    from dynlearn_ros.learning.ik.model import compose, compose_sequential
    from dynlearn_ros.learning.ik.solver import LearnedIK

    solver = LearnedIK(net, c, max_iter=0)
    q9 = torch.zeros(9, c.n)
    comps = np.arange(9 * (c.n - 1), 9 * c.n)
    with torch.no_grad():
        dp0, ax0 = net.steps(q9)

    def lstm():
        x = q9.clone().requires_grad_(True)
        dp, ax = net.steps(x)
        torch.autograd.grad(dp.sum() + ax.sum(), x)

    def comp(fn):
        dp, ax = dp0.clone().requires_grad_(True), ax0.clone().requires_grad_(True)
        torch.autograd.grad(fn(dp, ax, net.tip)[:, -1].sum(), (dp, ax))

    parts = {"lstm_fwd_bwd_ms": lstm, "compose_scan_fwd_bwd_ms": lambda: comp(compose),
             "compose_sequential_fwd_bwd_ms": lambda: comp(compose_sequential),
             "model_jacobian_ms": lambda: solver.model_jacobian(np.zeros((1, c.n)), comps),
             "true_fk_ms": lambda: c.fk(np.zeros(c.n), elements=[c.n - 1])}
    out = {}
    for key, fn in parts.items():
        fn()
        ts = []
        for _ in range(reps):
            t0 = time.process_time()
            fn()
            ts.append(time.process_time() - t0)
        out[key.replace("_ms", "_cpu_ms")] = 1e3 * float(np.median(ts))
    return out


def scaling(joint_counts=(5, 10, 20, 40), hidden: int = 64, layers: int = 2, targets: int = 5,
            seed: int = 0, model=None, polish: int = 100, rounds: int = 3, log=print) -> list[dict]:
    """Per joint count N (2N DoF), in one run: ms per iteration of the learned solver's step
    (forward + backward through an LSTM, ``model``'s size if given, else ``hidden``/``layers``;
    the cost does not depend on the weights' values) and of one DLS iteration (FK + Jacobian +
    m x m solve), and ms per target of DLS and, with a chain-relative ``model`` (trained on one
    armN, moved to each N by :meth:`PoseChainLSTM.on_geometry`), of the learned solver
    (Levenberg-Marquardt through the model's Jacobian, ``polish`` steps at most; and the
    ``learned-broyden`` variant, the network's Jacobian every BROYDEN_EVERY steps), with the
    parts of one step (:func:`_step_costs`), on the same
    end-effector pose targets (random configurations within 30 % of the ranges) from q = 0,
    one target at a time. The sweep over N is repeated ``rounds`` times, interleaved, and each
    time is the median over the rounds: on a shared machine the load drifts, and interleaving
    exposes every N to the same drift. ``*_cpu_ms*`` are the process's CPU time
    (time.process_time, one torch thread): on a shared machine a time slice lost to another
    process inflates wall time but not CPU time, so these are the figures to compare."""
    import torch

    from dynlearn_ros.learning.ik.dls import DLSIK
    from dynlearn_ros.learning.ik.evaluation import BROYDEN_EVERY
    from dynlearn_ros.learning.ik.model import PoseChainLSTM
    from dynlearn_ros.learning.ik.solver import LearnedIK
    from dynlearn_ros.learning.ik.training import evaluate

    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    setup = {}
    for nj in joint_counts:
        c = chain(f"arm{nj}")
        if model is not None:
            net = model.on_geometry(torch.as_tensor(c.geometry))
        else:
            net = PoseChainLSTM(torch.as_tensor(c.geometry), c.scale, hidden, layers).eval()
        for p in net.parameters():
            p.requires_grad_(False)
        problems = []
        for qt in c.sample(rng, targets, 0.3):
            weight = np.zeros((c.n, POSE_DIM))
            weight[-1] = 1
            problems.append(IKProblem.from_pose_chain(c.fk(qt), weight))
        row = {"joints": nj, "dof": c.n}
        if model is not None:
            err = evaluate(net, c, c.sample(rng, 200, 1.0))
            row.update({"learned_ee_mm": 1e3 * float(err["pos_m"][:, -1].mean()),
                        "learned_ee_deg": float(err["rot_deg"][:, -1].mean())})
        setup[nj] = (c, net, problems, row)
    samples: dict = {nj: {} for nj in joint_counts}
    for _ in range(rounds):
        for nj in joint_counts:
            c, net, problems, row = setup[nj]
            put = samples[nj]
            q = torch.zeros(c.n, requires_grad=True)
            w = torch.zeros(c.n, POSE_DIM)
            w[-1] = 1
            t0 = time.perf_counter()
            for _ in range(10):
                torch.autograd.grad((w * net(q[None])[0]).sum(), q)
            put.setdefault("learned_ms_per_iteration", []).append(1e3 * (time.perf_counter() - t0) / 10)
            if model is not None:
                for key, ms in _step_costs(net, c).items():
                    put.setdefault(key, []).append(ms)
            cpu0 = time.process_time()
            res = [DLSIK(c, max_iter=200).solve(np.zeros(c.n), p) for p in problems]
            put.setdefault("dls_cpu_ms_per_target", []).append(1e3 * (time.process_time() - cpu0) / len(res))
            it = sum(r.iterations for r in res)
            ms = 1e3 * sum(r.solve_s for r in res)
            put.setdefault("dls_ms_per_iteration", []).append(ms / max(it, 1))
            put.setdefault("dls_ms_per_target", []).append(ms / len(res))
            row["dls_iterations_per_target"] = it / len(res)
            row["dls_success"] = float(np.mean([r.success for r in res]))
            if model is not None:
                for key, every in (("learned", 1), ("broyden", BROYDEN_EVERY)):
                    solver = LearnedIK(net, c, max_iter=0, polish=polish, jacobian_every=every)
                    cpu0 = time.process_time()
                    lres = [solver.solve(np.zeros(c.n), p) for p in problems]
                    put.setdefault(f"{key}_cpu_ms_per_target", []).append(1e3 * (time.process_time() - cpu0) / len(lres))
                    put.setdefault(f"{key}_ms_per_target", []).append(1e3 * float(np.mean([r.solve_s for r in lres])))
                    row[f"{key}_iterations_per_target"] = float(np.mean([r.iterations for r in lres]))
                    row[f"{key}_success"] = float(np.mean([r.success for r in lres]))
    rows = []
    for nj in joint_counts:
        row = setup[nj][3]
        row.update({k: float(np.median(v)) for k, v in samples[nj].items()})
        row["rounds"] = rounds
        rows.append(row)
        log(row)
    return rows
