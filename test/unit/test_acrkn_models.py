"""ac-RKN forward / inverse models: step == seq, masking semantics, action feedback, learning."""

import numpy as np
import pytest
import torch

from dynlearn_ros.datasets.normalize import Stats
from dynlearn_ros.datasets.splits import train_val_test as split
from dynlearn_ros.learning.evaluation.sequence import inverse_predict, torque_errors
from dynlearn_ros.learning.models.sequence import ModelConfig, build_model
from dynlearn_ros.learning.synthetic import pendulum_data
from dynlearn_ros.learning.training.sequence import (
    TrainConfig,
    fit,
    load_checkpoint,
    own_action_mask,
    save_checkpoint,
)

torch.set_num_threads(1)


def _fwd(kind="acrkn-fwd"):
    torch.manual_seed(0)
    return build_model(ModelConfig(kind, "forward", obs_dim=3, act_dim=2, lod=6, num_basis=4,
                                   enc_hidden=(16,), dec_hidden=(16,), ctrl_hidden=(16,))).eval()


def test_forward_step_equals_seq():
    m = _fwd()
    o, a = torch.randn(2, 9, 3), torch.randn(2, 9, 2)
    valid = (torch.rand(2, 9, 1) > 0.5).float()
    mu, var = m.seq(o, a, valid)
    state = m.initial_state(2)
    for t in range(9):
        mu_t, var_t, state = m.step(o[:, t], valid[:, t], a[:, t], state)
        torch.testing.assert_close(mu_t, mu[:, t])
        torch.testing.assert_close(var_t, var[:, t])
    assert torch.all(var > 0)


def test_masked_observations_are_ignored_but_actions_are_not():
    m = _fwd()
    o, a = torch.randn(1, 8, 3), torch.randn(1, 8, 2)
    valid = torch.zeros(1, 8, 1)
    valid[:, :3] = 1.0
    mu, _ = m.seq(o, a, valid)
    o2 = o.clone()
    o2[:, 3:] += 5.0                       # change only the removed observations
    mu2, _ = m.seq(o2, a, valid)
    torch.testing.assert_close(mu, mu2, rtol=0, atol=0)
    a2 = a.clone()
    a2[:, 5] += 1.0                        # an action after the last observation still matters
    mu3, _ = m.seq(o, a2, valid)
    assert (mu3[:, 5:] - mu[:, 5:]).abs().max() > 1e-4
    torch.testing.assert_close(mu3[:, :5], mu[:, :5], rtol=0, atol=0)


def test_plain_rkn_loses_actions_when_observations_are_missing():
    """The RKN baseline sees actions only through the encoder: a masked step ignores them."""
    m = _fwd("rkn")
    o, a = torch.randn(1, 8, 3), torch.randn(1, 8, 2)
    valid = torch.zeros(1, 8, 1)
    valid[:, :3] = 1.0
    a2 = a.clone()
    a2[:, 5] += 1.0
    torch.testing.assert_close(m.seq(o, a, valid)[0], m.seq(o, a2, valid)[0], rtol=0, atol=0)


def test_inverse_step_equals_seq_and_feeds_back_the_action():
    torch.manual_seed(0)
    m = build_model(ModelConfig("acrkn-inv", "inverse", obs_dim=4, act_dim=2, lod=6, num_basis=4,
                                enc_hidden=(16,), dec_hidden=(16,), ctrl_hidden=(16,))).eval()
    o, a = torch.randn(2, 10, 4), torch.randn(2, 10, 2)
    mu, var, fwd = m.seq(o, a)
    assert mu.shape == (2, 8, 2) and var.shape == (2, 8, 2) and fwd.shape == (2, 8, 4)
    state = m.initial_state(2)
    for t in range(1, 9):
        mu_t, var_t, state = m.step(o[:, t], o[:, t + 1], a[:, t - 1], state)
        torch.testing.assert_close(mu_t, mu[:, t - 1])
    a2 = a.clone()
    a2[:, 2] += 1.0                        # executed action at t=2 changes predictions from t=3 on
    mu2, _, _ = m.seq(o, a2)
    torch.testing.assert_close(mu2[:, :2], mu[:, :2], rtol=0, atol=0)
    assert (mu2[:, 2:] - mu[:, 2:]).abs().max() > 1e-5


