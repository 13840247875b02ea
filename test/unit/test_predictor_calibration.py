"""The streamed std's per-step calibration (metadata ``acrkn.std_scale``) on the shipped model.

Claims (each could fail): the runtime multiplies the accumulated variance by scale[h]^2 at the
h-th step after the last state (and by the last row beyond it); a scale fitted on one simulated
run brings the 95 % band's coverage on another run (other trajectory seed) closer to 0.95 than the
raw std at the longer steps. The fit is a 95th percentile over ~100 points per step here, so its
own sampling error is a few points of coverage; the check asks for |coverage - 0.95| <= 0.12 at
50 steps (the raw std's coverage there was 0.15-0.3 for the first model, far outside) and for
an improvement over the raw std wherever the raw band under-covers by more than that.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from dynlearn_ros.paths import models_dir

MODEL = models_dir() / "acrkn_iiwa_fwd"
pytestmark = pytest.mark.skipif(not (MODEL / "model.onnx").is_file(), reason="models/acrkn_iiwa_fwd not shipped")
STEPS = 60


@pytest.fixture(scope="module")
def model_copy(tmp_path_factory):
    out = tmp_path_factory.mktemp("cal") / "fwd"
    shutil.copytree(MODEL, out)
    meta = json.loads((out / "metadata.json").read_text())
    meta["acrkn"].pop("std_scale", None)
    (out / "metadata.json").write_text(json.dumps(meta))
    return out


def test_runtime_applies_the_scale_per_step(model_copy):
    from dynlearn_ros.runtime.acrkn import AcrknForwardPredictor

    m = AcrknForwardPredictor.from_directory(model_copy)
    n2 = m.obs_dim
    obs = np.concatenate([np.array([0.0, 0.5, 0.0, -1.0, 0.0, 0.8, 0.0]), np.zeros(7)])
    act = np.zeros(7)
    snap = np.zeros(m.snapshot_size, dtype=np.float32)
    raw_m, raw_v = np.zeros((5, n2)), np.zeros((5, n2))
    m.rollout(obs, act, raw_m, raw_v, snap)
    scale = np.array([[1.0] * n2, [2.0] * n2, [3.0] * n2])          # 3 rows: step 4, 5 use the last
    m.set_std_scale(scale)
    cal_m, cal_v = np.zeros((5, n2)), np.zeros((5, n2))
    m.rollout(obs, act, cal_m, cal_v, snap)
    np.testing.assert_array_equal(cal_m, raw_m)                       # the mean is untouched
    np.testing.assert_allclose(cal_v, raw_v * np.array([1, 4, 9, 9, 9])[:, None], rtol=1e-6)
    with pytest.raises(ValueError):
        m.set_std_scale(-scale)


def test_fitted_scale_calibrates_another_run(model_copy):
    pytest.importorskip("pybullet")
    from dynlearn_ros.benchmarks.predictor import (
        HeldOut,
        calibration_errors,
        collect_held_out,
        fit_std_scale,
        write_std_scale,
    )
    from dynlearn_ros.runtime.acrkn import AcrknForwardPredictor

    cal = fit_std_scale(model_copy, [HeldOut(3.0, 7, episodes=1, seconds=3.0)], steps=STEPS, every=25, warmup=200)
    assert cal["points"] >= 80
    write_std_scale(model_copy, cal)
    m = AcrknForwardPredictor.from_directory(model_copy)
    assert m.std_scale_source.startswith("per step")
    data = collect_held_out(HeldOut(3.0, 8, episodes=1, seconds=3.0))
    err, std = calibration_errors(m, data.q, data.qd, data.tau, data.t, STEPS, 25, 200)
    m.set_std_scale(None)
    _, raw = calibration_errors(m, data.q, data.qd, data.tau, data.t, STEPS, 25, 200)
    n = 7
    cov = np.mean(np.abs(err[..., :n]) <= 1.959964 * std[..., :n], axis=(0, 2))
    cov_raw = np.mean(np.abs(err[..., :n]) <= 1.959964 * raw[..., :n], axis=(0, 2))
    assert abs(cov[49] - 0.95) <= 0.12, (cov[49], cov_raw[49])
    bad = np.abs(cov_raw - 0.95) > 0.12
    assert np.all(np.abs(cov[bad] - 0.95) < np.abs(cov_raw[bad] - 0.95)), (cov[bad], cov_raw[bad])
