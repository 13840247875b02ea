"""Multi-start IK and the learned solver's polish (Levenberg-Marquardt through the model's
Jacobian on the true residual), on the planar arms whose forward kinematics has a closed form,
and the chain-relative model's composition."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dynlearn_ros.learning.ik.chain import POSE_DIM, chain, planar_fk
from dynlearn_ros.learning.ik.dls import DLSIK
from dynlearn_ros.learning.ik.model import (
    PoseChainLSTM,
    compose,
    compose_sequential,
    orthonormalize,
    relative,
)
from dynlearn_ros.learning.ik.multistart import solve_multistart, start_configs
from dynlearn_ros.learning.ik.problem import IKProblem
from dynlearn_ros.learning.ik.solver import LearnedIK, broyden_update
from dynlearn_ros.learning.ik.training import TrainConfig, chain_errors, train


@pytest.fixture(scope="module")
def planar3_model():
    """A small absolute model of the 3-link planar arm (a few seconds): accurate to centimetres,
    i.e. far from the 5 mm the IK needs - what the polish has to make up for."""
    torch.set_num_threads(1)
    c = chain("planar3")
    cfg = TrainConfig(hidden=32, layers=1, stages=2, samples_per_stage=4000, epochs_per_stage=3,
                      final_epochs=6, batch=64, lr=1e-2, seed=0, threads=1)
    model, _ = train(c, cfg, log=lambda *_: None)
    return model, c


def _position_problem(q: np.ndarray, heading: bool = False) -> IKProblem:
    w = np.zeros((q.size, POSE_DIM))
    w[-1, :3] = 1.0
    if heading:
        w[-1, 3:] = 1.0
    return IKProblem.from_pose_chain(planar_fk(q), w)


def _reached(p: IKProblem, r) -> bool:
    """The true end effector of the solution within the success bounds (5 mm, 2 deg heading)."""
    fk = planar_fk(r.q)[-1]
    return bool(np.linalg.norm(fk[:3] - p.target[-1, :3]) <= 5e-3
                and np.degrees(np.arccos(np.clip(fk[3:6] @ p.target[-1, 3:6], -1, 1))) <= 2.0)


def _assert_reached(p: IKProblem, r) -> None:
    """The true end effector of the solution within the success bounds (5 mm, 2 deg heading)."""
    fk = planar_fk(r.q)[-1]
    assert np.linalg.norm(fk[:3] - p.target[-1, :3]) <= 5e-3
    assert np.degrees(np.arccos(np.clip(fk[3:6] @ p.target[-1, 3:6], -1, 1))) <= 2.0


def test_start_configs_order_and_reproducibility():
    c = chain("planar3")
    cur = np.array([0.1, -0.2, 0.3])
    s = start_configs(c, cur, 5, seed=7)
    assert s.shape == (5, 3)
    np.testing.assert_array_equal(s[0], cur)
    np.testing.assert_array_equal(s[1], c.home)
    np.testing.assert_array_equal(s, start_configs(c, cur, 5, seed=7))      # same seed, same starts
    assert np.all(s >= c.lower) and np.all(s <= c.upper)
    assert start_configs(c, None, 1)[0] == pytest.approx(c.home)
    with pytest.raises(ValueError):
        start_configs(c, None, 0)


@pytest.mark.parametrize("solver_kind", ["dls", "learned"])
def test_multistart_keeps_the_best_true_result(planar3_model, solver_kind):
    """Starts with a 3-iteration budget: each ends somewhere different; the kept result must be
    the start whose *true* (closed-form) error is the lowest, and its reported errors must be
    that start's own."""
    model, c = planar3_model
    solver = DLSIK(c, max_iter=3) if solver_kind == "dls" else LearnedIK(model, c, max_iter=3)
    rng = np.random.default_rng(4)
    problems = [_position_problem(q) for q in c.sample(rng, 6, 0.8)]
    starts = c.sample(np.random.default_rng(5), 4, 0.9)
    best = solve_multistart(solver, starts, problems)
    for p, r in zip(problems, best, strict=True):
        alone = [solver.solve(s, p) for s in starts]
        if solver_kind == "dls" and any(a.success for a in alone):
            continue  # DLS stops at its first success: covered by the next test
        errs = [a.pos_err_m for a in alone]
        assert r.start == int(np.argmin(errs))
        assert r.pos_err_m == pytest.approx(min(errs), rel=1e-6)
        tip = planar_fk(r.q)[-1, :3]
        assert np.linalg.norm(tip - p.target[-1, :3]) == pytest.approx(r.pos_err_m, rel=1e-6)


