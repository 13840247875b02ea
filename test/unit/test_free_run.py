"""Free-run evaluation of forward models (learning/evaluation/sequence.py ``forward_free_run``)."""

import numpy as np
import torch

from dynlearn_ros.datasets.normalize import Stats
from dynlearn_ros.datasets.windows import model_arrays
from dynlearn_ros.learning.evaluation.linear_baselines import ARX
from dynlearn_ros.learning.evaluation.sequence import forward_free_run, forward_multistep
from dynlearn_ros.learning.models.sequence import ModelConfig, build_model
from dynlearn_ros.learning.synthetic import white_noise_linear_data


def test_free_run_curve_equals_the_multistep_score_on_one_window_per_episode():
    """An episode of exactly context + H rows is one multi-step window: the free run's curve at
    h must be the multi-step RMSE at h for the same model (same rows, same rollout)."""
    data = white_noise_linear_data(n_ep=4, T=25, n=2, seed=7)
    obs, act = model_arrays(data, "forward", True)
    st = Stats.fit(obs, act, data.episode)
    torch.manual_seed(0)
    model = build_model(ModelConfig("acrkn-fwd", "forward", obs_dim=4, act_dim=2, lod=4, enc_hidden=(16,),
                                    dec_hidden=(16,), ctrl_hidden=(16,)))
    hs = tuple(range(1, 16))
    ms = forward_multistep(model, st, data, obs_qd=True, context=10, horizons=hs, stride=25)
    fr = forward_free_run(model, st, data, obs_qd=True, context=10)
    assert ms["windows"] == fr["episodes"] == 4 and fr["rows"] == 4 * 15
    for h in hs:
        np.testing.assert_allclose(fr["curve"][str(h)], ms["rmse"][str(h)], rtol=1e-6)
        np.testing.assert_allclose(fr["prev_state_curve"][str(h)], ms["prev_state_rmse"][str(h)], rtol=1e-9)


def test_free_run_of_an_exact_arx_stays_on_the_data_over_long_episodes():
    """The white-noise system observed as [q, qd] is inside ARX(2, 2): its 290-step free run
    tracks the data to rounding, and max |o_hat| / max |o| stays ~1 (no divergence)."""
    train = white_noise_linear_data(n_ep=6, T=300, n=1, seed=8)
    test = white_noise_linear_data(n_ep=3, T=300, n=1, seed=9)
    obs, act = model_arrays(train, "forward", True)
    arx = ARX().fit(obs, act, train.episode)
    st = Stats.fit(obs, act, train.episode)
    model = build_model(ModelConfig("gru", "forward", obs_dim=2, act_dim=1, lod=4, enc_hidden=(8,), dec_hidden=(8,)))
    fr = forward_free_run(model, st, test, obs_qd=True, context=10, arx=arx)
    assert fr["arx_rmse"] < 1e-6 * float(np.std(test.qd)), fr["arx_rmse"]
    assert len(fr["arx_curve"]) == 290 and np.isfinite(fr["max_abs_ratio"])


def test_free_run_batches_episodes_of_mixed_lengths_without_changing_the_result(monkeypatch):
    """Episodes of mixed lengths (run as one batch, padded at the end to the longest): the pooled
    RMSE and the curve equal a one-episode-at-a-time run of the same model (float32 summation
    order only: 1e-5 relative; a padding that leaked into a kept output would move them by the
    model's whole step response, orders of magnitude more)."""
    from dynlearn_ros.datasets.format import TrajectoryData
    from dynlearn_ros.learning.evaluation import sequence as seqeval

    parts = [white_noise_linear_data(n_ep=1, T=T, n=2, seed=20 + i) for i, T in enumerate((30, 41, 30, 25))]
    data = TrajectoryData(t=np.concatenate([p.t for p in parts]), q=np.concatenate([p.q for p in parts]),
                          qd=np.concatenate([p.qd for p in parts]), tau=np.concatenate([p.tau for p in parts]),
                          episode=np.concatenate([np.full(len(p.t), i) for i, p in enumerate(parts)]),
                          joint_names=parts[0].joint_names, dt=parts[0].dt)
    obs, act = model_arrays(data, "forward", True)
    st = Stats.fit(obs, act, data.episode)
    torch.manual_seed(1)
    model = build_model(ModelConfig("acrkn-fwd", "forward", obs_dim=4, act_dim=2, lod=4, enc_hidden=(16,),
                                    dec_hidden=(16,), ctrl_hidden=(16,)))
    batched = forward_free_run(model, st, data, obs_qd=True, context=10)
    one = seqeval._free_run_outputs

    def episode_by_episode(model, stats, obs, act, bounds, context):
        return {a: v for b in bounds for a, v in one(model, stats, obs, act, [b], context).items()}

    monkeypatch.setattr(seqeval, "_free_run_outputs", episode_by_episode)
    single = forward_free_run(model, st, data, obs_qd=True, context=10)
    assert batched["episodes"] == single["episodes"] == 4 and batched["rows"] == 20 + 31 + 20 + 15
    np.testing.assert_allclose(batched["rmse"], single["rmse"], rtol=1e-5)
    for h, v in single["curve"].items():
        np.testing.assert_allclose(batched["curve"][h], v, rtol=1e-5)
