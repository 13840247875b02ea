"""Alignment of every target and input of the sequence models (issue 9, section 1).

Convention (models/sequence.py): an inverse model's output t (t = 1 .. W-2 of a window) reads
o_t, the desired o_{t+1} and the executed a_{t-1}, and predicts a_t - a_{t-1} ("difference") or
a_t ("absolute"); evaluation, export and runtime add a difference to a_{t-1}. A forward model's
output t (t = 0 .. W-2) reads o_s, a_s for s <= t and predicts o_{t+1} - o_t.

Three levels: the loss targets against hand-computed row indices (exact), each model's inputs by
perturbation (which outputs may move when one input row moves), and brief trainings on a system
driven by white-noise actions where a one-step shift leaves nothing to learn.
"""

import dataclasses

import numpy as np
import pytest
import torch

from dynlearn_ros.datasets.format import TrajectoryData
from dynlearn_ros.datasets.normalize import Stats
from dynlearn_ros.datasets.splits import train_val_test
from dynlearn_ros.datasets.windows import gather, model_arrays, window_starts
from dynlearn_ros.learning.evaluation.sequence import inverse_predict
from dynlearn_ros.learning.models.sequence import ModelConfig, build_model
from dynlearn_ros.learning.synthetic import white_noise_linear_data
from dynlearn_ros.learning.training.sequence import (
    TrainConfig,
    WindowSet,
    batch_loss,
    fit,
    forward_target,
    inverse_action_target,
    inverse_forward_target,
    set_delta_buffers,
)

INVERSE = ("acrkn-inv", "lstm", "gru", "ffnn")
FORWARD = ("acrkn-fwd", "rkn", "lstm", "gru")


def _indexed_data() -> TrajectoryData:
    """Two episodes whose values encode their row: tau_k = k^2 (+ joint offset), q_k = k^3 / 100,
    qd_k = sqrt(k); every one-step difference differs from its neighbours, so a shift shows."""
    k = np.arange(30, dtype=float)
    rows = []
    for e in range(2):
        kk = k + 100 * e
        rows.append((kk, np.stack([kk ** 2, kk ** 2 + 7 * kk], 1), np.stack([kk ** 3 / 100, -kk ** 3 / 50], 1),
                     np.stack([np.sqrt(kk), kk], 1)))
    t = np.concatenate([np.arange(30) * 0.01] * 2)
    return TrajectoryData(t=t, q=np.concatenate([r[2] for r in rows]), qd=np.concatenate([r[3] for r in rows]),
                          tau=np.concatenate([r[1] for r in rows]), episode=np.repeat([0, 1], 30),
                          joint_names=["a", "b"], dt=0.01)


@pytest.mark.parametrize("direction", ["inverse", "forward"])
def test_loss_targets_equal_hand_computed_rows(direction):
    data = _indexed_data()
    tc = TrainConfig(kind="ffnn" if direction == "inverse" else "gru", direction=direction, window=8, stride=3)
    obs, act = model_arrays(data, direction)
    st = Stats.fit(obs, act, data.episode)
    ws = WindowSet(data, st, tc)
    starts = window_starts(data.episode, 8, 3)
    idx = torch.arange(len(ws))
    d_a = inverse_action_target(ws.act[idx], ws.dact[idx], "difference").double().numpy() * st.dact_std + st.dact_mean
    a_abs = inverse_action_target(ws.act[idx], ws.dact[idx], "absolute").double().numpy() * st.act_std + st.act_mean
    d_o_inv = inverse_forward_target(ws.dobs[idx]).double().numpy() * st.dobs_std + st.dobs_mean
    d_o_fwd = forward_target(ws.dobs[idx]).double().numpy() * st.dobs_std + st.dobs_mean
    # float32 windows of values up to ~1.6e4: compare with a relative tolerance of float32 rounding
    tol = dict(rtol=1e-4, atol=1e-2)
    for i, s in enumerate(starts):
        for t in range(1, 7):                    # inverse outputs t = 1 .. W-2
            np.testing.assert_allclose(d_a[i, t - 1], act[s + t] - act[s + t - 1], **tol)
            np.testing.assert_allclose(a_abs[i, t - 1], act[s + t], **tol)
            np.testing.assert_allclose(d_o_inv[i, t - 1], obs[s + t] - obs[s + t - 1], **tol)
        for t in range(0, 7):                    # forward outputs t = 0 .. W-2
            np.testing.assert_allclose(d_o_fwd[i, t], obs[s + t + 1] - obs[s + t], **tol)