def test_acrkn_inverse_learns_the_pendulum(tmp_path):
    """Three short epochs must beat the zero-change predictor tau_t = tau_{t-1} on held-out
    episodes by 20 %. A model that learned no state dependence predicts a constant difference,
    whose RMSE is >= that of the zero-change predictor (the mean difference is ~0), so the 0.8
    factor can only be reached by learning tau = qdd + 2 sin q + 0.5 qd from the desired change."""
    data = pendulum_data()
    tr, va, te = split(data, seed=0)
    ckpt = fit(tr, va, TrainConfig(kind="acrkn-inv", direction="inverse", epochs=3, window=30, stride=5,
                                   lod=8, hidden=32, batch_size=8, lr=3e-3), progress=False)
    save_checkpoint(ckpt, tmp_path / "c.pt")
    model, ckpt = load_checkpoint(tmp_path / "c.pt")
    tau_hat, std, rows = inverse_predict(model, Stats.from_dict(ckpt["stats"]), te)
    res = torque_errors(tau_hat, te.tau[rows], std)
    prev = torque_errors(te.tau[rows - 1], te.tau[rows])
    assert res["rmse"] < 0.8 * prev["rmse"], (res["rmse"], prev["rmse"])
    assert np.all(std > 0)


def test_act_target_is_validated_and_old_configs_load_as_difference():
    with pytest.raises(ValueError, match="act_target"):
        ModelConfig("acrkn-inv", "inverse", obs_dim=4, act_dim=2, act_target="delta")
    d = ModelConfig("acrkn-inv", "inverse", obs_dim=4, act_dim=2).to_dict()
    del d["act_target"]                       # a checkpoint written before the option existed
    assert ModelConfig.from_dict(d).act_target == "difference"


def test_own_action_mask_runs_from_a_start_step_to_the_end():
    gen = torch.Generator().manual_seed(0)
    m = own_action_mask(400, 50, 0.5, gen)[..., 0]
    assert m.shape == (400, 50)
    chosen = m.sum(1) > 0
    assert 0.4 < chosen.float().mean() < 0.6          # binomial(400, 0.5): 5 sigma = 0.125
    for row in m[chosen]:
        t0 = int(torch.nonzero(row)[0])
        assert 2 <= t0 <= 25 and bool(row[t0:].all()) and not bool(row[:t0].any())


def test_own_action_feedback_unroll_equals_a_step_loop_fed_its_own_output():
    torch.manual_seed(0)
    m = build_model(ModelConfig("acrkn-inv", "inverse", obs_dim=4, act_dim=2, lod=6, num_basis=4,
                                enc_hidden=(16,), dec_hidden=(16,), ctrl_hidden=(16,),
                                act_target="absolute")).eval()
    o, a = torch.randn(1, 12, 4), torch.randn(1, 12, 2)
    mask = torch.zeros(1, 12, 1)
    mask[:, 5:] = 1.0
    mu, _, _ = m.seq(o, a, own_mask=mask)
    state, prev = m.initial_state(1), None
    for t in range(1, 11):
        a_in = prev if t >= 5 else a[:, t - 1]
        prev, _, state = m.step(o[:, t], o[:, t + 1], a_in, state)
        torch.testing.assert_close(prev, mu[:, t - 1])
    assert (mu - m.seq(o, a)[0]).abs().max() > 1e-6    # the feedback changed something
    with pytest.raises(ValueError, match="absolute"):
        build_model(ModelConfig("acrkn-inv", "inverse", obs_dim=4, act_dim=2)).seq(o, a, own_mask=mask)
