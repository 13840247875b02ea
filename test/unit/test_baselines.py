"""Baselines: shapes, step == seq, the recurrent forward baselines read their own prediction
when an observation is missing, the FFNN has no memory."""

import pytest
import torch

from dynlearn_ros.learning.models.sequence import FORWARD_KINDS, INVERSE_KINDS, ModelConfig, build_model

torch.set_num_threads(1)


def _cfg(kind, direction):
    return ModelConfig(kind, direction, obs_dim=4, act_dim=3, lod=5, num_basis=3, enc_hidden=(16,),
                       dec_hidden=(16,), ctrl_hidden=(16,))


@pytest.mark.parametrize("kind", FORWARD_KINDS)
def test_forward_shapes_and_step(kind):
    torch.manual_seed(0)
    m = build_model(_cfg(kind, "forward")).eval()
    o, a, v = torch.randn(2, 7, 4), torch.randn(2, 7, 3), (torch.rand(2, 7, 1) > 0.3).float()
    mu, var = m.seq(o, a, v)
    assert mu.shape == var.shape == (2, 7, 4) and torch.all(var > 0)
    state = m.initial_state(2)
    for t in range(7):
        mu_t, _, state = m.step(o[:, t], v[:, t], a[:, t], state)
        torch.testing.assert_close(mu_t, mu[:, t])


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_rnn_forward_feeds_back_its_prediction(kind):
    torch.manual_seed(0)
    m = build_model(_cfg(kind, "forward")).eval()
    with torch.no_grad():
        m.delta_scale.fill_(0.5)
        m.delta_shift.fill_(0.1)
    o, a = torch.randn(1, 2, 4), torch.randn(1, 2, 3)
    state = m.initial_state(1)
    mu0, _, state = m.step(o[:, 0], torch.ones(1, 1), a[:, 0], state)
    expect = o[:, 0] + 0.5 * mu0 + 0.1                     # o_hat_1 = o_0 + scaled difference
    torch.testing.assert_close(state[-1], expect)
    # a missing observation: the value passed in is ignored, o_hat is used
    mu1, _, _ = m.step(o[:, 1] + 100.0, torch.zeros(1, 1), a[:, 1], state)
    mu1b, _, _ = m.step(o[:, 1], torch.zeros(1, 1), a[:, 1], state)
    torch.testing.assert_close(mu1, mu1b, rtol=0, atol=0)


@pytest.mark.parametrize("kind", INVERSE_KINDS)
def test_inverse_shapes(kind):
    torch.manual_seed(0)
    m = build_model(_cfg(kind, "inverse")).eval()
    o, a = torch.randn(2, 9, 4), torch.randn(2, 9, 3)
    mu, var, fwd = m.seq(o, a)
    assert mu.shape == var.shape == (2, 7, 3) and torch.all(var > 0)
    assert (fwd is not None) == (kind == "acrkn-inv")


def test_ffnn_has_no_memory_and_recurrent_models_do():
    torch.manual_seed(0)
    o, a = torch.randn(1, 9, 4), torch.randn(1, 9, 3)
    o2 = o.clone()
    o2[:, 1] += 3.0                                        # change an early observation only
    for kind in INVERSE_KINDS:
        m = build_model(_cfg(kind, "inverse")).eval()
        d = (m.seq(o, a)[0][:, 3:] - m.seq(o2, a)[0][:, 3:]).abs().max()
        if kind == "ffnn":
            assert d == 0
        else:
            assert d > 1e-6, kind


def test_unknown_kind_is_an_error():
    with pytest.raises(ValueError, match="choose from"):
        build_model(_cfg("acrkn-inv", "forward"))
