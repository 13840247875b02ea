"""The residual clip of the ARX-base forward model (learning/models/arx_base.py): the bound is the
largest one-step residual the training rows hold (known answer on a system whose residual is a
bounded disturbance of known amplitude), the clamp leaves a residual inside the bound unchanged and
saturates one outside at exactly the bound, and train / eval carry it."""

import json

import numpy as np
import pytest
import torch

from dynlearn_ros.cli import main
from dynlearn_ros.datasets.normalize import Stats
from dynlearn_ros.datasets.windows import gather, model_arrays, window_starts
from dynlearn_ros.learning.evaluation.linear_baselines import ARX
from dynlearn_ros.learning.models.arx_base import ArxBaseForward, arx_residual_bound, normalized_arx_weights
from dynlearn_ros.learning.models.sequence import ModelConfig, build_model
from dynlearn_ros.learning.synthetic import pendulum_data
from dynlearn_ros.learning.training.sequence import TrainConfig, fit, set_delta_buffers

C_DIST = np.array([0.01, 0.03])   # disturbance amplitude per dimension (observation units)


def _arx_system(n_ep: int = 40, T: int = 500, seed: int = 0):
    """o_{t+1} - o_t = 0.6 o_t - 0.7 o_{t-1} + 0.3 a_t + 0.1 a_{t-1} + e_t per dimension (poles
    |z| = sqrt(0.7) = 0.84: stable), a_t ~ N(0, 1), e_t ~ U[-C_DIST, C_DIST]: an exact ARX(2, 2)
    whose one-step residual is e_t. obs, act (N, 2), episode (N,)."""
    rng = np.random.default_rng(seed)
    obs, act, ep = [], [], []
    for k in range(n_ep):
        a = rng.normal(size=(T, 2))
        e = rng.uniform(-1.0, 1.0, size=(T, 2)) * C_DIST
        o = np.zeros((T, 2))
        for t in range(1, T - 1):
            o[t + 1] = o[t] + 0.6 * o[t] - 0.7 * o[t - 1] + 0.3 * a[t] + 0.1 * a[t - 1] + e[t]
        obs.append(o)
        act.append(a)
        ep.append(np.full(T, k))
    return np.concatenate(obs), np.concatenate(act), np.concatenate(ep)


def test_the_bound_is_the_known_disturbance_amplitude():
    obs, act, ep = _arx_system()
    stats = Stats.fit(obs, act, ep)
    w = normalized_arx_weights(obs, act, ep, stats)
    bound = arx_residual_bound(obs, act, ep, stats, w) * stats.dobs_std       # observation units
    # bound = max_t |e_t + x_t (w_true - w_fit)|: the disturbance's amplitude (the largest of
    # 20,000 uniform draws lies within ~1e-4 of it) moved by at most the fit's error on the
    # extreme regressors, which the known true weights give exactly
    w_true = np.zeros((9, 2))                    # rows [1, o_t, o_{t-1}, a_t, a_{t-1}], 2 each
    for j in range(2):
        w_true[[1 + j, 3 + j, 5 + j, 7 + j], j] = 0.6, -0.7, 0.3, 0.1
    fit_err = np.concatenate([np.abs(x @ (ARX(2, 2).fit(obs, act, ep).w - w_true)).max(0, keepdims=True)
                              for x, _ in ARX(2, 2).one_step_rows(obs, act, ep)]).max(0)
    assert np.all(fit_err < 0.1 * C_DIST)          # the fit is good: the check below is tight
    assert np.all(np.abs(bound - C_DIST) <= fit_err + 1e-3 * C_DIST), (bound, fit_err)
    # the one-step change moves ~30x more than the disturbance: pairing the regressors with the
    # next change (a one-step shift) would leave residuals of that size, far outside 2 %
    assert np.all(stats.dobs_std > 10 * C_DIST)


def _model(obs, act, ep, clip: bool) -> tuple[ArxBaseForward, Stats]:
    stats = Stats.fit(obs, act, ep)
    model = build_model(ModelConfig("acrkn-fwd", "forward", obs_dim=2, act_dim=2, lod=6, num_basis=4,
                                    enc_hidden=(16,), dec_hidden=(16,), ctrl_hidden=(16,), base="arx",
                                    residual_clip=clip))
    set_delta_buffers(model, stats)
    w = normalized_arx_weights(obs, act, ep, stats)
    model.set_arx(w)
    if clip:
        model.set_residual_bound(arx_residual_bound(obs, act, ep, stats, w))
    model.eval()
    return model, stats


