"""The training options that make the forward training task the evaluation's h-step task
(docs/results.md, "training on the h-step objective"): with ``mask_keep = rollout_context = C`` and
``rollout_frac = 1`` every training window is observed on rows 0..C-1 and free afterwards, and the
free-run loss is the h-step error ``forward_multistep`` scores, h = 1 .. W-C, in normalized units."""

import numpy as np
import pytest
import torch

from dynlearn_ros.datasets.normalize import Stats
from dynlearn_ros.learning.evaluation.sequence import forward_multistep
from dynlearn_ros.learning.synthetic import white_noise_linear_data
from dynlearn_ros.learning.training.sequence import (
    TrainConfig,
    WindowSet,
    batch_loss,
    fit,
    load_checkpoint,
    save_checkpoint,
)


@pytest.mark.parametrize("kind,base", [("acrkn-fwd", "arx"), ("gru", "none")])
def test_training_rollout_loss_is_the_evals_h_step_error(tmp_path, kind, base):
    C, H = 12, 6
    data = white_noise_linear_data(n_ep=5, T=60, n=1, seed=3)
    tcfg = TrainConfig(kind=kind, direction="forward", epochs=1, batch_size=16, window=C + H, stride=5,
                       lod=3, hidden=8, obs_qd=True, base=base, mask_keep=C, rollout_frac=1.0,
                       rollout_context=C, mask_frac=0.75)
    ck = fit(data, data, tcfg, progress=False)           # one epoch: a real, non-trivial model
    save_checkpoint(ck, tmp_path / "c.pt")
    model, ck = load_checkpoint(tmp_path / "c.pt")
    stats = Stats.from_dict(ck["stats"])
    ws = WindowSet(data, stats, tcfg)
    with torch.no_grad():
        _, parts = batch_loss(model, ws, torch.arange(len(ws)), tcfg, torch.Generator().manual_seed(0))
    ev = forward_multistep(model, stats, data, obs_qd=True, context=C, horizons=tuple(range(1, H + 1)), stride=5)
    assert ev["windows"] == len(ws)
    # the eval's per-joint RMSE at every h, in observation units, divided by the observation std:
    # the normalized accumulated state error the training loss pools over h and dimensions
    per = np.array([ev["rmse_per_joint"][str(h)] for h in range(1, H + 1)]) / stats.obs_std
    expected = float(np.sqrt(np.mean(per ** 2)))
    # float32 model outputs summed over H <= 6 steps: agreement to 1e-4 relative; a mask that
    # differed from the eval's (a row of the context unobserved, or an observation after it)
    # changes the predictions by far more
    assert parts["rollout_rmse"] == pytest.approx(expected, rel=1e-4)
    assert expected > 1e-3                                # not a trivially zero error