def test_multistart_finds_the_start_that_succeeds():
    """A start at the solution itself succeeds at once; the other starts (far away, one
    iteration) cannot: the result must be that start's, whatever its position in the list."""
    c = chain("planar3")
    q_goal = np.array([0.4, -0.6, 0.8])
    p = _position_problem(q_goal)
    starts = np.stack([np.array([-1.5, 1.5, -1.5]), np.array([1.5, 1.5, 1.5]), q_goal])
    r = solve_multistart(DLSIK(c, max_iter=1), starts, [p])[0]
    assert r.success and r.start == 2 and r.pos_err_m < 1e-9


def test_until_success_keeps_every_success_and_runs_fewer_starts(planar3_model):
    """Batched multi-start in "until success" mode: start j runs only for the targets that no
    earlier start solved. Rows of a batch are independent problems, so the set of solved targets
    must be exactly the all-starts set, and each success must name the first start that solves
    its target alone; the number of (target, start) solves must be below targets x starts."""
    model, c = planar3_model
    rng = np.random.default_rng(11)
    gn = LearnedIK(model, c, max_iter=0, polish=60)
    problems = [_position_problem(q, heading=True) for q in c.sample(rng, 10, 0.8)]
    starts = start_configs(c, None, 4, seed=0)
    every = solve_multistart(gn, starts, problems)
    calls = []
    real = gn.solve_batch
    gn.solve_batch = lambda q0, ps, *a: calls.append(len(ps)) or real(q0, ps, *a)
    first = solve_multistart(gn, starts, problems, until_success=True)
    assert [r.success for r in first] == [r.success for r in every]
    assert sum(calls) < len(problems) * len(starts) and calls[0] == len(problems)
    for p, r in zip(problems, first, strict=True):
        alone = [real(s[None], [p])[0].success for s in starts]
        if r.success:
            assert r.start == alone.index(True)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 17])
def test_log_depth_composition_equals_the_sequential_product(n):
    """The Hillis-Steele scan of compose() against n sequential products, float64, random
    rotations and offsets of ~1 m: the two differ only by the order of the products, a
    round-off of ~n x 1e-16 per component; 1e-12 leaves a margin of > 100x and is far below any
    ordering or indexing mistake (which would move a frame by a link, ~1)."""
    g = torch.Generator().manual_seed(n)
    dp = torch.randn(3, n, 3, generator=g, dtype=torch.float64)
    axes = orthonormalize(torch.randn(3, n, 6, generator=g, dtype=torch.float64))
    tip = torch.cat([torch.randn(3, generator=g, dtype=torch.float64),
                     orthonormalize(torch.randn(6, generator=g, dtype=torch.float64))])
    np.testing.assert_allclose(compose(dp, axes, tip).numpy(), compose_sequential(dp, axes, tip).numpy(),
                               rtol=0, atol=1e-12)


def test_polish_reaches_tolerance_where_the_model_alone_does_not(planar3_model):
    """Full-pose targets (position and heading) of random configurations: the model's own
    descent stops at its own error (no target meets 5 mm / 2 deg); the Levenberg-Marquardt steps
    with the model's Jacobian on the true residual, from 4 starts (home + 3 random), bring every
    target within the tolerance (true FK: the closed form). Every constrained component within
    5 mm / 2 deg: the issue's bar. (From home alone 2 of these 10 fail: one wrong basin, one
    stall; multi-start is part of the method.)"""
    model, c = planar3_model
    rng = np.random.default_rng(11)
    plain = LearnedIK(model, c)
    gn = LearnedIK(model, c, max_iter=0, polish=60)
    problems = [_position_problem(q, heading=True) for q in c.sample(rng, 10, 0.8)]
    assert not any(plain.solve(c.home, p).success for p in problems)
    for p, r in zip(problems, solve_multistart(gn, start_configs(c, None, 4, seed=0), problems), strict=True):
        _assert_reached(p, r)
        assert r.success and np.all(r.q >= c.lower) and np.all(r.q <= c.upper)


