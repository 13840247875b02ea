"""Measurements of the pose-chain model and the IK solvers (the tables of docs/ik.md).

* :func:`forward_table`: per chain element, mean / p95 position (mm) and orientation (deg) error
  of the model against Pinocchio on configurations uniform over the full joint ranges.
* :func:`ik_table`: IK over random reachable targets (the FK of a random configuration, so every
  target is reachable) from the chain's home pose, for each solver variant and target family:
  ``random`` (uniform over 95 % of the ranges), ``near_limits`` (every joint within the outer
  5 % of its range), ``near_singular`` (iiwa/Panda: the elbow, joint 4, within 0.05 rad of
  straight or of its limit; the wrist joint 6 within 0.05 rad of 0). Masks: ``pose`` (position
  and both axes) and ``position`` (orientation free).

Solver variants (:data:`SOLVERS`): ``dls`` (Pinocchio Jacobian, the baseline); ``learned``
(gradient descent through the model, no true FK); ``learned+correction`` (the same, then target
correction rounds); ``learned+correction+polish`` (then Levenberg-Marquardt steps with the
model's Jacobian on the true residual); ``learned-gn`` (those steps alone, from the start: no
gradient descent); ``learned-broyden`` (the same with the network's Jacobian only every
:data:`BROYDEN_EVERY` steps, Broyden secant updates in between: solver.py). Every variant runs from ``starts`` starts (home, then seeded random ones;
multistart.py) and keeps the best true result. ``start_set="neighbour"``: home, then the
``starts`` - 1 configurations of a table over the full ranges whose true pose is nearest the
target (diagnosis.neighbour_starts), the same for every solver.
"""

from __future__ import annotations

import numpy as np

from dynlearn_ros.learning.ik.chain import Chain
from dynlearn_ros.learning.ik.dls import DLSIK
from dynlearn_ros.learning.ik.multistart import solve_multistart, start_configs
from dynlearn_ros.learning.ik.problem import IKProblem
from dynlearn_ros.learning.ik.solver import LearnedIK
from dynlearn_ros.learning.ik.training import evaluate

FAMILIES = ("random", "near_limits", "near_singular")
MASKS = ("pose", "position")
SOLVERS = ("dls", "learned", "learned+correction", "learned+correction+polish", "learned-gn", "learned-broyden")
BROYDEN_EVERY = 10  # learned-broyden: the network's Jacobian every 10 steps, Broyden updates between
START_SEED = 1000  # + the target seed: the random starts of multi-start runs
START_SETS = ("random", "neighbour")


def solver_variants(model, chain: Chain, names=SOLVERS, corrections: int = 10, polish: int = 100) -> dict:
    """{name: solver} for the requested variants (module docstring); learned ones need a model."""
    make = {"dls": lambda: DLSIK(chain),
            "learned": lambda: LearnedIK(model, chain, corrections=0),
            "learned+correction": lambda: LearnedIK(model, chain, corrections=corrections),
            "learned+correction+polish": lambda: LearnedIK(model, chain, corrections=corrections, polish=polish),
            "learned-gn": lambda: LearnedIK(model, chain, max_iter=0, polish=polish),
            "learned-broyden": lambda: LearnedIK(model, chain, max_iter=0, polish=polish, jacobian_every=BROYDEN_EVERY)}
    bad = [n for n in names if n not in make]
    if bad:
        raise ValueError(f"unknown solver(s) {bad}; choose from {SOLVERS}")
    return {n: make[n]() for n in names if n == "dls" or model is not None}