@pytest.mark.parametrize("act_target", ["difference", "absolute"])
def test_batch_loss_uses_the_hand_computed_inverse_target(act_target):
    """The loss reported by batch_loss is the RMSE against a_t - a_{t-1} (or a_t) taken straight
    from the data rows, not against a neighbouring step."""
    data = _indexed_data()
    tc = TrainConfig(kind="ffnn", direction="inverse", window=8, stride=3, lod=4, hidden=16, act_target=act_target)
    obs, act = model_arrays(data, "inverse")
    st = Stats.fit(obs, act, data.episode)
    ws = WindowSet(data, st, tc)
    torch.manual_seed(0)
    model = build_model(ModelConfig("ffnn", "inverse", obs_dim=4, act_dim=2, lod=4, enc_hidden=(16,),
                                    dec_hidden=(16,), act_target=act_target))
    set_delta_buffers(model, st)
    idx = torch.arange(len(ws))
    _, parts = batch_loss(model, ws, idx, tc, torch.Generator().manual_seed(0))
    with torch.no_grad():
        mu = model.seq(ws.obs[idx], ws.act[idx])[0].double().numpy()
    aw = gather(act, window_starts(data.episode, 8, 3), 8)
    if act_target == "difference":
        y = ((aw[:, 1:-1] - aw[:, :-2]) - st.dact_mean) / st.dact_std
        shifted = ((aw[:, 2:] - aw[:, 1:-1]) - st.dact_mean) / st.dact_std
    else:
        y = (aw[:, 1:-1] - st.act_mean) / st.act_std
        shifted = (aw[:, 2:] - st.act_mean) / st.act_std
    expect = np.sqrt(np.mean((mu - y) ** 2))
    # float32 loss against the float64 hand computation: agreement to ~1e-6 relative; the RMSE
    # against the neighbouring step's target must lie well outside that agreement
    gap = abs(float(parts["rmse"]) - expect)
    assert gap < 1e-4 * expect
    assert abs(np.sqrt(np.mean((mu - shifted) ** 2)) - expect) > 10 * gap


def _moved(out0: torch.Tensor, out1: torch.Tensor) -> list[int]:
    """Output steps (axis 1) that changed."""
    return [j for j in range(out0.shape[1]) if (out0[:, j] - out1[:, j]).abs().max() > 1e-7]


@pytest.mark.parametrize("kind", INVERSE)
def test_inverse_inputs_by_perturbation(kind):
    """Output index j is step t = j + 1. Moving a_s may move only steps t >= s + 1 (it enters as
    a_{t-1}), and must move t = s + 1; moving o_s may move only t >= s - 1 (it enters as o_{t+1}
    and o_t), and must move t = s - 1 and t = s. The FFNN has no memory: exactly those steps."""
    torch.manual_seed(1)
    W = 9
    model = build_model(ModelConfig(kind, "inverse", obs_dim=4, act_dim=2, lod=4, enc_hidden=(16,), dec_hidden=(16,),
                                    ctrl_hidden=(16,)))
    model.eval()
    obs, act = torch.randn(2, W, 4), torch.randn(2, W, 2)
    with torch.no_grad():
        base = model.seq(obs, act)[0]
        for s in range(W):
            a2 = act.clone()
            a2[:, s] += 1.0
            moved = _moved(base, model.seq(obs, a2)[0])
            steps = [j + 1 for j in moved]
            if kind == "ffnn":
                assert steps == ([s + 1] if 1 <= s + 1 <= W - 2 else []), (s, steps)
            else:
                assert all(t >= s + 1 for t in steps) and ((s + 1 in steps) == (s + 1 <= W - 2)), (s, steps)
            o2 = obs.clone()
            o2[:, s] += 1.0
            steps = [j + 1 for j in _moved(base, model.seq(o2, act)[0])]
            must = [t for t in (s - 1, s) if 1 <= t <= W - 2]
            assert all(t >= s - 1 for t in steps) and all(t in steps for t in must), (s, steps)
            if kind == "ffnn":
                assert steps == must, (s, steps)


@pytest.mark.parametrize("kind", FORWARD)
def test_forward_inputs_by_perturbation(kind):
    """Forward output t (t = 0 .. T-1 of the inputs) predicts o_{t+1} - o_t from o_s, a_s, s <= t:
    moving a_s or o_s moves step s (and may move later ones), never an earlier one."""
    torch.manual_seed(2)
    T = 8
    model = build_model(ModelConfig(kind, "forward", obs_dim=3, act_dim=2, lod=4, enc_hidden=(16,), dec_hidden=(16,),
                                    ctrl_hidden=(16,)))
    model.eval()
    obs, act, valid = torch.randn(2, T, 3), torch.randn(2, T, 2), torch.ones(2, T, 1)
    with torch.no_grad():
        base = model.seq(obs, act, valid)[0]
        for s in range(T):
            for which in ("obs", "act"):
                o2, a2 = obs.clone(), act.clone()
                (o2 if which == "obs" else a2)[:, s] += 1.0
                steps = _moved(base, model.seq(o2, a2, valid)[0])
                assert steps and min(steps) == s, (which, s, steps)


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.corrcoef(x.ravel(), y.ravel())[0, 1])


