"""The near-limit diagnosis (true-Jacobian Gauss-Newton, configurations near the limits,
neighbour starts) and the joint-count scaling's exponent fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dynlearn_ros.learning.ik.chain import POSE_DIM, chain, planar_fk
from dynlearn_ros.learning.ik.diagnosis import (
    EDGE,
    TrueJacobianGN,
    configs_near_limits,
    jacobian_rel_errors,
    neighbour_starts,
    true_jacobian,
)
from dynlearn_ros.learning.ik.model import PoseChainLSTM
from dynlearn_ros.learning.ik.problem import IKProblem
from dynlearn_ros.learning.ik.scaling import growth_exponents, linear_costs, scaling
from dynlearn_ros.learning.ik.solver import LearnedIK


def _untrained(c):
    torch.manual_seed(0)
    return PoseChainLSTM(torch.as_tensor(c.geometry), c.scale, 16, 1).eval()


@pytest.mark.parametrize("name", ["iiwa", "planar3"])
def test_true_jacobian_matches_central_differences(name):
    """Components of two elements in a mixed order: each row must be d(component)/dq of the
    FK. Central differences, h = 1e-6 rad: truncation O(h^2 |f'''|) ~ 1e-12, rounding
    ~1e-16 / h ~ 1e-10; 1e-7 leaves margin and is far below a wrong row or sign (~0.1-1)."""
    c = chain(name)
    q = c.sample(np.random.default_rng(2), 2, 0.7)
    comps = np.array([9 * (c.n - 1) + 7, 0, 9 * (c.n - 1) + 1, 9 * (c.n - 1) + 4, 5])
    jac = true_jacobian(c, q, comps)
    h = 1e-6
    for b in range(2):
        for j in range(c.n):
            dq = np.zeros(c.n)
            dq[j] = h
            d = (c.fk(q[b] + dq).reshape(-1) - c.fk(q[b] - dq).reshape(-1))[comps] / (2 * h)
            np.testing.assert_allclose(jac[b, :, j], d, atol=1e-7)


def test_jacobian_rel_errors_is_zero_for_the_true_jacobian_and_large_for_an_untrained_net():
    """The scaling sweep's Jacobian error: exactly 0 when the 'network' Jacobian is Pinocchio's
    (TrueJacobianGN: the same arithmetic), and > 0.5 for an untrained network, whose Jacobian
    has nothing to do with the arm (its weights are random; a correct one has error 0)."""
    c = chain("planar3")
    q = c.sample(np.random.default_rng(4), 6, 0.6)
    net = _untrained(c)
    np.testing.assert_array_equal(jacobian_rel_errors(TrueJacobianGN(net, c, max_iter=0), c, q), np.zeros(6))
    assert np.all(jacobian_rel_errors(LearnedIK(net, c, max_iter=0), c, q) > 0.5)


def test_true_jacobian_gn_solves_what_an_untrained_networks_jacobian_cannot():
    """The diagnosis solver must take its Jacobian from Pinocchio, not the network: with an
    untrained network, learned-gn's steps go nowhere (at most a lucky target), while the same
    code with the true Jacobian solves every full-pose target of planar3 from home (60 % of the
    ranges: Gauss-Newton's easy regime), each within 5 mm / 2 deg by the closed form."""
    c = chain("planar3")
    net = _untrained(c)
    w = np.zeros((3, POSE_DIM))
    w[-1, :6] = 1.0
    problems = [IKProblem.from_pose_chain(planar_fk(q), w) for q in c.sample(np.random.default_rng(1), 8, 0.6)]
    oracle = TrueJacobianGN(net, c, max_iter=0, polish=100).solve_batch(np.tile(c.home, (8, 1)), problems)
    learned = LearnedIK(net, c, max_iter=0, polish=100).solve_batch(np.tile(c.home, (8, 1)), problems)
    assert all(r.success for r in oracle)
    assert sum(r.success for r in learned) <= 2
    for p, r in zip(problems, oracle, strict=True):
        assert np.linalg.norm(planar_fk(r.q)[-1, :3] - p.target[-1, :3]) <= 5e-3


@pytest.mark.parametrize("k", [0, 3, 7])
def test_configs_near_limits_have_exactly_k_joints_in_the_band(k):
    c = chain("iiwa")
    q = configs_near_limits(c, np.random.default_rng(k), 50, k)
    u = np.abs((q - 0.5 * (c.lower + c.upper)) / (0.5 * (c.upper - c.lower)))
    assert np.all((u >= 1 - EDGE).sum(1) == k)
    assert np.all(u < 1.0)


def test_corner_stage_draws_its_share_near_the_limits_and_only_in_the_last_stage():
    """``corner_share`` 0 must leave the curriculum's draws as they were (the shipped models stay
    reproducible); 0.25 of the last stage's 2 000 = 500 rows near the limits with k uniform over
    0 .. 7: 62.5 expected per k, binomial sd 7.4, so [30, 100] is > 4 sd either side; under the
    uniform stage alone all 7 joints are in the band with probability 1e-7 (none expected)."""
    from dynlearn_ros.learning.ik.training import TrainConfig, stage_configs

    c = chain("iiwa")
    plain = TrainConfig(stages=10, samples_per_stage=2000)
    for stage in (3, 10):
        np.testing.assert_array_equal(stage_configs(c, np.random.default_rng(1), plain, stage),
                                      c.sample(np.random.default_rng(1), 2000, stage / 10))
    cfg = TrainConfig(stages=10, samples_per_stage=2000, corner_share=0.25)
    np.testing.assert_array_equal(stage_configs(c, np.random.default_rng(1), cfg, 9),
                                  c.sample(np.random.default_rng(1), 2000, 0.9))
    q = stage_configs(c, np.random.default_rng(1), cfg, 10)
    assert q.shape == (2000, c.n) and np.all(q >= c.lower) and np.all(q <= c.upper)
    k = (np.abs((q - 0.5 * (c.lower + c.upper)) / (0.5 * (c.upper - c.lower))) >= 1 - EDGE).sum(1)
    counts = np.bincount(k[1500:], minlength=c.n + 1)
    assert np.all((counts >= 30) & (counts <= 100)), counts
    assert np.sum(k[:1500] == c.n) == 0
    with pytest.raises(ValueError, match="corner_share"):
        stage_configs(c, np.random.default_rng(1), TrainConfig(corner_share=1.5), 10)


def test_a_fine_tune_continues_from_the_given_weights():
    """``train(init=m)``: zero epochs return m's weights unchanged (it is the model trained, not a
    fresh one); 192 Adam steps (6 epochs of 512 configurations, batch 16) from an untrained net
    lower its mean EE error below 0.85 x (measured 0.72 x; an untrained net's error is the size of
    the arm, ~0.6 m, and 48 steps gave only 0.93 x: 192 leave a margin; a model that was not
    trained would stay at 1 x)."""
    from dynlearn_ros.learning.ik.training import TrainConfig, evaluate, train

    c = chain("planar3")
    m = _untrained(c)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    same, _ = train(c, TrainConfig(stages=1, samples_per_stage=256, epochs_per_stage=0, final_epochs=0,
                                   hidden=16, layers=1), log=lambda *_: None, init=m)
    assert all(torch.equal(same.state_dict()[k], v) for k, v in before.items())
    q = c.sample(np.random.default_rng(5), 256, 1.0)
    err0 = evaluate(_untrained(c), c, q)["pos_m"][:, -1].mean()
    tuned, hist = train(c, TrainConfig(stages=1, samples_per_stage=512, epochs_per_stage=0, final_epochs=6,
                                       batch=16, hidden=16, layers=1, lr=1e-2, corner_share=0.25),
                        log=lambda *_: None, init=_untrained(c))
    assert evaluate(tuned, c, q)["pos_m"][:, -1].mean() < 0.85 * err0
    assert hist["stages"][0]["range_frac"] == 1.0


def test_neighbour_starts_put_the_nearest_table_pose_first():
    """A target that is the FK of a table row has distance 0 to it: that row must be the first
    start; the others are sorted by the weighted pose distance."""
    c = chain("iiwa")
    table = c.sample(np.random.default_rng(9), 64, 1.0)  # neighbour_starts' own table (seed 9)
    w = np.zeros((c.n, POSE_DIM))
    w[-1] = 1.0
    problems = [IKProblem.from_pose_chain(c.fk(table[i]), w) for i in (5, 40)]
    starts = neighbour_starts(c, problems, 3, table=64, seed=9)
    assert starts.shape == (2, 3, c.n)
    np.testing.assert_array_equal(starts[0, 0], table[5])
    np.testing.assert_array_equal(starts[1, 0], table[40])
    unit = np.where(np.arange(9) < 3, 0.1, 1.0)
    d = [np.sum(((c.fk(s)[-1] - problems[0].target[-1]) / unit) ** 2) for s in starts[0]]
    assert d == sorted(d)


def test_growth_exponents_recover_a_known_power_law():
    """Rows of t = a * dof^1.5 (iterations ~ dof^0.5, time per iteration ~ dof^1) with a
    per-round factor that does not depend on dof: every round's slope is exactly 1.5 (0.5, 1.0)
    whatever the factor; a dof-dependent noise gives a spread > 0 and the mean near 1.5."""
    dofs = [10, 20, 40, 80]
    rng = np.random.default_rng(0)
    rows = []
    for d in dofs:
        f = np.array([1.0, 2.0, 0.5])
        its = 3.0 * d ** 0.5 * np.ones(3)
        rows.append({"dof": d, "dls_cpu_ms_per_target": 0.0,
                     "per_round": {"dls_cpu_ms_per_target": list(f * 0.1 * d ** 1.5),
                                   "dls_iterations_per_target": list(its),
                                   "dls_cpu_ms_per_iteration": list(f * 0.1 * d ** 1.5 / its)}})
    fit = growth_exponents(rows)["dls"]
    assert fit["cpu_ms_per_target"]["mean"] == pytest.approx(1.5, abs=1e-9)
    assert fit["cpu_ms_per_target"]["sd"] == pytest.approx(0.0, abs=1e-9)
    assert fit["iterations_per_target"]["of_medians"] == pytest.approx(0.5, abs=1e-9)
    assert fit["cpu_ms_per_iteration"]["max"] == pytest.approx(1.0, abs=1e-9)
    for r in rows:
        r["per_round"]["dls_cpu_ms_per_target"] = list(np.array(r["per_round"]["dls_cpu_ms_per_target"])
                                                       * rng.uniform(0.8, 1.25, 3))
    noisy = growth_exponents(rows)["dls"]["cpu_ms_per_target"]
    assert noisy["sd"] > 0 and abs(noisy["mean"] - 1.5) < 0.3  # |log 1.25| / log 8 ~ 0.1 per end
    assert growth_exponents(rows, min_dof=40)["dls"]["cpu_ms_per_target"]["per_round"] != noisy["per_round"]
    with pytest.raises(ValueError, match="two joint counts"):
        growth_exponents(rows, min_dof=80)


def test_growth_exponents_max_dof_and_linear_costs_recover_a_known_cost_model():
    """Per-iteration cost 0.6 + 0.002 n ms (the cost model's form) at n = 10 ... 320: the linear
    fit returns a and b to round-off and n_half = a / b = 300 DoF; a cost falling with n (as
    measured parts did in noise) has no growth (n_half inf); the exponent of a + b n over 10-20 DoF is below the one over 160-320 DoF (the
    fixed part dominates below n_half, the part per DoF above it), and max_dof cuts the rows."""
    dofs = [10, 20, 40, 80, 160, 320]
    rows = []
    for d in dofs:
        per_it = 0.6 + 0.002 * d
        rows.append({"dof": d, "dls_cpu_ms_per_iteration": per_it, "true_fk_cpu_ms": 0.02 - 1e-5 * d,
                     "per_round": {"dls_cpu_ms_per_target": [5 * per_it] * 2,
                                   "dls_iterations_per_target": [5.0] * 2,
                                   "dls_cpu_ms_per_iteration": [per_it] * 2}})
        rows[-1]["dls_cpu_ms_per_target"] = 5 * per_it
    costs = linear_costs(rows)
    assert costs["dls_cpu_ms_per_iteration"]["fixed_ms"] == pytest.approx(0.6, abs=1e-9)
    assert costs["dls_cpu_ms_per_iteration"]["per_dof_ms"] == pytest.approx(0.002, abs=1e-12)
    assert costs["dls_cpu_ms_per_iteration"]["dof_half"] == pytest.approx(300.0, rel=1e-6)
    assert costs["true_fk_cpu_ms"]["dof_half"] == float("inf")
    low = growth_exponents(rows, max_dof=20)["dls"]["cpu_ms_per_iteration"]["mean"]
    high = growth_exponents(rows, min_dof=160)["dls"]["cpu_ms_per_iteration"]["mean"]
    # d log(a + b n) / d log n = b n / (a + b n): 0.03-0.06 at 10-20 DoF, 0.35-0.52 at 160-320
    assert low < 0.1 < 0.3 < high < 0.6
    with pytest.raises(ValueError, match="two joint counts"):
        growth_exponents(rows, min_dof=20, max_dof=30)
    with pytest.raises(ValueError, match="two joint counts"):
        linear_costs(rows[:1])


def test_scaling_sweep_runs_both_jacobian_methods_and_keeps_every_round():
    """No model: DLS with Pinocchio's Jacobian and with finite differences on arm2 and arm3,
    two rounds of fresh targets; every round's value is kept and the row is their median."""
    rows = scaling((2, 3), targets=2, rounds=2, log=lambda *_: None)
    assert [r["dof"] for r in rows] == [4, 6]
    for r in rows:
        for s in ("dls", "dls_fd"):
            vals = r["per_round"][f"{s}_cpu_ms_per_target"]
            assert len(vals) == 2 and r[f"{s}_cpu_ms_per_target"] == pytest.approx(np.median(vals))
            assert r[f"{s}_success"] == 1.0  # 30 % of the ranges from q = 0: both must solve all
        assert "learned_cpu_ms_per_target" not in r


def test_ik_table_with_neighbour_starts_runs_home_first_and_refuses_unknown_sets():
    """DLS only (no model): the neighbour start set keeps home as start 1 (so the 1-start figure
    is the same as with random starts, which this checks) and is recorded in the summary."""
    from dynlearn_ros.learning.ik.evaluation import ik_table

    c = chain("iiwa")
    kw = dict(families=("random",), masks=("pose",), solvers=("dls",), starts=3, single=0, log=lambda *_: None)
    nb = ik_table(None, c, 6, 0, start_set="neighbour", **kw)["random"]["pose"]["dls"]
    rnd = ik_table(None, c, 6, 0, **kw)["random"]["pose"]["dls"]
    assert nb["start_set"] == "neighbour" and rnd["start_set"] == "random"
    assert len(nb["success_by_starts"]) == 3
    assert nb["success_by_starts"][0] == rnd["success_by_starts"][0]
    with pytest.raises(ValueError, match="start set"):
        ik_table(None, c, 2, 0, start_set="corners", **kw)


def test_ik_tasks_scaling_cli_writes_three_fit_ranges_and_the_cost_model(tmp_path):
    """`ik tasks --no-tasks` without a model (DLS with both Jacobians) on arm2 ... arm4: the JSON
    holds the full range, --fit-from's and --fit-to's ranges (each over its own rows) and the
    cost model of the per-iteration costs."""
    import json

    from dynlearn_ros.cli import main

    out = tmp_path / "s.json"
    assert main(["ik", "tasks", "--no-tasks", "--scaling", "2", "3", "4", "--rounds", "2", "--scaling-targets", "2",
                 "--fit-from", "6", "--fit-to", "6", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert set(res["scaling_fit"]) == {"4 to 8 DoF", "6 to 8 DoF", "4 to 6 DoF"}
    rows = res["scaling"]
    assert res["scaling_fit"]["4 to 6 DoF"] == growth_exponents(rows, max_dof=6)
    assert res["scaling_fit"]["6 to 8 DoF"] == growth_exponents(rows, min_dof=6)
    assert set(res["scaling_costs"]) == {"dls_cpu_ms_per_iteration", "dls_fd_cpu_ms_per_iteration"}
