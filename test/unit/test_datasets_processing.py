"""Pure, seeded tests of the data processing: acceleration filter, splits, normalizer, windows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dynlearn_ros.datasets.filtering import acceleration_from_velocity, episode_bounds
from dynlearn_ros.datasets.format import TrajectoryData
from dynlearn_ros.datasets.normalize import Normalizer, fit_normalizers
from dynlearn_ros.datasets.splits import split_by_episode, split_contiguous, train_val_test
from dynlearn_ros.datasets.windows import make_windows, window_starts


def synthetic(lengths: list[int], n: int = 3, seed: int = 0, dt: float = 0.01) -> TrajectoryData:
    """Episodes of the given lengths with random signals; q[:, 0] holds the global row index."""
    rng = np.random.default_rng(seed)
    rows = sum(lengths)
    q = rng.normal(size=(rows, n))
    q[:, 0] = np.arange(rows)
    episode = np.repeat(np.arange(len(lengths)) * 10 + 3, lengths)  # ids need not be 0..E-1
    t = np.concatenate([np.arange(k) * dt for k in lengths])
    return TrajectoryData(t=t, q=q, qd=rng.normal(size=(rows, n)), tau=rng.normal(size=(rows, n + 2)),
                          qdd=rng.normal(size=(rows, n)), episode=episode,
                          joint_names=tuple(f"j{i}" for i in range(n)), dt=dt)


# ---------------------------------------------------------------- acceleration filter

def test_qdd_of_sinusoid_matches_exact_derivative_and_rejects_high_frequency():
    """qd = A sin(w1 t) + B sin(w2 t), 1 kHz, f1 = 1 Hz, f2 = 100 Hz, cut-off 10 Hz (order 4).

    Expected error on the 1 Hz term (relative to its derivative amplitude A w1):
    * filter gain 1/(1 + (1/10)^8) -> 1e-8;
    * central differences: relative error (w1 dt)^2 / 6 = 6.6e-6.
    The 100 Hz term is attenuated by 1/(1 + 10^8) = 1e-8 of its derivative amplitude B w2, i.e.
    1e-8 * B w2 / (A w1) = 1e-6 relative with B/A = 0.01. Filter start-up transients decay with
    the slowest pole (damping 0.38 at 2 pi 10 rad/s: time constant 42 ms), so 0.5 s at each end
    (12 time constants, e^-12 = 6e-6) are excluded. Bound: 1e-4, ten times the sum.
    """
    dt = 1e-3
    t = np.arange(20000) * dt
    a_amp, w1 = 0.8, 2 * np.pi * 1.0
    b_amp, w2 = 0.008, 2 * np.pi * 100.0
    qd = (a_amp * np.sin(w1 * t) + b_amp * np.sin(w2 * t))[:, None]
    qdd = acceleration_from_velocity(qd, dt, cutoff_hz=10.0)
    exact = a_amp * w1 * np.cos(w1 * t)
    inner = slice(500, -500)
    rel = np.max(np.abs(qdd[inner, 0] - exact[inner])) / (a_amp * w1)
    assert rel < 1e-4
    # without the filter the 100 Hz term would dominate: B w2 / (A w1) = 1.0 relative
    raw = np.gradient(qd[:, 0], dt)
    assert np.max(np.abs(raw[inner] - exact[inner])) / (a_amp * w1) > 0.5


def test_qdd_filter_never_crosses_episodes():
    rng = np.random.default_rng(1)
    qd = rng.normal(size=(300, 2))
    qd[100:] += 50.0  # a jump at the episode boundary
    episode = np.repeat([0, 1], [100, 200])
    joint = acceleration_from_velocity(qd, 0.01, 5.0, episode=episode)
    np.testing.assert_array_equal(joint[:100], acceleration_from_velocity(qd[:100], 0.01, 5.0))
    np.testing.assert_array_equal(joint[100:], acceleration_from_velocity(qd[100:], 0.01, 5.0))


# ---------------------------------------------------------------- splits

def _rows(d: TrajectoryData) -> np.ndarray:
    return d.q[:, 0].astype(int)


def test_split_by_episode_disjoint_covering_seeded():
    data = synthetic([20 + 3 * i for i in range(20)])
    tr, va, te = split_by_episode(data, (0.7, 0.15, 0.15), seed=4)
    ep = [set(p.episodes().tolist()) for p in (tr, va, te)]
    assert [len(e) for e in ep] == [14, 3, 3]
    assert not (ep[0] & ep[1] or ep[0] & ep[2] or ep[1] & ep[2])
    rows = np.concatenate([_rows(p) for p in (tr, va, te)])
    assert np.array_equal(np.sort(rows), np.arange(len(data)))  # covering, no duplicates
    for p in (tr, va, te):  # rows keep time order and whole episodes
        assert np.all(np.diff(_rows(p)) > 0)
        for e in p.episodes():
            assert (p.episode == e).sum() == (data.episode == e).sum()
    again = split_by_episode(data, (0.7, 0.15, 0.15), seed=4)
    assert all(np.array_equal(a.episode, b.episode) for a, b in zip((tr, va, te), again, strict=True))
    other = split_by_episode(data, (0.7, 0.15, 0.15), seed=5)
    assert not np.array_equal(other[0].episodes(), tr.episodes())
    assert tr.meta["split"]["part"] == "train" and te.meta["split"]["method"] == "episode"


def test_split_contiguous_blocks_in_time_with_gap():
    data = synthetic([1000])
    tr, va, te = split_contiguous(data, (0.7, 0.15, 0.15))
    assert [len(p) for p in (tr, va, te)] == [700, 150, 150]
    assert _rows(tr).max() < _rows(va).min() and _rows(va).max() < _rows(te).min()
    assert np.array_equal(np.concatenate([_rows(p) for p in (tr, va, te)]), np.arange(1000))
    tr, va, te = split_contiguous(data, (0.7, 0.15, 0.15), gap=10)
    assert len(tr) + len(va) + len(te) == 980
    assert _rows(va).min() - _rows(tr).max() == 11 and _rows(te).min() - _rows(va).max() == 11
    for p in (tr, va, te):
        assert np.all(np.diff(_rows(p)) == 1)


def test_train_val_test_picks_method_by_episode_count():
    assert train_val_test(synthetic([50] * 4))[0].meta["split"]["method"] == "contiguous"
    assert train_val_test(synthetic([50] * 5))[0].meta["split"]["method"] == "episode"
    with pytest.raises(ValueError):
        split_contiguous(synthetic([50]), (0.5, 0.5, 0.5))


# ---------------------------------------------------------------- normalizer

def test_normalizer_round_trip_json_and_constant_column():
    rng = np.random.default_rng(2)
    x = rng.normal(loc=[3.0, -200.0, 0.0], scale=[0.5, 40.0, 1.0], size=(500, 3))
    x[:, 2] = 7.0  # constant column
    norm = Normalizer.fit(x)
    z = norm.transform(x)
    np.testing.assert_allclose(z[:, :2].mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z[:, :2].std(0), 1.0, rtol=1e-12)
    assert np.all(z[:, 2] == 0.0) and norm.std[2] == norm.min_std
    # inverse(transform(x)) = x up to float64 rounding of |x|/std * std (~1e-16 relative)
    np.testing.assert_allclose(norm.inverse(z), x, rtol=1e-13, atol=1e-12)
    back = Normalizer.from_dict(json.loads(json.dumps(norm.to_dict())))
    np.testing.assert_array_equal(back.transform(x[:7]), norm.transform(x[:7]))
    np.testing.assert_array_equal(norm.transform(x[None, :4]), norm.transform(x[:4])[None])  # (B, T, d)
    np.testing.assert_allclose(norm.inverse_scale(np.ones(3)), norm.std)


def test_normalizer_stats_come_from_train_only():
    data = synthetic([200] * 6)
    data.tau[data.episode >= 33] += 100.0  # episodes 4 and 5 (ids 43, 53) are shifted
    tr, va, te = split_contiguous(data, (0.5, 0.25, 0.25))  # train = episodes 0..2
    norms = fit_normalizers(tr)
    assert set(norms) == {"q", "qd", "qdd", "tau"}
    np.testing.assert_allclose(norms["tau"].mean, tr.tau.mean(0))
    assert np.all(np.abs(norms["tau"].mean) < 1.0)  # the shifted validation/test rows are not in it
    assert np.all(norms["tau"].transform(te.tau).mean(0) > 50.0)


# ---------------------------------------------------------------- windows

def test_windows_stay_inside_episodes():
    lengths = [5, 12, 30, 7]
    data = synthetic(lengths)
    w = make_windows(data, 6, stride=3)
    expected = sum(len(range(0, k - 6 + 1, 3)) for k in lengths)  # episode of 5 rows: none
    assert len(w) == expected == 0 + 3 + 9 + 1  # starts 0,3,6 | 0..24 | 0
    assert w.q.shape == (expected, 6, 3) and w.tau.shape == (expected, 6, 5) and w.qdd.shape == (expected, 6, 3)
    idx = w.start[:, None] + np.arange(6)
    ep = data.episode[idx]
    assert np.all(ep == ep[:, :1]) and np.array_equal(ep[:, 0], w.episode)
    np.testing.assert_array_equal(w.q[:, :, 0], idx)  # rows copied in order
    np.testing.assert_allclose(np.diff(w.t, axis=1), data.dt)
    # default stride = length: non-overlapping
    w2 = make_windows(data, 6)
    assert len(w2) == sum(k // 6 for k in lengths)
    assert np.all(np.diff(w2.start)[np.diff(w2.episode) == 0] == 6)
    assert window_starts(data.episode, 40, 1).size == 0
    assert make_windows(data, 40).q.shape == (0, 40, 3)


def test_windows_with_real_episode_bounds_shape():
    data = synthetic([100, 100, 100])
    w = make_windows(data, 10, stride=1)
    assert len(w) == 3 * 91
    bounds = episode_bounds(data.episode)
    for s, e in zip(w.start, w.episode, strict=True):
        a, b = next(bd for bd in bounds if data.episode[bd[0]] == e)
        assert a <= s and s + 10 <= b


# ---------------------------------------------------------------- the sequence models' part of the pipeline
def test_stats_differences_stay_inside_episodes_and_constant_columns_map_to_zero():
    from dynlearn_ros.datasets.normalize import Stats

    data = synthetic([5, 7])  # q[:, 0] = row index: +1 inside an episode, +1 across the boundary too
    obs = data.q.copy()
    obs[5:, 0] += 100.0        # a jump of 101 between the episodes that no difference may see
    act = np.ones((len(data), 2))  # constant actions
    st = Stats.fit(obs, act, data.episode)
    assert st.dobs_mean[0] == pytest.approx(1.0) and st.dobs_std[0] == pytest.approx(1.0)  # all +1: std 0 -> 1
    assert np.all(st.act_std == 1.0) and np.all(st.dact_std == 1.0)
    assert np.allclose((act - st.act_mean) / st.act_std, 0.0)
    back = Stats.from_dict(json.loads(json.dumps(st.to_dict())))
    assert all(np.array_equal(getattr(back, k), getattr(st, k)) for k in st.__dict__)


def test_gather_model_arrays_and_inverse_rows():
    from dynlearn_ros.datasets.windows import gather, inverse_rows, model_arrays

    data = synthetic([4, 2, 6])
    obs, act = model_arrays(data, "inverse")
    assert obs.shape == (12, 6) and act is data.tau
    assert model_arrays(data, "forward")[0] is data.q
    assert model_arrays(data, "forward", obs_qd=True)[0].shape == (12, 6)
    starts = window_starts(data.episode, 3, 1)
    w = gather(data.q, starts, 3)
    assert w.shape == (len(starts), 3, 3) and np.array_equal(w[:, :, 0], starts[:, None] + np.arange(3))
    # first and last row of each episode dropped; the 2-row episode gives none
    assert inverse_rows(data.episode).tolist() == [1, 2, 7, 8, 9, 10]


def test_subsample_keeps_every_kth_row_of_each_episode():
    from dynlearn_ros.datasets.filtering import subsample

    data = synthetic([5, 4])
    sub = subsample(data, 2)
    assert sub.q[:, 0].tolist() == [0, 2, 4, 5, 7]  # each episode restarts at its first row
    assert sub.dt == pytest.approx(2 * data.dt) and sub.meta["subsample"] == 2
    assert subsample(data, 1) is data


def test_load_splits_truncates_only_the_training_part(tmp_path):
    from dynlearn_ros.datasets.format import save_npz
    from dynlearn_ros.datasets.splits import load_splits

    path = save_npz(tmp_path / "d.npz", synthetic([30] * 6))
    data, tr, va, te = load_splits(str(path), seed=1, max_train_samples=17)
    _, tr_full, va_full, te_full = load_splits(str(path), seed=1)
    assert len(data) == 180 and len(tr) == 17 and np.array_equal(tr.q, tr_full.q[:17])
    assert np.array_equal(va.q, va_full.q) and np.array_equal(te.q, te_full.q)
    with pytest.raises(FileNotFoundError):
        load_splits(str(tmp_path / "missing.npz"))
