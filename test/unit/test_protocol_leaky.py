"""The paper's leaky window protocol (datasets/splits.py) and its multi-step metric
(learning/evaluation/paper_metric.py), on synthetic data with known answers."""

import numpy as np
import pytest
import torch

from dynlearn_ros.datasets.normalize import Stats
from dynlearn_ros.datasets.splits import SplitSpec, split_data, split_paper_leaky, window_episodes
from dynlearn_ros.datasets.windows import model_arrays
from dynlearn_ros.learning.evaluation.linear_baselines import ARX
from dynlearn_ros.learning.evaluation.paper_metric import paper_multistep
from dynlearn_ros.learning.models.sequence import ModelConfig, build_model
from dynlearn_ros.learning.synthetic import white_noise_linear_data

DT, K, C = 0.1, 1.0, 0.5   # white_noise_linear_data's defaults: dt, stiffness, damping


class LinearOracle(torch.nn.Module):
    """The white-noise system's exact one-step map as a forward model (normalized units, the
    ``initial_state`` / ``step(obs, valid, act, state)`` interface): delta_t = f(o~_t, a_{t - shift}),
    o~_t the observation where valid, else its own running estimate. ``shift`` = 1 is the one-step
    misalignment (it reads the previous action)."""

    def __init__(self, stats: Stats, shift: int = 0) -> None:
        super().__init__()
        self.st, self.shift = stats, shift

    def initial_state(self, batch: int):
        return (torch.zeros(batch, 2, dtype=torch.float64), torch.zeros(batch, 1, dtype=torch.float64))

    def step(self, obs, valid, act, state):
        st = self.st
        est, a_prev = state
        o = torch.as_tensor(obs.double().numpy() * st.obs_std + st.obs_mean)
        a = torch.as_tensor(act.double().numpy() * st.act_std + st.act_mean)
        cur = torch.where(valid > 0, o, est)
        a_used = a_prev if self.shift else a
        q, qd = cur[:, :1], cur[:, 1:]
        dqd = DT * (a_used - K * q - C * qd)
        delta = torch.cat([DT * (qd + dqd), dqd], 1)
        mu = ((delta.numpy() - st.dobs_mean) / st.dobs_std)
        mu = torch.as_tensor(mu, dtype=torch.float32)
        return mu, torch.ones_like(mu), (cur + delta, a)


def test_windows_are_consecutive_non_overlapping_and_tails_dropped():
    data = white_noise_linear_data(n_ep=3, T=100, n=1, seed=1)
    w = window_episodes(data, 40)
    # 100 rows -> windows at 0 and 40, the last 20 rows dropped, per episode
    assert w.episodes().size == 6 and len(w) == 240
    for e in range(6):
        rows = w.t[w.episode == e]
        np.testing.assert_allclose(np.diff(rows), DT)               # consecutive rows of one episode
        assert rows[0] in (0.0, pytest.approx(4.0))                # starts at row 0 or row 40


def test_paper_leaky_split_puts_windows_of_one_recording_on_both_sides():
    """The protocol is leaky by construction: with 20 recordings of 5 windows, shuffled 80/20,
    some recording has windows in train and in test (the probability that none does is ~0)."""
    data = white_noise_linear_data(n_ep=20, T=200, n=1, seed=2)
    data.meta = {}
    orig_ep = data.episode.copy()
    tr, va, te = split_paper_leaky(data, (0.72, 0.08, 0.2), seed=0)
    assert te.meta["split"]["method"] == "paper-leaky"
    assert (len(tr) + len(va) + len(te)) == 20 * 5 * 40 and len(te) == 20 * 40
    # map rows back to their recording through time stamps + q (unique per row in this data)
    key = {(round(t, 6), float(q)): e for t, q, e in zip(data.t, data.q[:, 0], orig_ep, strict=True)}
    rec = lambda part: {key[(round(t, 6), float(q))] for t, q in zip(part.t, part.q[:, 0], strict=True)}  # noqa: E731
    assert rec(tr) & rec(te)
    # the same split through SplitSpec / split_data
    spec = SplitSpec.parse(None, protocol="paper-leaky")
    assert spec.fractions == (0.72, 0.08, 0.2)
    assert SplitSpec.from_dict(spec.to_dict()) == spec
    _tr2, _va2, te2 = split_data(data, seed=0, spec=spec)
    np.testing.assert_array_equal(te2.q, te.q)
    with pytest.raises(ValueError, match="neither"):
        SplitSpec((0.72, 0.08, 0.2), gap=3, protocol="paper-leaky")
    with pytest.raises(ValueError, match="protocol"):
        SplitSpec(protocol="random-rows")