# Brief trainings on white-noise actions. a_t is an exact linear function of (o_t, o_{t+1}), so a
# correctly aligned model reaches a correlation near 1 with its target; 0.9 leaves room for the
# short training. a_{t+1} is independent of everything the model reads, so with the target
# shifted by one step (the old bug: a_{t+1} - a_t) the best it could learn is -a_t, whose
# correlation with a_t - a_{t-1} is -1/sqrt(2): the 0.9 bound fails by far. A correct model's
# difference correlates with the shifted difference like a_t - a_{t-1} does with a_{t+1} - a_t,
# i.e. -0.5; we require < -0.3. For "absolute", a correct model is uncorrelated with a_{t+1}
# (|corr| < 0.2: the 180 scored test rows give a sampling spread of ~0.075, so 2.7 of it).
#
# The test rows are predicted in chunks of the training window (20 rows, the belief reset at each
# chunk, as training and validation see them), not over whole 200-row episodes: a 5-epoch ac-RKN
# is not trained to stay stable 10x past its window, and on an AVX512 Xeon (session 12) this one
# ran its latent mean away after ~86 rows of an episode (predictions ~1e11) while its validation
# RMSE was 0.095; on the AMD machines of earlier sessions it happened to stay bounded. What the
# test checks, the alignment of target and inputs, is the same on chunks (10 chunks, 180 rows).
def _in_chunks(data: TrajectoryData, rows: int) -> TrajectoryData:
    """The same rows with each episode cut into chunks of ``rows`` (new episode ids)."""
    ep = np.asarray(data.episode)
    start = np.r_[0, np.flatnonzero(np.diff(ep)) + 1]
    pos = np.arange(ep.size) - np.repeat(start, np.diff(np.r_[start, ep.size]))
    return dataclasses.replace(data, episode=ep * 100_000 + pos // rows)


@pytest.mark.parametrize("act_target", ["difference", "absolute"])
@pytest.mark.parametrize("kind", INVERSE)
def test_brief_training_learns_the_aligned_inverse_target(kind, act_target):
    data = white_noise_linear_data(n_ep=10, T=200, n=1, seed=3)
    tr, va, te = train_val_test(data, seed=0)
    tc = TrainConfig(kind=kind, direction="inverse", epochs=5, window=20, stride=4, lod=6, hidden=32,
                     batch_size=16, lr=5e-3, act_target=act_target)
    ckpt = fit(tr, va, tc, progress=False)
    model = build_model(ModelConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["state_dict"])
    tau_hat, _std, rows = inverse_predict(model, Stats.from_dict(ckpt["stats"]), _in_chunks(te, tc.window))
    a = te.tau
    if act_target == "difference":
        out = tau_hat - a[rows - 1]
        right, shifted = a[rows] - a[rows - 1], a[rows + 1] - a[rows]
        assert _corr(out, right) > 0.9, (_corr(out, right), _corr(out, shifted))
        assert _corr(out, shifted) < -0.3
    else:
        assert _corr(tau_hat, a[rows]) > 0.9, (_corr(tau_hat, a[rows]), _corr(tau_hat, a[rows + 1]))
        assert abs(_corr(tau_hat, a[rows + 1])) < 0.2


@pytest.mark.parametrize("kind", FORWARD)
def test_brief_training_learns_the_aligned_forward_target(kind):
    """Forward models observing [q, qd]: qd_{t+1} - qd_t = dt (a_t - q_t - 0.5 qd_t) is mostly
    the white-noise a_t, so the one-step prediction must correlate with it (> 0.9, same reasoning
    as above) and not with the neighbouring step's change (|corr| < 0.3: the change is ~0.95
    white noise, its lag-1 autocorrelation is small)."""
    data = white_noise_linear_data(n_ep=10, T=200, n=1, seed=4)
    tr, va, te = train_val_test(data, seed=0)
    tc = TrainConfig(kind=kind, direction="forward", epochs=4, window=20, stride=4, lod=6, hidden=32,
                     batch_size=16, lr=5e-3, obs_qd=True, mask_frac=0.0)
    ckpt = fit(tr, va, tc, progress=False)
    model = build_model(ModelConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["state_dict"])
    st = Stats.from_dict(ckpt["stats"])
    obs, act = model_arrays(te, "forward", obs_qd=True)
    starts = window_starts(te.episode, 40, 40)
    ow, aw = gather(obs, starts, 40), gather(act, starts, 40)
    f = lambda x: torch.as_tensor(x, dtype=torch.float32)  # noqa: E731
    with torch.no_grad():
        mu, _ = model.seq(f((ow[:, :-1] - st.obs_mean) / st.obs_std), f((aw[:, :-1] - st.act_mean) / st.act_std),
                          torch.ones(len(starts), 39, 1))
    d_hat = mu.double().numpy()[..., 1] * st.dobs_std[1] + st.dobs_mean[1]     # qd column
    d_true = np.diff(ow[..., 1], axis=1)                                       # (k, 39): qd_{t+1} - qd_t
    assert _corr(d_hat, d_true) > 0.9, _corr(d_hat, d_true)
    assert abs(_corr(d_hat[:, 1:], d_true[:, :-1])) < 0.3
