"""Why the learned solver misses targets near the joint limits: three candidate causes, each
measured on its own (docs/ik.md, "Near the joint limits: the cause").

1. *Coverage of the training curriculum.* Its last stage samples every joint uniformly over its
   full range, so each joint's outer 5 % is seen, but all joints there at once (a corner of the
   7-D box, probability 0.1^7 under that distribution) never is. :func:`accuracy_by_limits`
   measures the network near k = 0 .. n joints in the outer 5 % of their ranges: its
   end-effector error and the relative error of its Jacobian, the only thing learned-gn takes
   from it (the residual is the true one).
2. *The solver's limit handling* (each step clipped to the joint limits). :class:`TrueJacobianGN`
   runs learned-gn's code unchanged (same steps, damping, clip, stopping rule, starts) with
   Pinocchio's Jacobian in place of the network's: what is left of the gap then is the clip and
   the algorithm, not the model.
3. *The starts.* ``success_by_starts`` per start count, and :func:`neighbour_starts`: starts
   taken from a table of configurations over the full ranges whose true pose is nearest the
   target, which puts a start in the target's neighbourhood.

Errors use the solvers' units: positions / ``pos_unit`` (0.1 m), axis components as they are.
"""

from __future__ import annotations

import numpy as np

from dynlearn_ros.learning.ik.chain import Chain
from dynlearn_ros.learning.ik.problem import IKProblem
from dynlearn_ros.learning.ik.solver import LearnedIK

POS_UNIT = 0.1  # m: the solvers' position unit (5 mm weighs like 0.05 rad)
EDGE = 0.05  # the outer 5 % of a joint's range: the near_limits family's band


def _skew(v: np.ndarray) -> np.ndarray:
    return np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])


