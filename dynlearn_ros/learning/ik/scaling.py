"""Time per target against the joint count on armN (N joints, 2N DoF): every solver, one run.

Per joint count, end-effector pose targets (all 9 components; the FK of configurations within
30 % of the ranges, drawn afresh for every round) are solved one at a time from q = 0 by

* ``dls``: Pinocchio's analytic Jacobian (one C++ pass, O(n)) and the m x m damped solve
  (m = 9 constrained components): the baseline;
* ``dls_fd``: the same iteration with the Jacobian by forward differences of Pinocchio's
  forward kinematics, n + 1 FK calls of O(n) each per iteration (:class:`DLSIK` with
  ``jacobian="fd"``): a Jacobian method as it runs when only a forward model exists. It is
  reported beside ``dls``, never instead of it;
* with a chain-relative model (trained on one armN and moved to every N by
  :meth:`PoseChainLSTM.on_geometry`: the same weights), ``learned`` (learned-gn,
  Levenberg-Marquardt through the network's Jacobian on the true residual, at most ``polish``
  steps), ``broyden`` (learned-broyden: the network's Jacobian every BROYDEN_EVERY steps) and
  ``broyden_once`` (the network's Jacobian at the first step only, Broyden's secant updates from
  the true residuals for every later step: the network's O(n) sequential pass is paid once per
  target instead of once per step or per BROYDEN_EVERY steps).

Times are the process's CPU time (``time.process_time``, one torch thread and one BLAS thread
for numpy, :class:`dynlearn_ros.learning.blas.one_blas_thread`): on a shared machine
a lost time slice inflates wall time, not CPU time. The sweep over N is repeated ``rounds``
times, interleaved, so every N sees the same load drift; a row holds the median over the rounds
and, under ``per_round``, every round's value.

**Chain constraints** (``chain_every`` = m): the targets also constrain the positions of every
m-th joint's frame (armN: joint j's frame is pose-chain element 2j - 1, after its second DoF;
joints m, 2m, ... < N, so k = ceil(N / m) - 1 frames) besides the end effector's pose, all from
the FK of the same random configuration, the other elements masked by the "don't care" weights
(:func:`chain_weight`). A Jacobian method then stacks 3k + 9 rows: DLS takes the k + 1 frame
Jacobians from one O(n) Pinocchio pass and solves a (3k + 9)-square damped system, O(n k^2 + k^3);
DLS-FD still takes n + 1 FK calls, each now filling k + 1 frames. The learned Gauss-Newton
solvers back-propagate 3k + 9 copies of the chain (one per constrained component); the plain
gradient solver ``gradient`` (learned+correction: momentum descent on the masked loss through
the network, then target-correction rounds) back-propagates one scalar loss per iteration,
the same O(n) pass whatever k is: the pose-chain model's case. ``broyden_once`` is left out.

:func:`growth_exponents`: time per target = iterations x time per iteration, so on log axes
the growth exponent of the time is the sum of those two exponents. Each round gives one
least-squares slope of log(value) against log(DoF) over the joint counts; the result is their
mean, sample sd, min and max over the rounds, and the slope through the medians. "Less than
linear" means an exponent below 1.

:func:`linear_costs`: the cost model's check. A per-iteration cost (or the cost of one part of a
step) is fitted as a + b n over the joint counts (medians); a is the fixed part (Python, binding
and per-operation overhead), b the part per DoF, and n_half = a / b the DoF where the two are
equal: an exponent measured well below n_half is the overhead's (near 0), well above it the
asymptotic one (near 1 for an O(n) pass).
"""

from __future__ import annotations

import time

import numpy as np

from dynlearn_ros.learning.blas import one_blas_thread
from dynlearn_ros.learning.ik.chain import POSE_DIM, Chain, chain
from dynlearn_ros.learning.ik.problem import IKProblem

SOLVERS = ("dls", "dls_fd", "learned", "broyden", "broyden_once", "gradient")
LABELS = {"dls": "DLS, Pinocchio analytic Jacobian", "dls_fd": "DLS, finite-difference Jacobian of the FK (n + 1 FK calls)",
          "learned": "learned-gn", "broyden": "learned-broyden",
          "broyden_once": "learned-broyden, network Jacobian once per target",
          "gradient": "learned gradient descent + target correction"}
#: parts of a step timed per joint count (CPU ms per call; :func:`_step_costs`)
PARTS = ("model_jacobian_cpu_ms", "model_gradient_cpu_ms", "pinocchio_jacobian_cpu_ms", "true_fk_cpu_ms")