def _constant_residual(model: ArxBaseForward, value: float) -> None:
    last = [m for m in model.dec_mean.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(value)


@pytest.mark.parametrize("value", [1e3, -1e3, 1e-3])
def test_the_clamp_saturates_at_the_bound_and_passes_what_lies_inside(value):
    obs, act, ep = _arx_system(n_ep=6, T=120)
    clipped, stats = _model(obs, act, ep, clip=True)
    plain, _ = _model(obs, act, ep, clip=False)
    bound = clipped.res_bound.clone()
    assert torch.all(torch.isfinite(bound)) and torch.all(bound > 1e-3)
    _constant_residual(clipped, value)
    _constant_residual(plain, 0.0)
    starts = window_starts(ep, 40, 40)
    ow, aw = gather(obs, starts, 40), gather(act, starts, 40)
    on = torch.as_tensor((ow[:, :-1] - stats.obs_mean) / stats.obs_std, dtype=torch.float32)
    an = torch.as_tensor((aw[:, :-1] - stats.act_mean) / stats.act_std, dtype=torch.float32)
    valid = torch.ones(len(starts), 39, 1)      # every row observed: both read the same ARX inputs
    with torch.no_grad():
        diff = clipped.seq(on, an, valid)[0] - plain.seq(on, an, valid)[0]
    want = torch.clamp(torch.full_like(bound, value), max=bound) if value > 0 else torch.maximum(
        torch.full_like(bound, value), -bound)
    # float32 sums of order-1 terms: 1e-5 absolute; a sign error or no clamp misses by >= 2e-3
    torch.testing.assert_close(diff, want.expand_as(diff), rtol=0, atol=1e-5)


def test_a_saturated_residual_keeps_the_free_run_bounded():
    """The clip's purpose: with the residual pinned at its bound for 2,000 free steps (the worst a
    residual network can do inside the clip) the stable ARX base plus a bounded input stays
    bounded, at the level the base's steady state gives, while the same network unclipped is
    carried as far as its output goes (here 1e3 normalized units per step, ~1e4 x further)."""
    obs, act, ep = _arx_system(n_ep=6, T=120)
    clipped, stats = _model(obs, act, ep, clip=True)
    plain, _ = _model(obs, act, ep, clip=False)
    for m in (clipped, plain):
        _constant_residual(m, 1e3)
    T = 2000
    on = torch.zeros(1, T, 2)
    on[0, :10] = torch.as_tensor((obs[:10] - stats.obs_mean) / stats.obs_std, dtype=torch.float32)
    an = torch.zeros(1, T, 2)
    valid = torch.zeros(1, T, 1)
    valid[:, :10] = 1.0
    with torch.no_grad():
        out = {k: m.seq(on, an, valid)[0][0].double().numpy() for k, m in (("clip", clipped), ("plain", plain))}
    level = {k: np.abs(np.cumsum(v * stats.dobs_std + stats.dobs_mean, axis=0)).max() for k, v in out.items()}
    # steady state of the base with a constant extra change u per step (physical units: the
    # bound times dobs_std) and the mean action a: 0 = -0.1 o + 0.4 a + u -> o = 4 a + 10 u; the
    # poles' overshoot (|z| = 0.84) is below 2x and the context start adds |o_0|: 3x covers it
    u = clipped.res_bound.double().numpy() * stats.dobs_std
    steady = np.abs(4 * stats.act_mean + 10 * u).max()
    assert level["clip"] < 3 * steady + np.abs(obs[:10]).max()
    assert level["plain"] > 100 * level["clip"]


def test_fit_stores_the_bound_and_the_checkpoint_restores_it():
    data = pendulum_data(n_ep=6, T=100, n=1, seed=1)
    train, val = data.select(data.episode < 4), data.select(data.episode >= 4)
    tcfg = TrainConfig(kind="acrkn-fwd", direction="forward", epochs=1, lod=4, num_basis=3, hidden=8,
                       window=20, stride=10, base="arx", residual_clip=True)
    ckpt = fit(train, val, tcfg, progress=False)
    obs, act = model_arrays(train, "forward")
    stats = Stats.from_dict(ckpt["stats"])
    want = arx_residual_bound(obs, act, train.episode, stats, normalized_arx_weights(obs, act, train.episode, stats))
    np.testing.assert_allclose(ckpt["state_dict"]["res_bound"].numpy(), want, rtol=1e-5)
    again = build_model(ModelConfig.from_dict(ckpt["model_config"]))
    again.load_state_dict(ckpt["state_dict"])
    assert torch.equal(again.res_bound, ckpt["state_dict"]["res_bound"])
    with pytest.raises(ValueError, match="residual_clip needs base 'arx'"):
        ModelConfig("acrkn-fwd", "forward", obs_dim=2, act_dim=2, residual_clip=True)


def test_cli_eval_adds_the_clipped_row(tmp_path, tiny_arx_run):
    npz, run = tiny_arx_run
    js = tmp_path / "e.json"
    assert main(["eval", "--data", npz, "--runs", str(run), "--residual-clip", "--json", str(js)]) == 0
    models = json.loads(js.read_text())["models"]
    r = models["acrkn-fwd s0 + residual clip"]
    assert all(np.isfinite(v) for v in r["rmse"].values()) and len(r["residual_bound"]) == 2
    assert np.isfinite(r["free_run"]["rmse"])
    with pytest.raises(SystemExit, match="--residual-clip needs --base arx"):
        main(["train", "--data", npz, "--model", "acrkn-fwd", "--residual-clip", "--epochs", "1",
              "--out", str(tmp_path / "x")])