def true_jacobian(chain: Chain, q: np.ndarray, comps: np.ndarray) -> np.ndarray:
    """Pinocchio's Jacobian (B, m, n) of the flat pose-chain components ``comps`` (index
    k * 9 + c) at q (B, n) rad: rows d p / dq (m/rad), d x / dq = -[x]_x J_w, d z / dq =
    -[z]_x J_w (the same derivatives the network's Jacobian approximates)."""
    q = np.atleast_2d(q)
    out = np.zeros((q.shape[0], len(comps), chain.n))
    elements = np.unique(np.asarray(comps) // 9)
    for b in range(q.shape[0]):
        pose = chain.fk(q[b], elements=[int(k) for k in elements])
        for k in elements:
            jac = chain.jacobian(q[b], int(k))
            full = np.vstack([jac[:3], -_skew(pose[k, 3:6]) @ jac[3:], -_skew(pose[k, 6:9]) @ jac[3:]])
            sel = np.flatnonzero(np.asarray(comps) // 9 == k)
            out[b, sel] = full[np.asarray(comps)[sel] % 9]
    return out


class TrueJacobianGN(LearnedIK):
    """learned-gn's code path with Pinocchio's Jacobian instead of the network's (a diagnosis:
    not a learned solver). The model still gives nothing else: learned-gn uses only its
    Jacobian."""

    name = "gn-true-jacobian"

    def model_jacobian(self, q: np.ndarray, comps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.chain.fk_batch(q), true_jacobian(self.chain, q, comps)


def configs_near_limits(chain: Chain, rng: np.random.Generator, count: int, k: int) -> np.ndarray:
    """(count, n) configurations with exactly ``k`` joints (a random subset per row) in the outer
    5 % of their ranges, at a random side, and the others in the inner 90 %."""
    return chain.sample_near_limits(rng, np.full(count, k), EDGE)


def jacobian_rel_errors(solver: LearnedIK, chain: Chain, q: np.ndarray) -> np.ndarray:
    """(B,) relative error of the network's Jacobian of the 9 end-effector components at q (B, n)
    rad: |W (J_net - J_true)|_F / |W J_true|_F with W = 1 / 0.1 m on the position rows."""
    comps = np.arange(9 * (chain.n - 1), 9 * chain.n)
    w = np.where(np.arange(9) < 3, 1.0 / POS_UNIT, 1.0)[:, None]
    jm = solver.model_jacobian(q, comps)[1]
    jt = true_jacobian(chain, q, comps)
    return np.linalg.norm(w * (jm - jt), axis=(1, 2)) / np.linalg.norm(w * jt, axis=(1, 2))


def accuracy_by_limits(model, chain: Chain, per_k: int = 100, seed: int = 0) -> list[dict]:
    """Per k = 0 .. n joints in the outer 5 %: the network's end-effector error (mm, deg;
    median) and the relative error of its Jacobian of the 9 end-effector components,
    |W (J_net - J_true)|_F / |W J_true|_F with W = 1 / 0.1 m on position rows (median, p90)."""
    from dynlearn_ros.learning.ik.training import chain_errors

    solver = LearnedIK(model, chain, max_iter=0)
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(chain.n + 1):
        q = configs_near_limits(chain, rng, per_k, k)
        err = chain_errors(solver.predict(q), chain.fk_batch(q))
        rel = jacobian_rel_errors(solver, chain, q)
        rows.append({"joints_near_limits": k, "ee_pos_mm_median": float(1e3 * np.median(err["pos_m"][:, -1])),
                     "ee_rot_deg_median": float(np.median(err["rot_deg"][:, -1])),
                     "jacobian_rel_err_median": float(np.median(rel)),
                     "jacobian_rel_err_p90": float(np.percentile(rel, 90)), "configs": per_k})
    return rows


def neighbour_starts(chain: Chain, problems: list[IKProblem], count: int, table: int = 4096,
                     seed: int = 0) -> np.ndarray:
    """(B, count, n) starts: for each problem, the ``count`` configurations of a table (``table``
    configurations uniform over the full ranges, drawn with ``seed``; true FK, computed once)
    whose pose is nearest the target on the constrained components (positions / 0.1 m,
    weighted as the problem's weights). Costs one FK per table row, once, and one
    (B x table) distance evaluation."""
    qs = chain.sample(np.random.default_rng(seed), table, 1.0)
    poses = chain.fk_batch(qs).reshape(table, -1)
    unit = np.tile(np.where(np.arange(9) < 3, POS_UNIT, 1.0), chain.n)
    out = np.empty((len(problems), count, chain.n))
    for i, p in enumerate(problems):
        w = p.weight.reshape(-1) / unit
        d = (((poses - p.target.reshape(-1)) * w) ** 2).sum(1)
        out[i] = qs[np.argsort(d)[:count]]
    return out


def plot_diagnosis(res: dict, path: str) -> None:
    """Two panels from ``ik diagnose``'s result: the network's Jacobian error (median, p90) and
    end-effector error against the number of joints near a limit; success within 1 .. S starts
    per solver and start set on the near_limits targets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.2))
    k = [r["joints_near_limits"] for r in res["accuracy"]]
    a.plot(k, [r["jacobian_rel_err_median"] for r in res["accuracy"]], "o-", label="Jacobian rel. error, median")
    a.plot(k, [r["jacobian_rel_err_p90"] for r in res["accuracy"]], "o--", label="Jacobian rel. error, p90")
    a.axhline(1.0, color="grey", lw=0.8)
    a.set_xlabel("joints in the outer 5 % of their range")
    a.set_ylabel("|W (J_net - J_true)| / |W J_true|")
    ax2 = a.twinx()
    ax2.plot(k, [r["ee_pos_mm_median"] for r in res["accuracy"]], "s:", color="C3", label="EE error mm (median)")
    ax2.set_ylabel("EE position error (mm)", color="C3")
    a.legend(loc="upper left", fontsize=8)
    a.set_title(f"{res['chain']} seed {res['seed']}: the network near the limits")
    for i, (name, rec) in enumerate(res["ik"].items()):
        xs = range(1, len(rec["success_by_starts"]) + 1)
        b.plot(xs, [100 * x for x in rec["success_by_starts"]], "o-" if rec["starts"] == "random" else "s--",
               color=f"C{i % (len(res['ik']) // 2 or 1)}", label=name)
    b.axhline(95.0, color="grey", lw=0.8)
    b.set_xticks(list(xs))
    b.set_xlabel("starts (home first)")
    b.set_ylabel("near_limits targets solved (%)")
    b.set_title("within k starts (solid: random starts, dashed: neighbour starts)")
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