def _leaky_test_set():
    data = white_noise_linear_data(n_ep=12, T=160, n=1, seed=3)
    tr, _va, te = split_paper_leaky(data, (0.72, 0.08, 0.2), seed=1)
    obs, act = model_arrays(tr, "forward", True)
    return tr, te, Stats.fit(obs, act, tr.episode)


def test_paper_metric_is_zero_for_the_exact_model_and_large_for_a_one_step_shift():
    """Known answer: the system's exact map scores ~0 at every k (float32 rounding of the
    normalized differences, ~1e-7 relative, summed over <= 10 steps); the same map reading
    a_{t-1} instead of a_t (independent white noise) scores about the previous-state error or
    worse, far above zero."""
    tr, te, st = _leaky_test_set()
    exact = paper_multistep(LinearOracle(st), st, te, obs_qd=True)
    shifted = paper_multistep(LinearOracle(st, shift=1), st, te, obs_qd=True)
    scale = float(np.std(te.qd))
    for k in ("1", "3", "5", "7", "10"):
        assert exact["rmse"][k] < 1e-5 * scale
        assert shifted["rmse"][k] > 0.2 * exact["prev_state_rmse"][k]
    # pairs: positions p = 4 .. 39 - k of each 40-row window (context >= 5 rows), i.e. 36 - k
    assert exact["windows"] * (36 - 10) == exact["pairs"]["10"]
    assert exact["windows"] * (36 - 1) == exact["pairs"]["1"]


@pytest.mark.parametrize("kind", ["acrkn-fwd", "rkn", "gru"])
def test_paper_metric_fast_path_equals_masked_reruns(kind):
    """The metric rolls each position from the stored state of one observed pass; it must equal
    the reference implementation's way, one full ``seq`` per position with rows p+1.. masked."""
    _tr, te, st = _leaky_test_set()
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind, "forward", obs_dim=2, act_dim=1, lod=4, enc_hidden=(8,),
                                    dec_hidden=(8,), ctrl_hidden=(8,)))
    if hasattr(model, "delta_scale"):
        model.delta_scale.fill_(0.3)
    res = paper_multistep(model, st, te, obs_qd=True)
    obs, act = model_arrays(te, "forward", True)
    ow, aw = obs.reshape(-1, 40, 2), act.reshape(-1, 40, 1)
    on = torch.as_tensor((ow - st.obs_mean) / st.obs_std, dtype=torch.float32)
    an = torch.as_tensor((aw - st.act_mean) / st.act_std, dtype=torch.float32)
    k, sq = 7, []
    with torch.no_grad():
        for p in range(4, 40 - k):
            valid = torch.zeros(ow.shape[0], 39, 1)
            valid[:, :p + 1] = 1.0
            mu, _ = model.seq(on[:, :-1], an[:, :-1], valid)
            delta = mu.double().numpy()[:, p:p + k] * st.dobs_std + st.dobs_mean
            sq.append((ow[:, p] + delta.sum(1) - ow[:, p + k]) ** 2)
    np.testing.assert_allclose(res["rmse"]["7"], np.sqrt(np.mean(np.concatenate(sq))), rtol=1e-5)


def test_paper_metric_previous_state_and_arx_by_hand():
    tr, te, st = _leaky_test_set()
    obs_tr, act_tr = model_arrays(tr, "forward", True)
    arx = ARX().fit(obs_tr, act_tr, tr.episode)
    res = paper_multistep(None, None, te, obs_qd=True, arx=arx)
    obs, _ = model_arrays(te, "forward", True)
    ow = obs.reshape(-1, 40, 2)
    k = 3
    err = np.concatenate([ow[:, p + k] - ow[:, p] for p in range(4, 40 - k)])
    np.testing.assert_allclose(res["prev_state_rmse"]["3"], np.sqrt(np.mean(err ** 2)), rtol=1e-12)
    allp = ow[:, k:] - ow[:, :-k]
    np.testing.assert_allclose(res["prev_state_all_rmse"]["3"], np.sqrt(np.mean(allp ** 2)), rtol=1e-12)
    # the system is inside ARX(2, 2) (semi-implicit Euler on [q, qd]): exact to rounding
    assert res["arx_rmse"]["10"] < 1e-9 and "rmse" not in res


