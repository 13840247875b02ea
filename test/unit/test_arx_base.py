"""The ac-RKN on an ARX(2, 2) base (``train --base arx``, learning/models/arx_base.py): with its
learned residual at zero it is exactly the least-squares ARX model of the tables, in the same
units and with the same lags; training stores the fitted base; export refuses it with the reason."""

import json

import numpy as np
import pytest
import torch

from dynlearn_ros.cli import main
from dynlearn_ros.datasets.normalize import Stats
from dynlearn_ros.datasets.windows import gather, model_arrays, window_starts
from dynlearn_ros.learning.evaluation.linear_baselines import ARX
from dynlearn_ros.learning.models.arx_base import ArxBaseForward, normalized_arx_weights
from dynlearn_ros.learning.models.sequence import ModelConfig, build_model
from dynlearn_ros.learning.synthetic import pendulum_data
from dynlearn_ros.learning.training.sequence import TrainConfig, fit, set_delta_buffers


def _zero_residual(model: ArxBaseForward) -> None:
    last = [m for m in model.dec_mean.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()


@pytest.mark.parametrize("kind", ["acrkn-fwd", "rkn"])
def test_zero_residual_is_the_least_squares_arx_in_free_run(kind):
    # the pendulum is nonlinear (sin q), so the ARX fit is not exact and its free run drifts:
    # agreement then means the same lags, the same units and the same fit, not two exact models
    data = pendulum_data(n_ep=8, T=150, n=2, seed=3)
    obs, act = model_arrays(data, "forward")
    stats = Stats.fit(obs, act, data.episode)
    model = build_model(ModelConfig(kind, "forward", obs_dim=2, act_dim=2, lod=6, num_basis=4, enc_hidden=(16,),
                                    dec_hidden=(16,), ctrl_hidden=(16,), base="arx"))
    assert isinstance(model, ArxBaseForward)
    set_delta_buffers(model, stats)
    model.set_arx(normalized_arx_weights(obs, act, data.episode, stats))
    _zero_residual(model)
    model.eval()
    C, W = 10, 60
    starts = window_starts(data.episode, W, 30)
    ow, aw = gather(obs, starts, W), gather(act, starts, W)
    valid = torch.zeros(len(starts), W - 1, 1)
    valid[:, :C] = 1.0
    with torch.no_grad():
        mu, _ = model.seq(torch.as_tensor((ow[:, :-1] - stats.obs_mean) / stats.obs_std, dtype=torch.float32),
                          torch.as_tensor((aw[:, :-1] - stats.act_mean) / stats.act_std, dtype=torch.float32),
                          valid)
    delta = mu.double().numpy() * stats.dobs_std + stats.dobs_mean
    o_hat = ow[:, C - 1][:, None] + np.cumsum(delta[:, C - 1:], axis=1)       # rows C .. W-1
    ref = ARX(2, 2).fit(obs, act, data.episode).rollout(ow, aw, C)
    drift = np.abs(ref - ow[:, C:]).max()
    # float32 arithmetic over 50 free steps of values of order 1: rounding of ~1e-7 per step
    # (relative), summed and amplified by the fit's dynamics, stays well below 1e-4 rad; the ARX
    # model's own error (drift) is tens of times larger, so a wrong lag or unit would show
    tol = 1e-4 * max(1.0, np.abs(ref).max())
    assert drift > 20 * tol
    assert np.abs(o_hat - ref).max() < tol


def test_a_returning_observation_keeps_the_predicted_velocity():
    """Training removes observations at random: where one returns after a predicted stretch, the
    base must not read the accumulated drift as a one-step velocity (module docstring). With the
    residual at zero, the base's one-step error under a 75 % random mask then stays of the order
    of its error in a plain free run from a 10-row context (every masked stretch is such a free
    run, shorter; here 3.3x, the predicted velocity carried over a correction being the one of the
    last stretch), while reading the drift as velocity made it ~900x larger on these windows and
    ~130x on the pneumatic arm: a factor 10 separates the two."""
    data = pendulum_data(n_ep=8, T=150, n=2, seed=4)
    obs, act = model_arrays(data, "forward")
    stats = Stats.fit(obs, act, data.episode)
    model = build_model(ModelConfig("acrkn-fwd", "forward", obs_dim=2, act_dim=2, lod=6, num_basis=4,
                                    enc_hidden=(16,), dec_hidden=(16,), ctrl_hidden=(16,), base="arx"))
    set_delta_buffers(model, stats)
    model.set_arx(normalized_arx_weights(obs, act, data.episode, stats))
    _zero_residual(model)
    model.eval()
    W = 40
    starts = window_starts(data.episode, W, 10)
    ow, aw = gather(obs, starts, W), gather(act, starts, W)
    on = torch.as_tensor((ow[:, :-1] - stats.obs_mean) / stats.obs_std, dtype=torch.float32)
    an = torch.as_tensor((aw[:, :-1] - stats.act_mean) / stats.act_std, dtype=torch.float32)
    y = torch.as_tensor((np.diff(ow, axis=1) - stats.dobs_mean) / stats.dobs_std, dtype=torch.float32)
    free = torch.zeros(len(starts), W - 1, 1)
    free[:, :10] = 1.0
    rand = (torch.rand(len(starts), W - 1, 1, generator=torch.Generator().manual_seed(0)) >= 0.75).float()
    rand[:, 0] = 1.0
    with torch.no_grad():
        err = {k: float(torch.sqrt(((model.seq(on, an, v)[0] - y) ** 2).mean())) for k, v in (("free", free), ("rand", rand))}
    assert err["rand"] < 10 * err["free"], err


def test_refused_where_it_does_not_apply():
    for kw in ({"kind": "lstm", "direction": "forward"}, {"kind": "acrkn-inv", "direction": "inverse"}):
        with pytest.raises(ValueError, match="base 'arx'"):
            ModelConfig(**kw, obs_dim=2, act_dim=2, base="arx")
    with pytest.raises(ValueError, match="base must be"):
        ModelConfig("acrkn-fwd", "forward", obs_dim=2, act_dim=2, base="linear")


def test_fit_stores_the_training_split_arx_and_the_checkpoint_restores_it():
    data = pendulum_data(n_ep=6, T=100, n=1, seed=1)
    train, val = data.select(data.episode < 4), data.select(data.episode >= 4)
    tcfg = TrainConfig(kind="acrkn-fwd", direction="forward", epochs=1, lod=4, num_basis=3, hidden=8,
                       window=20, stride=10, base="arx")
    ckpt = fit(train, val, tcfg, progress=False)
    obs, act = model_arrays(train, "forward")
    w = normalized_arx_weights(obs, act, train.episode, Stats.from_dict(ckpt["stats"]))
    np.testing.assert_allclose(ckpt["state_dict"]["arx_w"].numpy(), w, rtol=1e-5, atol=1e-6)
    assert ckpt["model_config"]["base"] == "arx"
    again = build_model(ModelConfig.from_dict(ckpt["model_config"]))
    again.load_state_dict(ckpt["state_dict"])
    assert torch.equal(again.arx_w, ckpt["state_dict"]["arx_w"])


def test_cli_train_eval_and_export_refusal(tmp_path, tiny_arx_run):
    npz, run = tiny_arx_run
    js = tmp_path / "e.json"
    assert main(["eval", "--data", npz, "--runs", str(run), "--json", str(js)]) == 0
    r = json.loads(js.read_text())["models"]["acrkn-fwd s0"]
    assert all(np.isfinite(v) for v in r["rmse"].values())
    with pytest.raises(SystemExit, match="ARX base"):
        main(["export", "--run", str(run), "--out", str(tmp_path / "m")])
    with pytest.raises(SystemExit, match="--base arx needs"):
        main(["train", "--data", npz, "--model", "lstm", "--base", "arx", "--epochs", "1", "--out", str(tmp_path / "x")])