def test_broyden_update_is_the_secant_and_changes_nothing_across_the_step():
    """J' dq = df exactly (the secant condition, float64 round-off ~1e-15 on O(1) numbers), J'
    and J agree on a direction orthogonal to dq, and a zero step leaves J as it was."""
    rng = np.random.default_rng(3)
    jac, dq, df = rng.normal(size=(2, 9, 7)), rng.normal(size=(2, 7)), rng.normal(size=(2, 9))
    dq[1] = 0.0
    new = broyden_update(jac, dq, df)
    np.testing.assert_allclose(new[0] @ dq[0], df[0], atol=1e-12)
    v = rng.normal(size=7)
    v -= (v @ dq[0]) / (dq[0] @ dq[0]) * dq[0]
    np.testing.assert_allclose(new[0] @ v, jac[0] @ v, atol=1e-12)
    np.testing.assert_array_equal(new[1], jac[1])


def test_broyden_variant_reaches_tolerance_with_fewer_network_jacobians(planar3_model):
    """learned-broyden (the network's Jacobian every 10 steps, secant updates between) on the
    polish test's full-pose targets from the same 4 starts: at least 9 of the 10 targets within
    5 mm / 2 deg, and fewer network Jacobians (rows through model_jacobian) than steps taken.
    Not all 10: the trained model differs with the machine's float kernels, and on an AMD EPYC
    one target's 4 polishes all ended against a joint limit (q at +-2.967 rad, 24-31 mm off):
    projected secant steps stall there while the exact network Jacobian of learned-gn escapes
    (its success rates in docs/ik.md are below 100 % for that reason). A wrong secant update
    (sign, transpose) or a Jacobian taken at the wrong rows misses far more than one target."""
    model, c = planar3_model
    rng = np.random.default_rng(11)
    solver = LearnedIK(model, c, max_iter=0, polish=100, jacobian_every=10)
    rows = []
    real = solver.model_jacobian
    solver.model_jacobian = lambda q, comps: rows.append(len(q)) or real(q, comps)
    problems = [_position_problem(q, heading=True) for q in c.sample(rng, 10, 0.8)]
    res = solve_multistart(solver, start_configs(c, None, 4, seed=0), problems)
    assert sum(_reached(p, r) for p, r in zip(problems, res, strict=True)) >= 9
    assert sum(rows) < sum(r.iterations for r in res)
    with pytest.raises(ValueError):
        LearnedIK(model, c, jacobian_every=0)


def test_broyden_once_takes_one_network_jacobian_per_row_and_still_converges(planar3_model):
    """jacobian_every = polish (the scaling sweep's ``broyden_once``): the network's Jacobian is
    taken at a polish's first step only - one model_jacobian call per polish, at most one row per
    (target, start) - and the secant updates from the true residuals alone carry every target of
    the Broyden test within 5 mm / 2 deg from the same 4 starts."""
    model, c = planar3_model
    rng = np.random.default_rng(11)
    solver = LearnedIK(model, c, max_iter=0, polish=100, jacobian_every=100)
    rows, polishes = [], []
    real_jac, real_polish = solver.model_jacobian, solver._polish
    solver.model_jacobian = lambda q, comps: rows.append(len(q)) or real_jac(q, comps)
    solver._polish = lambda q0, probs, active: polishes.append(int(active.sum())) or real_polish(q0, probs, active)
    problems = [_position_problem(q, heading=True) for q in c.sample(rng, 10, 0.8)]
    res = solve_multistart(solver, start_configs(c, None, 4, seed=0), problems)
    for p, r in zip(problems, res, strict=True):
        _assert_reached(p, r)
    assert len(rows) == sum(1 for a in polishes if a > 0)  # one call per polish, none later
    assert sum(rows) <= sum(polishes)
    assert sum(r.iterations for r in res) > 2 * sum(rows)  # the steps really ran on secant updates


def test_polish_leaves_a_masked_heading_free(planar3_model):
    """Tip of configuration A with the heading of B in the target, heading masked: the position
    is met while the heading ends far (> 30 deg) from B's and from the start's: the solver let the
    free component wander wherever lowering the position error took it."""
    model, c = planar3_model
    qa, qb = np.array([0.5, 0.9, -0.4]), np.array([-1.0, -0.4, -0.9])
    target = planar_fk(qa)
    target[-1, 3:] = planar_fk(qb)[-1, 3:]
    w = np.zeros((3, POSE_DIM))
    w[-1, :3] = 1.0
    r = LearnedIK(model, c, max_iter=0, polish=60).solve(np.zeros(3), IKProblem(target, w))
    assert r.success
    heading = planar_fk(r.q)[-1, 3:6]
    angle = lambda a, b: np.degrees(np.arccos(np.clip(a @ b, -1, 1)))  # noqa: E731
    assert angle(heading, target[-1, 3:6]) > 30.0
    assert angle(heading, planar_fk(np.zeros(3))[-1, 3:6]) > 30.0


