"""Own-action feedback (scheduled sampling) for every inverse kind: the LSTM, GRU and FFNN take
the same ``own_mask`` as the ac-RKN inverse model, so the controller-form comparison (issue 9,
section 4) can give every model the same training."""

from __future__ import annotations

import pytest
import torch

from dynlearn_ros.learning.models.sequence import ModelConfig, build_model
from dynlearn_ros.learning.training.sequence import TrainConfig, fit


@pytest.mark.parametrize("kind", ["lstm", "gru", "ffnn", "acrkn-inv"])
def test_own_mask_unroll_equals_a_step_loop_fed_its_own_output(kind):
    torch.manual_seed(0)
    m = build_model(ModelConfig(kind, "inverse", obs_dim=4, act_dim=2, lod=6, num_basis=4, enc_hidden=(16,),
                                dec_hidden=(16,), ctrl_hidden=(16,), act_target="absolute")).eval()
    o, a = torch.randn(1, 12, 4), torch.randn(1, 12, 2)
    mask = torch.zeros(1, 12, 1)
    mask[:, 5:] = 1.0
    with torch.no_grad():
        mu, _, _ = m.seq(o, a, own_mask=mask)
        state, prev = m.initial_state(1), None
        for t in range(1, 11):
            a_in = prev if t >= 5 else a[:, t - 1]     # row t >= 5 reads the model's own a_hat_{t-1}
            prev, _, state = m.step(o[:, t], o[:, t + 1], a_in, state)
            torch.testing.assert_close(prev, mu[:, t - 1])
        forced = m.seq(o, a)[0]
        # rows before the mask starts are teacher-forced in both; from row 5 on the feedback differs
        torch.testing.assert_close(mu[:, :4], forced[:, :4])
        assert (mu[:, 4:] - forced[:, 4:]).abs().max() > 1e-6
        with pytest.raises(ValueError, match="absolute"):
            build_model(ModelConfig(kind, "inverse", obs_dim=4, act_dim=2)).seq(o, a, own_mask=mask)


def test_own_action_training_refused_for_a_difference_target_or_a_forward_model(tmp_path):
    import numpy as np
    from arm_data import sine_arm

    from dynlearn_ros.datasets.format import TrajectoryData
    from dynlearn_ros.datasets.splits import train_val_test

    rng = np.random.default_rng(0)
    t, ep, q, qd, qdd = sine_arm(rng, 6, 60, [2.0, 3.0])
    data = TrajectoryData(t=t, q=q, qd=qd, qdd=qdd, tau=qdd + np.cos(q), episode=ep, joint_names=("a", "b"), dt=0.01)
    tr, va, _ = train_val_test(data, 0)
    for cfg in (TrainConfig(kind="lstm", direction="inverse", own_action_frac=0.5),
                TrainConfig(kind="gru", direction="forward", own_action_frac=0.5, act_target="absolute")):
        with pytest.raises(ValueError, match="own_action_frac"):
            fit(tr, va, cfg, progress=False)
    ck = fit(tr, va, TrainConfig(kind="ffnn", direction="inverse", epochs=1, window=20, stride=10, hidden=8,
                                 act_target="absolute", own_action_frac=1.0), progress=False)
    assert ck["train_config"]["own_action_frac"] == 1.0
