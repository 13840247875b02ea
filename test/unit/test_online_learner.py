"""The online learner (learning/online.py) on the shipped SVDKL model with a known change.

Samples are drawn around the model's own training distribution (its normalization: mean +- 0.5
std per input) and their targets are the shipped model's prediction plus a known torque change:
the answer the correction must learn is that change, exactly representable (a constant is the
features' first column), so after one cycle it is recovered to within the ridge's shrinkage,
ridge / (ridge + sum phi_0^2) ~ 1 / 300 of the offset at 300 samples, well inside 5 %.
"""

from __future__ import annotations

import numpy as np
import pytest

from dynlearn_ros.learning.online import OnlineConfig, OnlineLearner, SampleRing, StateDifferencer
from dynlearn_ros.paths import resolve_model_dir
from dynlearn_ros.runtime.metadata import ModelMetadata
from dynlearn_ros.runtime.registry import load_inverse_model
from dynlearn_ros.runtime.validate import open_model_dir

OFFSET = np.array([0.0, 6.0, 0.0, -3.0, 0.0, 0.0, 0.0])   # N*m: a payload's gravity on joints 2, 4


def _rows(learner: OnlineLearner, m: int, seed: int) -> np.ndarray:
    nz = learner.meta.normalization
    rng = np.random.default_rng(seed)
    return np.asarray(nz["x_mean"]) + 0.5 * rng.normal(size=(m, 21)) * np.asarray(nz["x_std"])


@pytest.fixture(scope="module")
def base_dir():
    return resolve_model_dir("svdkl_iiwa_sim")


def test_differencer_pairs_the_step_with_its_torque_and_counts_skips():
    d = StateDifferencer(2, max_gap_s=0.01)
    assert d.push([0, 0], [0.0, 1.0], 0.0, [9, 9]) is None            # first state
    x, y = d.push([0, 0], [0.002, 0.998], 0.001, [1.0, 2.0])
    np.testing.assert_allclose(x[4:], [2.0, -2.0])                     # a = dqd / dt
    np.testing.assert_allclose(x[2:4], [0.0, 1.0])                     # qd of the step's start
    np.testing.assert_allclose(y, [1.0, 2.0])                          # the torque over the step
    assert d.push([np.nan, 0], [0, 0], 0.002, [0, 0]) is None          # NaN: skipped
    assert d.push([0, 0], [0, 0], 0.003, [0, 0]) is None               # chain broken by the NaN
    assert d.push([0, 0], [0, 0], 0.003, [0, 0]) is None               # repeated stamp: stale
    assert d.push([0, 0], [0, 0], 0.5, [0, 0]) is None                 # gap > max_gap_s: stale
    assert d.counts == {"states": 6, "samples": 1, "nonfinite": 1, "stale": 2}


def test_ring_keeps_the_newest():
    r = SampleRing(3, 1)
    for i in range(5):
        r.push(np.full(3, i), np.full(1, i))
    x, _ = r.span(0, 5)
    np.testing.assert_array_equal(x[:, 0], [2, 3, 4])


def test_cycle_learns_a_torque_change_and_exports_a_valid_new_version(base_dir, tmp_path):
    lr = OnlineLearner(base_dir, tmp_path, OnlineConfig(batch=100, holdout=100))
    x = _rows(lr, 400, 0)
    y = lr.base_predict(x)[0] + OFFSET
    for xi, yi in zip(x, y, strict=True):
        lr.add(xi, yi)
    res = lr.cycle()
    assert res is not None and res.accepted, res
    assert res.heldout_candidate < 0.1 * res.heldout_running      # the gate saw the improvement
    vm = open_model_dir(res.path, kind="svdkl")                     # the contract: schema, golden
    assert vm.metadata.model_version == ModelMetadata.read(base_dir).model_version + 1
    model = load_inverse_model("svdkl", res.path, vm.metadata.joint_names)
    xt = _rows(lr, 20, 1)                                            # unseen rows
    got = np.array([_predict(model, row) for row in xt])
    base = lr.base_predict(xt)[0]
    np.testing.assert_allclose(got - base, np.broadcast_to(OFFSET, got.shape), atol=0.05 * 6.0)
    assert lr.cycle() is None                                        # nothing new yet
    assert lr.metrics()["accepted"] == 1


def test_gate_refuses_a_candidate_worse_on_the_held_out_window(base_dir, tmp_path):
    # training rows carry the offset, the newest (held-out) rows do not: the fitted correction is
    # worse there than the running model (none), so nothing is exported
    lr = OnlineLearner(base_dir, tmp_path, OnlineConfig(batch=100, holdout=100))
    x = _rows(lr, 300, 2)
    y = lr.base_predict(x)[0]
    y[:200] += OFFSET
    for xi, yi in zip(x, y, strict=True):
        lr.add(xi, yi)
    res = lr.cycle()
    assert res is not None and not res.accepted and "held-out" in res.reason
    assert lr.rejected == 1 and lr.version == ModelMetadata.read(base_dir).model_version
    assert not any(tmp_path.iterdir())


def _predict(model, x_row: np.ndarray) -> np.ndarray:
    from dynlearn_ros.core.inverse_model import InverseQuery

    n = model.n
    q = InverseQuery(n)
    q.q[:], q.qd[:], q.qdd_des[:] = x_row[:n], x_row[n:2 * n], x_row[2 * n:]
    mean, std = np.zeros(n), np.zeros(n)
    assert model.predict(q, mean, std)
    return mean
