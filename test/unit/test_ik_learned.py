"""The pose-chain LSTM and the gradient-descent inverse, on a planar 2-link arm whose forward
kinematics has a closed form (chain.planar_fk): a tiny model trained in a few seconds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dynlearn_ros.learning.ik.chain import POSE_DIM, chain, planar_fk
from dynlearn_ros.learning.ik.problem import IKProblem
from dynlearn_ros.learning.ik.solver import LearnedIK
from dynlearn_ros.learning.ik.store import IKModelError, load, save
from dynlearn_ros.learning.ik.training import TrainConfig, chain_errors, train

# The tiny model's accuracy bound: 8 % of the 1 m reach. Random planar2 tips spread over a disc
# of radius 1 m (mean distance between two random tips ~0.9 m), so a model that learned the map
# is far inside this and one fed a shifted, sign-flipped or wrongly scaled input is far outside.
TIP_BOUND_M = 0.08


@pytest.fixture(scope="module")
def planar_model():
    torch.set_num_threads(1)
    c = chain("planar2")
    cfg = TrainConfig(hidden=32, layers=1, stages=2, samples_per_stage=4000, epochs_per_stage=3,
                      final_epochs=6, batch=64, lr=1e-2, seed=0, threads=1)
    model, _ = train(c, cfg, log=lambda *_: None)
    return model, c


def _tip_error(model, q_in: np.ndarray, q_true: np.ndarray, scale: float = 1.0) -> float:
    with torch.no_grad():
        pred = model(torch.as_tensor(q_in, dtype=torch.float32)).double().numpy()
    true = np.stack([planar_fk(q) for q in q_true])
    return float(chain_errors(pred * np.r_[[scale] * 3, [1] * 6], true)["pos_m"][:, -1].mean())


def test_model_learns_the_closed_form_and_mutants_fail(planar_model):
    model, c = planar_model
    q = c.sample(np.random.default_rng(7), 500)
    assert _tip_error(model, q, q) < TIP_BOUND_M
    # the same check with the bugs it must catch: a one-step shift of the joint sequence, a
    # wrong rotation sign, a wrong position normalization (x2) — each breaks the bound
    assert _tip_error(model, np.roll(q, 1, axis=1), q) > TIP_BOUND_M
    assert _tip_error(model, -q, q) > TIP_BOUND_M
    assert _tip_error(model, q, q, scale=2.0) > TIP_BOUND_M


def test_outputs_are_rotations(planar_model):
    model, c = planar_model
    with torch.no_grad():
        out = model(torch.as_tensor(c.sample(np.random.default_rng(1), 50), dtype=torch.float32)).numpy()
    x, z = out[..., 3:6], out[..., 6:9]
    np.testing.assert_allclose(np.linalg.norm(x, axis=-1), 1.0, atol=1e-5)   # float32 rounding
    np.testing.assert_allclose(np.linalg.norm(z, axis=-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.sum(x * z, axis=-1), 0.0, atol=1e-5)


def test_target_correction_reaches_tolerance(planar_model):
    """Position targets of random configurations: the model alone stops at its own error
    (centimetres); with target correction (true FK known) the true tip comes within 5 mm."""
    model, c = planar_model
    rng = np.random.default_rng(3)
    plain = LearnedIK(model, c, corrections=0)
    corrected = LearnedIK(model, c, corrections=10)
    n_ok, n_plain_ok = 0, 0
    for q in c.sample(rng, 10, 0.8):
        w = np.zeros((2, POSE_DIM))
        w[-1, :3] = 1.0
        problem = IKProblem.from_pose_chain(planar_fk(q), w)
        n_plain_ok += plain.solve(np.zeros(2), problem).success
        res = corrected.solve(np.zeros(2), problem)
        n_ok += res.success
        assert np.all(res.q >= c.lower) and np.all(res.q <= c.upper)
    assert n_ok >= 9            # all but possibly one (a start on the wrong side of a limit)
    assert n_ok > n_plain_ok    # the correction is what gets there


def test_masked_heading_wanders_learned(planar_model):
    """As for DLS: tip of A with the heading of B; masked heading -> position met, heading far
    from B's; the heading moved from where it started (it wandered to lower the position loss)."""
    model, c = planar_model
    qa, qb = np.array([0.5, 0.9]), np.array([-1.0, -0.4])
    target = planar_fk(qa)
    target[-1, 3:] = planar_fk(qb)[-1, 3:]
    w = np.zeros((2, POSE_DIM))
    w[-1, :3] = 1.0
    res = LearnedIK(model, c, corrections=10).solve(np.zeros(2), IKProblem(target, w))
    assert res.success
    heading = planar_fk(res.q)[-1, 3:6]
    start_heading = planar_fk(np.zeros(2))[-1, 3:6]
    assert np.degrees(np.arccos(np.clip(heading @ target[-1, 3:6], -1, 1))) > 30.0
    assert np.degrees(np.arccos(np.clip(heading @ start_heading, -1, 1))) > 30.0


def test_store_round_trip_and_refusals(planar_model, tmp_path):
    model, c = planar_model
    save(model, c, tmp_path / "m", command=["test"])
    loaded, c2, meta = load(tmp_path / "m", expect_chain="planar2")
    q = torch.as_tensor(c.sample(np.random.default_rng(0), 5), dtype=torch.float32)
    with torch.no_grad():
        assert torch.equal(model(q), loaded(q))
    assert meta["joint_names"] == list(c.joint_names) and meta["kind"] == "ik_pose_chain_lstm"
    with pytest.raises(IKModelError, match="made for chain"):
        load(tmp_path / "m", expect_chain="iiwa")
    with pytest.raises(IKModelError, match="not a readable"):
        load(tmp_path / "missing")
