"""Training options of learning/training/sequence.py: the free-run (rollout) loss, the learning-rate
schedule, early stopping and the CPU-time budget; known answers on synthetic data."""

import math

import numpy as np
import pytest
import torch

from dynlearn_ros.learning.synthetic import white_noise_linear_data
from dynlearn_ros.learning.training.sequence import (
    TrainConfig,
    check_schedule,
    fit,
    rollout_state_error,
    scheduled_lr,
)


def test_rollout_state_error_accumulates_from_the_last_observed_row():
    """Known answer: step s predicts o_{s+1} - o_s, so with C observed rows the free run starts at
    step C-1 and a constant bias b in the differences gives the state error (t - C + 2) * b * s
    at step t (s = std_d / std_o); the exact differences give 0; the true differences shifted by one
    step (mu_s = y_{s-1}) give a non-zero error."""
    torch.manual_seed(0)
    B, T, d, C = 3, 12, 2, 4
    y = torch.randn(B, T, d)
    s = torch.tensor([0.5, 2.0])
    b = 0.1
    e = rollout_state_error(y + b, y, s, C)
    assert e.shape == (B, T - C + 1, d)
    steps = torch.arange(1, T - C + 2, dtype=torch.float32)[None, :, None]
    torch.testing.assert_close(e, (steps * b * s).expand(B, -1, -1), rtol=1e-5, atol=1e-6)
    assert float(rollout_state_error(y, y, s, C).abs().max()) == 0.0
    shifted = torch.cat([y[:, :1], y[:, :-1]], 1)
    assert float(rollout_state_error(shifted, y, s, C).abs().max()) > 0.1


def test_cosine_schedule_ends_at_a_hundredth_and_follows_the_budget():
    tc = TrainConfig("acrkn-fwd", "forward", epochs=10, lr=1e-3, lr_schedule="cosine")
    assert scheduled_lr(tc, 0.0, 0.0) == pytest.approx(1e-3)
    assert scheduled_lr(tc, 10.0, 0.0) == pytest.approx(1e-5)
    assert scheduled_lr(tc, 5.0, 0.0) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5)
    # with a CPU budget the further along of the two fractions counts
    tb = TrainConfig("acrkn-fwd", "forward", epochs=100, lr=1e-3, lr_schedule="cosine", time_budget_s=60.0)
    assert scheduled_lr(tb, 1.0, 60.0) == pytest.approx(1e-5)
    assert scheduled_lr(tb, 1.0, 30.0) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert scheduled_lr(TrainConfig("gru", "forward", lr=2e-3), 7.0, 1e6) == 2e-3


@pytest.mark.parametrize("bad, match", [
    ({"lr_schedule": "step"}, "lr_schedule"), ({"patience": 0}, "patience"), ({"time_budget_s": 0.0}, "time_budget"),
    ({"rollout_frac": 1.5}, "rollout_frac"), ({"rollout_frac": 0.5, "rollout_context": 39}, "rollout_context"),
    ({"rollout_frac": 0.5, "direction": "inverse", "kind": "lstm"}, "forward"), ({"mask_keep": 40}, "mask_keep"),
])
def test_invalid_options_are_refused_with_the_reason(bad, match):
    kw = {"kind": "acrkn-fwd", "direction": "forward", "window": 40, **bad}
    with pytest.raises(ValueError, match=match):
        check_schedule(TrainConfig(**kw))


def _tiny(**kw) -> TrainConfig:
    return TrainConfig(kind="gru", direction="forward", epochs=kw.pop("epochs", 50), batch_size=16, window=20,
                       stride=20, lod=3, hidden=8, obs_qd=True, **kw)


def test_patience_stops_after_that_many_epochs_without_improvement():
    """lr 0 cannot improve on the first epoch's validation loss: with patience 2 the run stops
    after epochs 0, 1, 2 and keeps epoch 0."""
    data = white_noise_linear_data(n_ep=4, T=60, n=1, seed=5)
    tr, va = data.select(data.episode < 3), data.select(data.episode == 3)
    ck = fit(tr, va, _tiny(lr=0.0, patience=2), progress=False)
    assert ck["epochs_run"] == 3 and ck["best_epoch"] == 0 and ck["stopped"].startswith("early stop")


def test_cpu_budget_stops_the_run_and_is_reported():
    data = white_noise_linear_data(n_ep=4, T=60, n=1, seed=6)
    tr, va = data.select(data.episode < 3), data.select(data.episode == 3)
    ck = fit(tr, va, _tiny(time_budget_s=1e-3, epochs=1000), progress=False)
    # the first batch alone uses more than 1 ms of CPU: one epoch of one batch, then stop
    assert ck["epochs_run"] == 1 and ck["history"][0]["batches"] == 1 and "budget" in ck["stopped"]
    assert ck["cpu_s"] >= 1e-3


def test_rollout_training_runs_free_windows_and_reports_their_loss():
    data = white_noise_linear_data(n_ep=4, T=60, n=1, seed=7)
    tr, va = data.select(data.episode < 3), data.select(data.episode == 3)
    ck = fit(tr, va, _tiny(epochs=2, rollout_frac=1.0, rollout_context=5), progress=False)
    assert all(np.isfinite(h["val_rollout_rmse"]) and h["val_rollout_rmse"] > 0 for h in ck["history"])