def test_relative_composition_round_trip_and_geometry_transfer():
    """compose(relative(chain)) is the chain (float64 round-off); a relative model moved to
    another joint count keeps its weights and gives n' elements."""
    c = chain("arm5")
    y = torch.as_tensor(c.fk_batch(c.sample(np.random.default_rng(0), 8)))
    r = relative(y, c.tip)
    np.testing.assert_allclose(compose(r[..., :3], r[..., 3:], c.tip).numpy(), y.numpy(), atol=1e-12)
    # the 80-DoF arm: 80 products (each rounding ~1e-16) accumulate to ~1e-14; 1e-11 = margin
    c80 = chain("arm40")
    y80 = torch.as_tensor(c80.fk_batch(c80.sample(np.random.default_rng(1), 4)))
    r80 = relative(y80, c80.tip)
    np.testing.assert_allclose(compose(r80[..., :3], r80[..., 3:], c80.tip).numpy(), y80.numpy(), atol=1e-11)
    # every joint frame of an x-then-y arm sits one link (or 0) from the previous one
    np.testing.assert_allclose(np.sort(np.unique(np.round(r[..., :3].norm(dim=-1).numpy(), 9))), [0.0, 0.025])
    m = PoseChainLSTM(torch.as_tensor(c.geometry), c.scale, 16, 1, "relative", c.tip)
    m7 = m.on_geometry(torch.as_tensor(chain("arm7").geometry))
    assert m7.n == 14 and float(m7.scale) == float(m.scale)
    assert torch.equal(m7.head.weight, m.head.weight)
    q = torch.zeros(2, 14)
    assert m7(q).shape == (2, 14, POSE_DIM)


def test_relative_model_learns_the_arm(tmp_path):
    """A chain-relative model of a 3-joint (6-DoF) x/y arm, trained a few seconds: the tip error
    must be well under the arm's size (reach 0.1 m; random tips lie ~5 cm apart), which a model
    with a shifted input sequence does not achieve."""
    from dynlearn_ros.learning.ik.store import load, save

    torch.set_num_threads(1)
    c = chain("arm3")
    cfg = TrainConfig(hidden=32, layers=1, stages=1, samples_per_stage=6000, epochs_per_stage=4,
                      final_epochs=0, batch=128, lr=1e-2, seed=0, outputs="relative")
    model, _ = train(c, cfg, log=lambda *_: None)
    q = c.sample(np.random.default_rng(3), 300)
    with torch.no_grad():
        pred = model(torch.as_tensor(q, dtype=torch.float32)).double().numpy()
        shifted = model(torch.as_tensor(np.roll(q, 1, axis=1), dtype=torch.float32)).double().numpy()
    true = c.fk_batch(q)
    err = chain_errors(pred, true)["pos_m"][:, -1].mean()
    spread = np.linalg.norm(true[:, -1, :3] - true[:, -1, :3].mean(0), axis=1).mean()
    assert err < 0.25 * spread
    assert chain_errors(shifted, true)["pos_m"][:, -1].mean() > 2 * err
    save(model, c, tmp_path / "m")
    loaded, _, meta = load(tmp_path / "m")
    assert meta["model"]["outputs"] == "relative"
    with torch.no_grad():
        assert torch.equal(loaded(torch.as_tensor(q[:4], dtype=torch.float32)),
                           model(torch.as_tensor(q[:4], dtype=torch.float32)))


def test_model_jacobian_matches_finite_differences(planar3_model):
    """The batched Jacobian (B x m copies, one backward pass) against central differences of the
    model's own output: float32 outputs of O(1) with a 1e-3 rad step leave ~1e-4 of round-off
    (1e-7 / 1e-3) plus O(eps^2) curvature, far below the entries (O(0.1-1))."""
    model, c = planar3_model
    solver = LearnedIK(model, c)
    q = c.sample(np.random.default_rng(2), 4, 0.8)
    comps = np.array([18, 19, 21, 22, 3, 13])    # tip px, py, x axis (x, y); element 1 and 2 components
    _, jac = solver.model_jacobian(q, comps)
    eps = 1e-3
    fd = np.zeros_like(jac)
    for k in range(c.n):
        dq = np.zeros(c.n)
        dq[k] = eps
        fd[:, :, k] = (solver.predict(q + dq).reshape(4, -1)[:, comps]
                       - solver.predict(q - dq).reshape(4, -1)[:, comps]) / (2 * eps)
    np.testing.assert_allclose(jac, fd, atol=2e-3)
    assert np.abs(jac).max() > 0.1