def test_paper_metric_refuses_windows_of_unequal_length():
    data = white_noise_linear_data(n_ep=3, T=50, n=1, seed=4)
    with pytest.raises(ValueError, match="one length"):
        paper_multistep(None, None, data.select(np.arange(len(data)) < 120), obs_qd=True)


def test_cli_paper_leaky_train_and_eval_score_the_paper_metric(tmp_path):
    """train --protocol paper-leaky records the protocol; eval reuses it and reports the paper
    metric as the h = k columns (equal to paper_multistep on the same test windows), keeping the
    context-30 figures, with the ARX row on the same metric and the protocol named in the table."""
    import json

    from dynlearn_ros.cli import main
    from dynlearn_ros.datasets.format import save_npz
    from dynlearn_ros.learning.training.sequence import load_checkpoint

    npz = str(save_npz(tmp_path / "wn.npz", white_noise_linear_data(n_ep=10, T=160, n=1, seed=11)))
    run = tmp_path / "run"
    assert main(["train", "--data", npz, "--model", "gru", "--direction", "forward", "--obs-qd",
                 "--protocol", "paper-leaky", "--epochs", "1", "--lod", "3", "--hidden", "8",
                 "--out", str(run), "--no-progress"]) == 0
    summary = json.loads((run / "train.json").read_text())
    assert summary["split"]["protocol"] == "paper-leaky" and summary["train_config"]["mask_keep"] == 5
    js, md = tmp_path / "r.json", tmp_path / "r.md"
    assert main(["eval", "--data", npz, "--runs", str(run), "--json", str(js), "--md", str(md)]) == 0
    res = json.loads(js.read_text())
    r = res["models"]["gru s0"]
    assert "paper multi-step" in res["metric"] and "paper multi-step" in md.read_text()
    model, ck = load_checkpoint(run / "checkpoint.pt")
    _tr, _va, te = split_data(white_noise_linear_data(n_ep=10, T=160, n=1, seed=11), 0,
                              SplitSpec.from_dict(ck["split"]))
    ref = paper_multistep(model, Stats.from_dict(ck["stats"]), te, obs_qd=True)
    assert r["rmse"] == pytest.approx(ref["rmse"], rel=1e-6) and "rmse_context30" in r
    assert res["models"]["ARX(2, 2)"]["rmse"] == pytest.approx(r["paper_multistep"]["arx_rmse"], rel=1e-12)


def test_eval_refuses_a_run_trained_on_another_split_seed(tmp_path, capsys):
    """The leaky protocol shuffles the windows with the seed: a run trained with --seed 1 scored on
    --seed 0's test windows would be scored on windows it trained on (the lead met it in the ninth
    session: a seed-1 run's figures, evaluated without --seed, were better than they are). eval
    refuses it with one line naming the seed to use, and accepts it with that seed."""
    import json

    from dynlearn_ros.cli import main
    from dynlearn_ros.datasets.format import save_npz

    npz = str(save_npz(tmp_path / "wn.npz", white_noise_linear_data(n_ep=10, T=160, n=1, seed=11)))
    run = tmp_path / "run"
    assert main(["train", "--data", npz, "--model", "gru", "--direction", "forward", "--obs-qd",
                 "--protocol", "paper-leaky", "--epochs", "1", "--lod", "3", "--hidden", "8", "--seed", "1",
                 "--out", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    js = tmp_path / "r.json"
    assert main(["eval", "--data", npz, "--runs", str(run), "--json", str(js)]) == 2
    err = capsys.readouterr().err
    assert "--seed 1" in err and "trained on" in err and not js.exists()
    assert main(["eval", "--data", npz, "--runs", str(run), "--seed", "1", "--json", str(js)]) == 0
    assert json.loads(js.read_text())["split_seed"] == 1
