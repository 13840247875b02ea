"""Known answers of the ARX headroom analysis (learning/evaluation/arx_headroom.py) on synthetic
systems where what is left to learn after ARX is known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from dynlearn_ros.learning.evaluation.arx_headroom import headroom, residual_autocorr


def _episodes(n_ep: int, T: int, quad: float, seed: int):
    """o_{t+1} - o_t = 0.3 (o_t - o_{t-1}) + 0.2 a_t + quad * (a_t^2 - 1) + eps_t, a ~ N(0, 1),
    eps ~ N(0, 0.01^2): an ARX(2, 2) system plus (quad > 0) a term no linear model can see."""
    rng = np.random.default_rng(seed)
    obs, act, ep = [], [], []
    for e in range(n_ep):
        a = rng.standard_normal((T, 1))
        o = np.zeros((T, 1))
        for t in range(1, T - 1):
            o[t + 1] = o[t] + 0.3 * (o[t] - o[t - 1]) + 0.2 * a[t] + quad * (a[t] ** 2 - 1) \
                + 0.01 * rng.standard_normal(1)
        obs.append(o), act.append(a), ep.append(np.full(T, e))
    return np.concatenate(obs), np.concatenate(act), np.concatenate(ep)


def test_autocorr_of_white_and_ar1_series():
    rng = np.random.default_rng(0)
    white = [rng.standard_normal((500, 2)) for _ in range(20)]
    ac = residual_autocorr(white, lags=5)
    # 10,000 pairs per lag: the sample autocorrelation of white noise has std ~1/sqrt(1e4) = 0.01;
    # 0.05 is five of them
    assert np.abs(ac).max() < 0.05
    ar = []
    for _ in range(20):
        x = np.zeros((500, 1))
        for t in range(1, 500):
            x[t] = 0.8 * x[t - 1] + rng.standard_normal(1)
        ar.append(x)
    ac = residual_autocorr(ar, lags=3)[:, 0]
    # AR(1) with phi = 0.8: rho_k = 0.8^k; the estimate's std is ~0.02 at 10,000 pairs (plus a
    # small downward bias from the per-series start), so 0.06
    np.testing.assert_allclose(ac, 0.8 ** np.arange(1, 4), atol=0.06)


@pytest.mark.parametrize("quad", [0.0, 0.05])
def test_headroom_sees_only_what_arx_misses(quad):
    tr = _episodes(120, 80, quad, seed=1)
    te = _episodes(60, 80, quad, seed=2)
    res = headroom(tr, {"test": te}, context=30, horizon=10, stride=10)
    r2 = res["r2"]["test"]
    ac = np.asarray(res["autocorr"])
    if quad == 0.0:
        # the system is ARX(2, 2): the 10-step error is the sum of future innovations, independent
        # of every feature, so no regressor explains it out of sample (R^2 ~ 0; 0.05 leaves room
        # for the fits' variance over ~1,000 test windows), and the one-step residual is white
        assert r2["ARX + linear"] < 0.05 and r2["ARX + trees"] < 0.05
        assert np.abs(ac).max() < 0.05
        assert res["rmse"]["test"]["ARX"] < 0.5 * res["rmse"]["test"]["previous state"]
    else:
        # the quadratic term's std per step is 0.05 * sqrt(2) = 0.07 against the noise's 0.01: most
        # of the 10-step error is a sum of a^2 terms of the actions the features hold, which the
        # additive trees can fit and the linear fit (symmetric in a) cannot
        assert r2["ARX + trees"] > 0.5
        assert r2["ARX + linear"] < 0.1
        assert res["rmse"]["test"]["ARX + trees"] < 0.7 * res["rmse"]["test"]["ARX"]


def test_extra_features_join_a_second_fit():
    tr = _episodes(60, 80, 0.0, seed=3)
    te = _episodes(30, 80, 0.0, seed=4)
    extra = {"train": np.ones((len(tr[0]), 2)), "test": np.ones((len(te[0]), 2))}
    res = headroom(tr, {"test": te}, extra=extra, trees=False)
    assert {"ARX + linear", "ARX + linear +extra"} <= set(res["rmse"]["test"])
    assert res["windows"]["test"] == 30 * 5        # rows 0..79: starts 0, 10, .., 40 per episode
