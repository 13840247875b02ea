"""The chain-constraint sweep (`ik tasks --scaling-chain-every M`): which frames its targets
constrain, the stacked multi-frame Jacobian DLS takes, every solver on such targets, a masked
frame left free, and the quadratic cost model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dynlearn_ros.learning.ik.chain import ARM40_LINK_M, POSE_DIM, chain
from dynlearn_ros.learning.ik.dls import DLSIK
from dynlearn_ros.learning.ik.evaluation import BROYDEN_EVERY
from dynlearn_ros.learning.ik.problem import IKProblem
from dynlearn_ros.learning.ik.scaling import _targets, chain_frames, chain_weight, linear_costs, scaling
from dynlearn_ros.learning.ik.solver import LearnedIK

ARM40_MODEL = Path(__file__).resolve().parents[2] / "models" / "ik_arm40"


def test_chain_frames_are_every_mth_joints_frame():
    """armN's joint j frame is element 2j - 1. Known answer independent of that formula: at
    q = 0 the arm is straight up z, joint j's frame sits (j - 1) links above the base (the first
    joint's placement is 0, every later one a link), so the constrained frames' heights must be
    (j - 1) * link for j = M, 2M, ...; an off-by-one element (the joint's first DoF) sits at the
    same height, so the x axis is checked too: after the y DoF at 0 it is still +x, and the
    element after it (the next joint's x DoF) is one link higher."""
    assert chain_frames(8, 4) == [7]
    assert chain_frames(9, 4) == [7, 15]
    assert chain_frames(80, 4) == [2 * j - 1 for j in range(4, 80, 4)] and len(chain_frames(80, 4)) == 19
    assert chain_frames(3, 4) == []
    with pytest.raises(ValueError, match=">= 1"):
        chain_frames(8, 0)
    c = chain("arm9")
    pose = c.fk(np.zeros(c.n))
    frames = chain_frames(9, 4)
    np.testing.assert_allclose(pose[frames, 2], [3 * ARM40_LINK_M, 7 * ARM40_LINK_M], atol=1e-12)
    np.testing.assert_allclose(pose[[f + 1 for f in frames], 2], [4 * ARM40_LINK_M, 8 * ARM40_LINK_M], atol=1e-12)
    # the frame after joint j's second DoF moves with that DoF: rotating it turns the next link
    q = np.zeros(c.n)
    q[frames[0]] = 0.3  # joint 4's y DoF
    moved = c.fk(q)
    np.testing.assert_allclose(moved[frames[0], :3], pose[frames[0], :3], atol=1e-12)  # its own origin stays
    assert abs(moved[frames[0] + 2, 0] - ARM40_LINK_M * np.sin(0.3)) < 1e-12  # the next joint's frame swings
    w = chain_weight(c, 4)
    assert set(np.flatnonzero(w.any(axis=1))) == {7, 15, c.n - 1}
    assert np.all(w[frames] == np.r_[np.ones(3), np.zeros(6)]) and np.all(w[-1] == 1)
    np.testing.assert_array_equal(chain_weight(c, None).any(axis=1), np.arange(c.n) == c.n - 1)
    with pytest.raises(ValueError, match="two DoF per joint"):
        chain_weight(chain("planar3"), 1)


def test_stacked_jacobian_of_every_constrained_frame_equals_central_differences():
    """DLS's system for chain targets on arm6 (every 2nd joint: elements 3 and 7, positions,
    plus the end effector's 9 components) is 3 * 2 + 9 = 15 rows, each the derivative of its
    component, positions / 0.1 m. Central differences of the full FK, h = 1e-6 rad: truncation
    h^2 |f'''| / 6 ~ 1e-13 (a 0.15 m arm), rounding ~1e-16 / h * 10 (the 1 / 0.1 m scale) ~ 1e-9;
    1e-7 leaves margin. A wrong frame index moves a row by a link's lever (~0.25 after scaling)
    and a dropped row changes the shape: both fail."""
    c = chain("arm6")
    q = c.sample(np.random.default_rng(3), 1, 0.6)[0]
    target = c.fk(c.sample(np.random.default_rng(4), 1, 0.3)[0])
    p = IKProblem(target, chain_weight(c, 2))
    elements = [int(k) for k in np.flatnonzero(p.constrained)]
    assert elements == [3, 7, c.n - 1]
    stacked = c.jacobians(q, elements)
    for i, k in enumerate(elements):
        np.testing.assert_array_equal(stacked[i], c.jacobian(q, k))
    jac, res = DLSIK(c)._system(q, c.fk(q), p)
    assert jac.shape == (15, c.n) and res.shape == (15,)
    comps = np.flatnonzero(p.weight.reshape(-1) > 0)
    unit = np.tile(np.where(np.arange(POSE_DIM) < 3, 0.1, 1.0), c.n)[comps]
    h = 1e-6
    fd = np.empty_like(jac)
    for j in range(c.n):
        dq = np.zeros(c.n)
        dq[j] = h
        fd[:, j] = (c.fk(q + dq).reshape(-1) - c.fk(q - dq).reshape(-1))[comps] / (2 * h) / unit
    assert np.abs(fd).max() > 0.1
    np.testing.assert_allclose(jac, fd, atol=1e-7)
    np.testing.assert_allclose(res, (target.reshape(-1) - c.fk(q).reshape(-1))[comps] / unit, atol=1e-12)


@pytest.fixture(scope="module")
def arm6_net():
    """The shipped arm40 model moved to arm6 (the sweep's way: the same weights on another
    chain's geometry); at 12 DoF its tip error is a few millimetres."""
    from dynlearn_ros.learning.ik.store import load

    torch.set_num_threads(1)
    model, _, _ = load(ARM40_MODEL, expect_chain="arm40")
    c = chain("arm6")
    return model.on_geometry(torch.as_tensor(c.geometry)), c


def test_every_solver_reaches_chain_targets_from_a_known_configuration(arm6_net):
    """Targets = the FK of known configurations (so an exact solution exists) on arm6 with every
    2nd joint's frame and the end-effector pose constrained; every solver of the sweep, from
    q = 0, must end within the issue's 5 mm / 2 deg on every constrained frame, checked here
    again from Pinocchio's FK of the returned q (not only the solver's own success flag)."""
    net, c = arm6_net
    solvers = {"dls": DLSIK(c, max_iter=200), "dls_fd": DLSIK(c, max_iter=200, jacobian="fd"),
               "learned": LearnedIK(net, c, max_iter=0, polish=100),
               "broyden": LearnedIK(net, c, max_iter=0, polish=100, jacobian_every=BROYDEN_EVERY),
               "gradient": LearnedIK(net, c, corrections=5, max_iter=100)}
    problems = _targets(c, np.random.default_rng([0, 0, 6]), 3, every=2)
    frames = chain_frames(6, 2)
    for name, s in solvers.items():
        for p in problems:
            r = s.solve(np.zeros(c.n), p)
            pose = c.fk(r.q)
            assert r.success, (name, r.pos_err_m, r.rot_err_deg)
            assert np.linalg.norm(pose[frames, :3] - p.target[frames, :3], axis=1).max() <= 5e-3, name
            assert np.linalg.norm(pose[-1, :3] - p.target[-1, :3]) <= 5e-3, name
            assert p.errors(pose)[1] <= 2.0, name
            assert np.all(r.q >= c.lower) and np.all(r.q <= c.upper), name


def test_a_masked_frame_is_free_and_its_target_value_unread():
    """Drop joint 4's frame (element 7) from a chain target on arm8 (every 2nd joint: elements
    3, 7, 11 and the end-effector pose): (a) its target value is then never read (a wild value
    there gives the bit-identical solution); (b) the solver lets it wander: 16 DoF for 15
    remaining constraints (two frames' positions, the end-effector pose's 6), so DLS's
    minimum-norm steps from q = 0 need not pass through the configuration the target came from
    (within 60 % of the ranges: 27 deg per DoF). With this seed the free frame ends 22 mm from
    where it was (> 5 mm, the tolerance, by 4x), while every constrained frame is within 5 mm;
    with the frame constrained it is met too. A mask that kept the frame's rows fails (b); one
    that read the masked value fails (a)."""
    c = chain("arm8")
    q_true = c.sample(np.random.default_rng(0), 1, 0.6)[0]
    truth = c.fk(q_true)
    w_all = chain_weight(c, 2)
    w_free = w_all.copy()
    w_free[7] = 0
    dls = DLSIK(c, max_iter=200)
    bound = dls.solve(np.zeros(c.n), IKProblem(truth, w_all))
    free = dls.solve(np.zeros(c.n), IKProblem(truth, w_free))
    wild = truth.copy()
    wild[7, :3] = 1e3
    np.testing.assert_array_equal(dls.solve(np.zeros(c.n), IKProblem(wild, w_free)).q, free.q)
    assert bound.success and free.success
    assert np.linalg.norm(c.fk(bound.q)[7, :3] - truth[7, :3]) <= 5e-3
    assert np.linalg.norm(c.fk(free.q)[7, :3] - truth[7, :3]) > 5e-3
    assert np.linalg.norm(c.fk(free.q)[[3, 11], :3] - truth[[3, 11], :3], axis=1).max() <= 5e-3


def test_chain_sweep_rows_count_their_frames_and_dls_solves_them():
    """No model: both Jacobian methods on arm4 and arm5 with every 2nd joint's frame (joint 2
    on arm4; joints 2 and 4 on arm5), two rounds; targets from the FK of configurations within
    30 % of the ranges are reachable, so both must solve all of them."""
    rows = scaling((4, 5), targets=2, rounds=2, chain_every=2, log=lambda *_: None)
    assert [(r["constrained_frames"], r["constrained_components"]) for r in rows] == [(2, 12), (3, 15)]
    for r in rows:
        assert r["dls_success"] == 1.0 and r["dls_fd_success"] == 1.0
        assert len(r["per_round"]["dls_cpu_ms_per_target"]) == 2 and "gradient_cpu_ms_per_target" not in r


def test_quadratic_cost_fit_recovers_known_coefficients():
    """a + b n + c n^2 through four exact points must return a, b, c (to round-off), and the
    linear fit of the same rows keeps its keys; too few rows are refused."""
    rows = [{"dof": n, "dls_cpu_ms_per_iteration": 0.5 + 0.02 * n + 3e-4 * n * n} for n in (10, 20, 40, 80)]
    f = linear_costs(rows, 2)["dls_cpu_ms_per_iteration"]
    assert f["fixed_ms"] == pytest.approx(0.5, abs=1e-9) and f["per_dof_ms"] == pytest.approx(0.02, abs=1e-10)
    assert f["per_dof2_ms"] == pytest.approx(3e-4, abs=1e-12)
    assert f["dof_quadratic"] == pytest.approx(0.02 / 3e-4)
    assert set(linear_costs(rows)["dls_cpu_ms_per_iteration"]) == {"fixed_ms", "per_dof_ms", "dof_half"}
    with pytest.raises(ValueError, match="at least 3"):
        linear_costs(rows[:2], 2)


def test_ik_tasks_cli_runs_the_chain_sweep_and_writes_the_quadratic_cost_model(tmp_path):
    """`ik tasks --no-tasks --scaling-chain-every 2` without a model on arm3 ... arm5: the rows
    carry their constrained frames (joint 2, then joints 2 and 4, plus the end effector), the
    JSON the a + b n + c n^2 fit beside the linear one, the markdown the frame counts."""
    import json

    from dynlearn_ros.cli import main

    out, md = tmp_path / "s.json", tmp_path / "s.md"
    assert main(["ik", "tasks", "--no-tasks", "--scaling", "3", "4", "5", "--rounds", "1", "--scaling-targets", "1",
                 "--scaling-chain-every", "2", "--json", str(out), "--md", str(md)]) == 0
    res = json.loads(out.read_text())
    assert [r["constrained_frames"] for r in res["scaling"]] == [2, 2, 3]
    assert all(r["chain_every"] == 2 for r in res["scaling"])
    assert set(res["scaling_costs_quadratic"]["dls_cpu_ms_per_iteration"]) >= {"per_dof2_ms", "fixed_ms"}
    assert "| 5 | 10 (3 frames, 15 components) |" in md.read_text()


def test_the_sweep_times_numpy_on_one_blas_thread_and_restores_it():
    """threadpoolctl (installed with scikit-learn; without it the sweep leaves BLAS as it is):
    every round's log line is written inside the one-thread limit, and the limit is lifted after."""
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads() -> set:
        return {p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"}

    before = blas_threads()
    during = []
    scaling((2, 3), targets=1, rounds=2, chain_every=1, log=lambda *_: during.append(blas_threads()))
    assert during == [{1}, {1}] and blas_threads() == before


def test_the_sweep_times_only_the_named_solvers_and_refuses_others():
    """``solvers``: with the arm40 model on arm3 and arm4 chain targets, asking for dls and the
    gradient solver times those two and no other (learned-gn, learned-broyden, DLS-FD absent
    from the rows); a name that is no solver, or one that does not run with these targets
    (broyden_once is not run on chain targets) or without a model, is refused before any timing."""
    from dynlearn_ros.learning.ik.store import load

    model, _, _ = load(ARM40_MODEL)
    rows = scaling((3, 4), model=model, targets=1, rounds=1, chain_every=2, step_costs=False,
                   max_iter=5, corrections=1, solvers=("dls", "gradient"), log=lambda *_: None)
    for r in rows:
        timed = {k[: -len("_cpu_ms_per_target")] for k in r if k.endswith("_cpu_ms_per_target")}
        assert timed == {"dls", "gradient"}
    for bad, kwargs in ((("dls", "nope"), {"model": model}), (("broyden_once",), {"model": model, "chain_every": 2}),
                        (("learned",), {}), ((), {})):
        with pytest.raises(ValueError, match="solvers"):
            scaling((3,), targets=1, rounds=1, solvers=bad, log=lambda *_: None, **kwargs)