def forward_table(model, chain: Chain, count: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    err = evaluate(model, chain, chain.sample(rng, count, 1.0))
    return {"pos_mm_mean": (1e3 * err["pos_m"].mean(0)).tolist(),
            "pos_mm_p95": (1e3 * np.percentile(err["pos_m"], 95, axis=0)).tolist(),
            "rot_deg_mean": err["rot_deg"].mean(0).tolist(),
            "rot_deg_p95": np.percentile(err["rot_deg"], 95, axis=0).tolist()}


def target_configs(chain: Chain, family: str, count: int, rng: np.random.Generator) -> np.ndarray:
    """(count, n) configurations whose FK gives the targets of ``family``."""
    if family == "random":
        return chain.sample(rng, count, 0.95)
    mid, half = 0.5 * (chain.lower + chain.upper), 0.5 * (chain.upper - chain.lower)
    if family == "near_limits":
        sign = rng.choice([-1.0, 1.0], size=(count, chain.n))
        return mid + sign * half * rng.uniform(0.95, 0.999, size=(count, chain.n))
    if family == "near_singular":
        q = chain.sample(rng, count, 0.95)
        if chain.n >= 6:
            q[:, 3] = np.where(rng.random(count) < 0.5, rng.uniform(-0.05, 0.05, count),
                               chain.lower[3] + rng.uniform(0.0, 0.05, count)) if chain.lower[3] < -0.05 else q[:, 3]
            # the Panda's elbow cannot straighten (upper limit -0.07 rad): "near straight" is then
            # its upper limit; without the clip half of its targets were out of the joint range
            q[:, 3] = np.clip(q[:, 3], chain.lower[3], chain.upper[3])
            q[:, 5] = np.clip(rng.uniform(-0.05, 0.05, count), chain.lower[5], chain.upper[5])
        else:  # generic: the whole chain nearly straight
            q *= 0.02
        return q
    raise ValueError(f"unknown target family {family!r}; choose from {FAMILIES}")


def problem_for(chain: Chain, pose_chain: np.ndarray, mask: str) -> IKProblem:
    w = np.zeros_like(pose_chain)
    w[-1, :3] = 1.0
    if mask == "pose":
        w[-1, 3:] = 1.0
    elif mask != "position":
        raise ValueError(f"unknown mask {mask!r}; choose from {MASKS}")
    return IKProblem.from_pose_chain(pose_chain, w)


def summarize(results: list) -> dict:
    ok = np.array([r.success for r in results])
    pos = np.array([r.pos_err_m for r in results])
    rot = np.array([r.rot_err_deg for r in results])
    return {"n": len(results), "success": float(ok.mean()),
            "pos_mm_median": float(1e3 * np.median(pos)), "rot_deg_median": float(np.median(rot)),
            "iterations_mean": float(np.mean([r.iterations for r in results])),
            "corrections_mean": float(np.mean([r.corrections for r in results])),
            "solve_ms_mean": float(1e3 * np.mean([r.solve_s for r in results])),
            "solve_ms_p95": float(1e3 * np.percentile([r.solve_s for r in results], 95))}


def ik_table(model, chain: Chain, count: int, seed: int, families=FAMILIES, masks=MASKS,
             corrections: int = 5, single: int = 10, log=print, solvers=SOLVERS[:3], starts: int = 1,
             polish: int = 100, until_success: bool = False, start_set: str = "random") -> dict:
    """{family: {mask: {solver: summary}}} for the ``solvers`` variants, each from ``starts``
    starts (home first; multistart.py).

    The learned solvers run all ``count`` x ``starts`` (target, start) pairs as one batch
    (``solve_ms_*`` = the batch's wall time per target) and the first ``single`` targets one at
    a time (``single_ms_mean``: a single request, the node's case); DLS runs one target at a
    time, its starts in turn until one succeeds (both times are its per-target time).
    ``until_success``: the learned solvers too run start j only for the targets no earlier start
    solved (one batch per start; the same success, far less work: multistart.py).
    ``success_by_starts[k]``: the fraction solved within the first k + 1 starts (exact for DLS
    and ``until_success``, where the kept start is the first that succeeded)."""
    if start_set not in START_SETS:
        raise ValueError(f"unknown start set {start_set!r}; choose from {START_SETS}")
    rng = np.random.default_rng(seed)
    variants = solver_variants(model, chain, solvers, corrections, polish)
    start_qs = start_configs(chain, None, starts, seed=START_SEED + seed)
    out: dict = {}
    for fam in families:
        qs = target_configs(chain, fam, count, rng)
        chains = chain.fk_batch(qs)
        out[fam] = {}
        for mask in masks:
            out[fam][mask] = {}
            problems = [problem_for(chain, pc, mask) for pc in chains]
            if start_set == "neighbour":
                from dynlearn_ros.learning.ik.diagnosis import neighbour_starts

                start_qs = np.concatenate([np.broadcast_to(chain.home, (len(problems), 1, chain.n)),
                                           neighbour_starts(chain, problems, starts - 1, seed=START_SEED + seed)], axis=1)
            for name, s in variants.items():
                res = solve_multistart(s, start_qs, problems, until_success)
                if isinstance(s, LearnedIK):
                    one = [solve_multistart(s, start_qs[i] if start_qs.ndim == 3 else start_qs, [p], until_success)[0].solve_s
                           for i, p in enumerate(problems[:single])]
                else:
                    one = [r.solve_s for r in res[:single]]
                out[fam][mask][name] = summarize(res)
                out[fam][mask][name]["starts"] = starts
                out[fam][mask][name]["start_set"] = start_set
                out[fam][mask][name]["until_success"] = bool(until_success or not isinstance(s, LearnedIK))
                out[fam][mask][name]["success_by_starts"] = [
                    float(np.mean([r.success and r.start <= k for r in res])) for k in range(starts)]
                out[fam][mask][name]["single_ms_mean"] = float(1e3 * np.mean(one)) if one else None
                log(f"{chain.name} seed {seed} {fam:<13} {mask:<8} {name:<25} x{starts} "
                    f"success {100 * out[fam][mask][name]['success']:5.1f} %  "
                    f"{out[fam][mask][name]['solve_ms_mean']:7.1f} ms amortized, "
                    f"{out[fam][mask][name]['single_ms_mean'] or float('nan'):7.1f} ms single")
    return out