def chain_frames(joints: int, every: int) -> list[int]:
    """Pose-chain elements of armN (``joints`` = N, two DoF per joint) whose positions the chain
    targets constrain: the frame of every ``every``-th joint (1-based j = every, 2 every, ... < N)
    is element 2 j - 1, the frame after the joint's second DoF (joint 20: element 39, the third
    task's). The last joint's frame is left out: the end effector's pose is constrained anyway."""
    if every < 1:
        raise ValueError(f"chain_every must be >= 1, got {every}")
    return [2 * j - 1 for j in range(every, joints, every)]


def chain_weight(c: Chain, every: int | None) -> np.ndarray:
    """(n, 9) weights of the sweep's targets on armN: the end effector's pose (9 components)
    and, with ``every``, the positions (3 components) of :func:`chain_frames`; 0 elsewhere."""
    if c.n % 2:
        raise ValueError(f"chain targets are defined on armN (two DoF per joint); {c.name} has {c.n} DoF")
    weight = np.zeros((c.n, POSE_DIM))
    weight[-1] = 1
    if every:
        weight[chain_frames(c.n // 2, every), :3] = 1
    return weight


def _step_costs(net, c: Chain, reps: int = 10, weight: np.ndarray | None = None) -> dict:
    """CPU ms (median of ``reps``) of the parts of one learned step on chain ``c`` for the
    constrained components of ``weight`` (n, 9) (default: the end effector's pose, 9
    components, so 9 copies of q: model_jacobian): the LSTM's forward + backward alone, the
    composition of the relative outputs forward + backward (log-depth scan, and the sequential
    product it replaced), the whole model Jacobian (m copies for m components), the gradient of
    the masked loss (one copy: the gradient solver's step), one true FK of the constrained
    elements (what a Broyden step costs besides an m x m solve) and Pinocchio's analytic
    Jacobians of them (:meth:`Chain.jacobians`: the O(n) C++ pass a DLS step takes)."""
    import torch

    from dynlearn_ros.learning.ik.model import compose, compose_sequential
    from dynlearn_ros.learning.ik.solver import LearnedIK

    solver = LearnedIK(net, c, max_iter=0)
    q9 = torch.zeros(9, c.n)
    if weight is None:
        weight = chain_weight(c, None)
    comps = np.flatnonzero(weight.reshape(-1) > 0)
    elements = [int(k) for k in np.flatnonzero(weight.any(axis=1))]
    w_t = torch.as_tensor(weight, dtype=torch.float32)

    def gradient():
        x = torch.zeros(1, c.n, requires_grad=True)
        torch.autograd.grad((w_t * net(x)[0] ** 2).sum(), x)
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
             "model_gradient_ms": gradient,
             "true_fk_ms": lambda: c.fk(np.zeros(c.n), elements=elements),
             "pinocchio_jacobian_ms": lambda: c.jacobians(np.zeros(c.n), elements)}
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


def _targets(c: Chain, rng: np.random.Generator, count: int, every: int | None = None) -> list[IKProblem]:
    """``count`` targets: the FK of configurations within 30 % of the ranges, weighted by
    :func:`chain_weight` (the end effector's pose; with ``every``, the chain frames' positions)."""
    weight = chain_weight(c, every)
    return [IKProblem.from_pose_chain(c.fk(qt), weight) for qt in c.sample(rng, count, 0.3)]


def _time_solver(put: dict, key: str, solve, problems: list[IKProblem], n: int) -> None:
    """Solve every problem from q = 0 with ``solve``; append this round's CPU ms per target,
    wall ms per target, iterations per target, CPU ms per iteration, success and the mean
    iterations of the solved targets (NaN when none was solved) to ``put``."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    res = [solve(np.zeros(n), p) for p in problems]
    cpu = 1e3 * (time.process_time() - cpu0) / len(res)
    its = float(np.mean([r.iterations for r in res]))
    put.setdefault(f"{key}_cpu_ms_per_target", []).append(cpu)
    put.setdefault(f"{key}_ms_per_target", []).append(1e3 * (time.perf_counter() - wall0) / len(res))
    put.setdefault(f"{key}_iterations_per_target", []).append(its)
    put.setdefault(f"{key}_cpu_ms_per_iteration", []).append(cpu / max(its, 1e-9))
    put.setdefault(f"{key}_success", []).append(float(np.mean([r.success for r in res])))
    solved = [r.iterations for r in res if r.success]
    put.setdefault(f"{key}_iterations_solved", []).append(float(np.mean(solved)) if solved else float("nan"))


def scaling(joint_counts=(5, 10, 20, 40), hidden: int = 64, layers: int = 2, targets: int = 5,
            seed: int = 0, model=None, polish: int = 100, rounds: int = 3, step_costs: bool = True,
            chain_every: int | None = None, corrections: int = 10, max_iter: int = 300,
            log=print, solvers: tuple[str, ...] | None = None) -> list[dict]:
    """One row per joint count N (module docstring): medians over ``rounds`` interleaved sweeps
    of CPU ms per target, iterations per target and CPU ms per iteration of each solver, plus
    ``per_round`` (every round's value) and, with a model, its tip error on armN (200
    configurations over the full ranges), the median relative error of its end-effector Jacobian
    (20 configurations within 30 % of the ranges, the targets' family; diagnosis.jacobian_rel_errors)
    and the parts of one learned step (:func:`_step_costs`). Without a model: DLS (both Jacobians) and the cost
    of a forward + backward pass through an untrained LSTM of ``hidden``/``layers`` (the cost
    does not depend on the weights' values). Round r draws its targets with seed (seed, r, N).

    ``chain_every`` = m: chain targets (module docstring; the rows then hold ``chain_every``,
    ``constrained_frames`` and ``constrained_components``), solved by dls, dls_fd and, with a
    model, learned, broyden and gradient (``max_iter`` descent iterations, ``corrections``
    rounds); the step costs are those of the chain's constrained components.

    ``solvers``: run only these of :data:`SOLVERS` (default: every one the model and targets
    allow; a name that would not run anyway is refused), e.g. to leave out learned-gn, whose
    3k + 9 back-propagated copies per iteration cost seconds per target at 320 DoF."""
    import torch

    if solvers is not None:
        unknown = sorted(set(solvers) - set(SOLVERS))
        if unknown or not solvers:
            raise ValueError(f"solvers must be a non-empty subset of {SOLVERS}, got {list(solvers)}")
        allowed = {"dls", "dls_fd"} | ({"learned", "broyden", "gradient" if chain_every else "broyden_once"}
                                       if model is not None else set())
        if set(solvers) - allowed:
            raise ValueError(f"solvers {sorted(set(solvers) - allowed)} do not run here (with this model and "
                             f"targets: {sorted(allowed)})")
    torch.set_num_threads(1)
    with one_blas_thread():
        return _scaling(joint_counts, hidden, layers, targets, seed, model, polish, rounds, step_costs,
                        chain_every, corrections, max_iter, log, solvers)


def _scaling(joint_counts, hidden, layers, targets, seed, model, polish, rounds, step_costs,
             chain_every, corrections, max_iter, log, keep=None) -> list[dict]:
    """:func:`scaling`'s body, with numpy's BLAS on one thread."""
    import torch

    from dynlearn_ros.learning.ik.diagnosis import jacobian_rel_errors
    from dynlearn_ros.learning.ik.dls import DLSIK
    from dynlearn_ros.learning.ik.evaluation import BROYDEN_EVERY
    from dynlearn_ros.learning.ik.model import PoseChainLSTM
    from dynlearn_ros.learning.ik.solver import LearnedIK
    from dynlearn_ros.learning.ik.training import evaluate

    setup = {}
    for nj in joint_counts:
        c = chain(f"arm{nj}")
        if model is not None:
            net = model.on_geometry(torch.as_tensor(c.geometry))
        else:
            net = PoseChainLSTM(torch.as_tensor(c.geometry), c.scale, hidden, layers).eval()
        for p in net.parameters():
            p.requires_grad_(False)
        row = {"joints": nj, "dof": c.n, "targets_per_round": targets}
        weight = chain_weight(c, chain_every)
        if chain_every:
            row.update({"chain_every": chain_every, "constrained_frames": int(weight.any(axis=1).sum()),
                        "constrained_components": int((weight > 0).sum())})
        if model is not None:
            err = evaluate(net, c, c.sample(np.random.default_rng([seed, nj]), 200, 1.0))
            rel = jacobian_rel_errors(LearnedIK(net, c, max_iter=0), c,
                                      c.sample(np.random.default_rng([seed, nj, 1]), 20, 0.3))
            row.update({"learned_ee_mm": 1e3 * float(err["pos_m"][:, -1].mean()),
                        "learned_ee_deg": float(err["rot_deg"][:, -1].mean()),
                        "jacobian_rel_err_median": float(np.median(rel))})
        solvers = {"dls": DLSIK(c, max_iter=200).solve, "dls_fd": DLSIK(c, max_iter=200, jacobian="fd").solve}
        if model is not None:
            solvers["learned"] = LearnedIK(net, c, max_iter=0, polish=polish).solve
            solvers["broyden"] = LearnedIK(net, c, max_iter=0, polish=polish, jacobian_every=BROYDEN_EVERY).solve
            if chain_every:
                solvers["gradient"] = LearnedIK(net, c, corrections=corrections, max_iter=max_iter).solve
            else:
                # jacobian_every = polish: the age of the first Jacobian never reaches it within the budget
                solvers["broyden_once"] = LearnedIK(net, c, max_iter=0, polish=polish,
                                                    jacobian_every=max(polish, 1)).solve
        if keep is not None:
            solvers = {k: v for k, v in solvers.items() if k in keep}
        setup[nj] = (c, net, solvers, row, weight)
    samples: dict = {nj: {} for nj in joint_counts}
    for r in range(rounds):
        for nj in joint_counts:
            c, net, solvers, row, weight = setup[nj]
            put = samples[nj]
            problems = _targets(c, np.random.default_rng([seed, r, nj]), targets, chain_every)
            q = torch.zeros(c.n, requires_grad=True)
            w = torch.as_tensor(weight, dtype=torch.float32)
            cpu0 = time.process_time()
            for _ in range(10):
                torch.autograd.grad((w * net(q[None])[0]).sum(), q)
            put.setdefault("lstm_pass_cpu_ms", []).append(1e3 * (time.process_time() - cpu0) / 10)
            if model is not None and step_costs:
                for key, ms in _step_costs(net, c, reps=5, weight=weight).items():
                    put.setdefault(key, []).append(ms)
            for key, solve in solvers.items():
                _time_solver(put, key, solve, problems, c.n)
        log(f"round {r + 1}/{rounds}: " + ", ".join(
            f"{2 * nj} DoF " + "/".join(f"{samples[nj][f'{k}_cpu_ms_per_target'][-1]:.1f}" for k in setup[nj][2])
            for nj in joint_counts) + " CPU ms per target (" + "/".join(setup[joint_counts[0]][2]) + ")")
    rows = []
    for nj in joint_counts:
        row = setup[nj][3]
        row.update({k: float(np.nanmedian(v)) if np.isfinite(v).any() else float("nan")
                    for k, v in samples[nj].items()})
        row["per_round"] = samples[nj]
        row["rounds"] = rounds
        rows.append(row)
    return rows


def growth_exponents(rows: list[dict], min_dof: int = 0, max_dof: float = float("inf")) -> dict:
    """{solver: {quantity: exponent stats}} over the rows with ``min_dof`` <= dof <= ``max_dof``
    (module docstring); quantities: cpu_ms_per_target, iterations_per_target, cpu_ms_per_iteration.
    Stats: per-round slopes, their mean, sample sd, min, max, and the slope through the medians."""
    rows = [r for r in rows if min_dof <= r["dof"] <= max_dof]
    if len(rows) < 2:
        raise ValueError("a growth exponent needs at least two joint counts")
    x = np.log([r["dof"] for r in rows])
    out: dict = {}
    for s in SOLVERS:
        if f"{s}_cpu_ms_per_target" not in rows[0]:
            continue
        out[s] = {}
        for qty in ("cpu_ms_per_target", "iterations_per_target", "cpu_ms_per_iteration"):
            vals = np.array([r["per_round"][f"{s}_{qty}"] for r in rows])  # (joint counts, rounds)
            if np.any(vals <= 0):
                continue
            slopes = [float(np.polyfit(x, np.log(vals[:, j]), 1)[0]) for j in range(vals.shape[1])]
            out[s][qty] = {"per_round": slopes, "mean": float(np.mean(slopes)),
                           "sd": float(np.std(slopes, ddof=1)) if len(slopes) > 1 else 0.0,
                           "min": float(np.min(slopes)), "max": float(np.max(slopes)),
                           "of_medians": float(np.polyfit(x, np.log(np.median(vals, 1)), 1)[0])}
    return out


def linear_costs(rows: list[dict], degree: int = 1) -> dict[str, dict]:
    """{quantity: {fixed_ms, per_dof_ms, dof_half}}: least-squares a + b n over the rows' medians
    (module docstring) of every solver's ``cpu_ms_per_iteration`` and of the :data:`PARTS`
    present; dof_half = a / b (inf when b <= 0: no measurable growth). ``degree`` = 2: the fit
    is a + b n + c n^2 (needs three joint counts) and adds ``per_dof2_ms`` = c; dof_half stays
    a / b, and ``dof_quadratic`` = b / c is the DoF where the quadratic part equals the linear
    one (inf when c <= 0)."""
    if degree not in (1, 2):
        raise ValueError(f"degree must be 1 or 2, got {degree}")
    if len(rows) < degree + 1:
        raise ValueError("a cost fit needs at least two joint counts" if degree == 1
                         else "a quadratic cost fit needs at least 3 joint counts")
    n = np.array([r["dof"] for r in rows], dtype=float)
    keys = [f"{s}_cpu_ms_per_iteration" for s in SOLVERS] + list(PARTS)
    out = {}
    for key in keys:
        if not all(key in r for r in rows):
            continue
        coef = np.polyfit(n, np.array([r[key] for r in rows], dtype=float), degree)[::-1]
        a, b = coef[0], coef[1]
        out[key] = {"fixed_ms": float(a), "per_dof_ms": float(b),
                    "dof_half": float(a / b) if b > 0 else float("inf")}
        if degree == 2:
            out[key]["per_dof2_ms"] = float(coef[2])
            out[key]["dof_quadratic"] = float(b / coef[2]) if coef[2] > 0 else float("inf")
    return out


def markdown(rows: list[dict], fits: dict[str, dict]) -> str:
    """The per-N table (medians) and one exponent table per fit range (``fits``: title -> fit)."""
    present = [s for s in SOLVERS if f"{s}_cpu_ms_per_target" in rows[0]]
    head = "| joints | DoF | " + " | ".join(
        f"{LABELS[s]}: iterations (of the solved), CPU ms/target, ms/iteration (success)" for s in present) + " |"
    model_cols = "jacobian_rel_err_median" in rows[0]
    if model_cols:
        head += " network tip error mm, Jacobian relative error (median) |"
    lines = [head, "|---|---|" + "---|" * (len(present) + model_cols)]
    for r in rows:
        cells = [f"{r[f'{s}_iterations_per_target']:.1f} ({r.get(f'{s}_iterations_solved', float('nan')):.1f}), "
                 f"{r[f'{s}_cpu_ms_per_target']:.1f}, {r[f'{s}_cpu_ms_per_iteration']:.2f} "
                 f"({100 * np.mean(r['per_round'][f'{s}_success']):.0f} %)" for s in present]
        if "jacobian_rel_err_median" in r:
            cells.append(f"{r['learned_ee_mm']:.1f}, {r['jacobian_rel_err_median']:.3f}")
        dof = (f"{r['dof']} ({r['constrained_frames']} frames, {r['constrained_components']} components)"
               if "chain_every" in r else f"{r['dof']}")
        lines.append(f"| {r['joints']} | {dof} | " + " | ".join(cells) + " |")
    for title, fit in fits.items():
        lines += ["", f"Growth exponents, {title} (slope of log value vs log DoF; mean ± sd over rounds "
                  "[min, max]; through the medians):", "",
                  "| solver | time per target | iterations | time per iteration |", "|---|---|---|---|"]
        for s, q in fit.items():
            cells = []
            for qty in ("cpu_ms_per_target", "iterations_per_target", "cpu_ms_per_iteration"):
                e = q.get(qty)
                cells.append("—" if e is None else
                             f"{e['mean']:.2f} ± {e['sd']:.2f} [{e['min']:.2f}, {e['max']:.2f}]; {e['of_medians']:.2f}")
            lines.append(f"| {LABELS[s]} | " + " | ".join(cells) + " |")
    parts = [p for p in PARTS if p in rows[0]]
    if parts:
        lines += ["", "Parts of a step, CPU ms per call (median over rounds):", "",
                  "| DoF | " + " | ".join(p.replace("_cpu_ms", "") for p in parts) + " |", "|---|" + "---|" * len(parts)]
        lines += [f"| {r['dof']} | " + " | ".join(f"{r[p]:.3f}" for p in parts) + " |" for r in rows]
    lines += ["", "Cost model a + b n over the joint counts (medians; n_half = a / b, the DoF where the part "
              "per DoF equals the fixed part):", "", "| quantity | fixed a, ms | b, ms per DoF | n_half, DoF |",
              "|---|---|---|---|"]
    for key, f in linear_costs(rows).items():
        lines.append(f"| {key} | {f['fixed_ms']:.3f} | {f['per_dof_ms']:.5f} | {f['dof_half']:.0f} |")
    if len(rows) >= 3:
        lines += ["", "Cost model a + b n + c n^2 (medians):", "",
                  "| quantity | a, ms | b, ms per DoF | c, ms per DoF^2 |", "|---|---|---|---|"]
        for key, f in linear_costs(rows, 2).items():
            lines.append(f"| {key} | {f['fixed_ms']:.3f} | {f['per_dof_ms']:.5f} | {f['per_dof2_ms']:.2e} |")
    return "\n".join(lines) + "\n"
