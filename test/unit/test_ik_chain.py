"""Kinematic chains (Pinocchio) against closed forms, and the damped-least-squares baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dynlearn_ros.learning.ik.chain import POSE_DIM, chain, planar_fk
from dynlearn_ros.learning.ik.dls import DLSIK
from dynlearn_ros.learning.ik.problem import IKProblem


@pytest.mark.parametrize("n", [2, 3])
def test_planar_chain_matches_closed_form(n):
    c = chain(f"planar{n}")
    rng = np.random.default_rng(n)
    for q in c.sample(rng, 20):
        # float64 FK of the same formula: equal to rounding (1e-12 m on a 1 m arm)
        np.testing.assert_allclose(c.fk(q), planar_fk(q), atol=1e-12)


def test_planar_closed_form_is_sensitive_to_order_and_sign():
    """The known answer the learned tests use: a shifted or sign-flipped joint sequence moves the
    tip by a large fraction of the 1 m reach (so those bugs cannot hide in a 5 cm tolerance)."""
    q = np.array([0.4, -1.1, 0.8])
    tip = planar_fk(q)[-1, :3]
    assert np.linalg.norm(planar_fk(np.roll(q, 1))[-1, :3] - tip) > 0.1
    assert np.linalg.norm(planar_fk(-q)[-1, :3] - tip) > 0.1


def test_arm40_layout():
    c = chain("arm40")
    assert c.n == 80
    assert np.allclose(c.lower, -math.pi / 4) and np.allclose(c.upper, math.pi / 4)
    straight = c.fk(np.zeros(80))
    np.testing.assert_allclose(straight[-1, :3], [0, 0, 1.0], atol=1e-12)  # 40 links of 2.5 cm
    # DoF 0 turns about x, DoF 1 about y: a small angle on each moves the tip along -y / +x
    q = np.zeros(80)
    q[0] = 0.01
    assert c.fk(q)[-1, 1] < -0.009
    q[:] = 0
    q[1] = 0.01
    assert c.fk(q)[-1, 0] > 0.009


@pytest.mark.parametrize("name", ["iiwa", "panda", "planar3"])
def test_jacobian_matches_finite_differences(name):
    """DLS relies on dp = J_v dq and dx = -[x]x J_w dq; check both against central differences
    (h = 1e-6 rad: truncation O(h^2) ~ 1e-12, rounding ~ 1e-16/h ~ 1e-10)."""
    c = chain(name)
    q = c.sample(np.random.default_rng(3), 1, 0.5)[0]
    k = c.n - 1
    jac = c.jacobian(q, k)
    x = c.fk(q)[k, 3:6]
    h = 1e-6
    for j in range(c.n):
        dq = np.zeros(c.n)
        dq[j] = h
        d = (c.fk(q + dq)[k] - c.fk(q - dq)[k]) / (2 * h)
        np.testing.assert_allclose(d[:3], jac[:3, j], atol=1e-7)
        np.testing.assert_allclose(d[3:6], np.cross(jac[3:, j], x), atol=1e-7)


def test_dls_reaches_reachable_iiwa_poses():
    c = chain("iiwa")
    rng = np.random.default_rng(0)
    solver = DLSIK(c)
    ok = 0
    for q in c.sample(rng, 20, 0.6):
        pc = c.fk(q)
        w = np.zeros((c.n, POSE_DIM))
        w[-1] = 1.0
        res = solver.solve(c.home, IKProblem.from_pose_chain(pc, w))
        ok += res.success
        if res.success:  # the reported errors are the true FK's
            assert res.pos_err_m <= 5e-3 and res.rot_err_deg <= 2.0
            assert np.all(res.q >= c.lower) and np.all(res.q <= c.upper)
    # a local method from one start misses a few targets (limits, other branches); 60 % of the
    # range from the home pose is its easy regime, so at least 17 of 20 must converge
    assert ok >= 17


@pytest.mark.parametrize("name", ["iiwa", "arm5"])
def test_dls_fd_jacobian_matches_analytic_rows(name):
    """dls-fd's forward-difference system equals the analytic one row for row (same masked
    components, order, units and weights). h = 1e-6 rad: the truncation error is h/2 |f''| with
    |f''| <= reach / pos_unit (~13 for the iiwa's 1.3 m) -> <= 1e-5; rounding ~1e-16/h ~ 1e-10.
    A mask with a free heading (x axis off) checks that the masked rows are dropped alike."""
    c = chain(name)
    q = c.sample(np.random.default_rng(5), 1, 0.7)[0]
    target = c.fk(c.sample(np.random.default_rng(6), 1, 0.7)[0])
    w = np.zeros((c.n, POSE_DIM))
    w[-1, :3], w[-1, 6:] = 1.0, 0.5
    if c.n > 3:
        w[2, :3] = 1.0  # an intermediate element too
    p = IKProblem(target, w)
    pose = c.fk(q)
    elements = [int(k) for k in np.flatnonzero(p.constrained)]
    ja, ra = DLSIK(c)._system(q, pose, p)
    jf, rf = DLSIK(c, jacobian="fd")._system_fd(q, pose, p, elements)
    assert jf.shape == ja.shape and np.abs(ja).max() > 0.1
    np.testing.assert_allclose(rf, ra, atol=1e-12)
    np.testing.assert_allclose(jf, ja, atol=2e-5)


def test_dls_fd_reaches_the_targets_dls_reaches():
    """The forward-difference Jacobian is exact to 1e-5, so dls-fd takes the analytic solver's
    steps to within that and must solve the same targets, each within 5 mm / 2 deg."""
    c = chain("iiwa")
    rng = np.random.default_rng(1)
    w = np.zeros((c.n, POSE_DIM))
    w[-1] = 1.0
    solved = 0
    for q in c.sample(rng, 6, 0.6):
        p = IKProblem.from_pose_chain(c.fk(q), w)
        a, f = DLSIK(c).solve(c.home, p), DLSIK(c, jacobian="fd").solve(c.home, p)
        assert a.success == f.success
        assert abs(a.iterations - f.iterations) <= 2
        solved += f.success
    assert solved >= 5  # 60 % of the range from home: DLS's easy regime (test above: >= 17 of 20)
    with pytest.raises(ValueError, match="jacobian"):
        DLSIK(c, jacobian="numeric")


def test_masked_component_is_left_free_dls():
    """planar2 has 2 DoF: tip position (x, y) and heading cannot both be set. Ask for the tip of
    configuration A with the heading of configuration B: with the heading masked the position is
    met and the heading goes wherever that puts it (far from B's); unmasked, the solver must
    compromise, so the position misses."""
    c = chain("planar2")
    qa, qb = np.array([0.5, 0.9]), np.array([-1.0, -0.4])
    target = c.fk(qa)
    target[-1, 3:] = c.fk(qb)[-1, 3:]
    w = np.zeros((2, POSE_DIM))
    w[-1, :3] = 1.0
    free = DLSIK(c).solve(np.zeros(2), IKProblem(target, w))
    assert free.success and free.pos_err_m < 5e-3
    heading = c.fk(free.q)[-1, 3:6]
    assert np.degrees(np.arccos(np.clip(heading @ target[-1, 3:6], -1, 1))) > 30.0  # wandered
    w[-1, 3:] = 1.0
    tied = DLSIK(c).solve(np.zeros(2), IKProblem(target, w))
    # the heading constraint pulls the tip out of tolerance (positions weigh 1/0.1 m against
    # 1/rad for the axes, so the compromise stays close in position but not within 5 mm)
    assert not tied.success and tied.pos_err_m > 5e-3


def test_problem_validation():
    w = np.zeros((3, POSE_DIM))
    with pytest.raises(ValueError, match="every component is masked"):
        IKProblem(np.zeros((3, POSE_DIM)), w)
    w[-1, 0] = 1.0
    t = np.zeros((3, POSE_DIM))
    t[-1, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        IKProblem(t, w)
    t[-1, 0] = 0.0
    t[0, 0] = np.nan  # NaN on a masked component is fine: don't care
    IKProblem(t, w)
