"""The least-squares baselines of the tables (learning/evaluation/linear_baselines.py): each must
recover a system inside its model class exactly, and score on the rows the learned models do."""

import numpy as np

from dynlearn_ros.datasets.format import TrajectoryData
from dynlearn_ros.datasets.splits import train_val_test
from dynlearn_ros.datasets.windows import gather, inverse_rows, model_arrays, window_starts
from dynlearn_ros.learning.evaluation.linear_baselines import ARX, arx_multistep, inverse_baselines
from dynlearn_ros.learning.synthetic import white_noise_linear_data


def _linear_inverse_data(seed: int, n_ep: int = 8, T: int = 100) -> TrajectoryData:
    """Rows whose torque is exactly linear in [1, q, sin q, cos q, qd, sign qd, qdd] (2 joints)."""
    rng = np.random.default_rng(seed)
    N = n_ep * T
    q, qd, qdd = rng.uniform(-2, 2, (N, 2)), rng.normal(0, 1, (N, 2)), rng.normal(0, 3, (N, 2))
    tau = 0.7 + 1.5 * qdd + 2.0 * np.sin(q) - 0.4 * np.cos(q[:, ::-1]) + 0.5 * qd + 0.3 * np.sign(qd) + 0.1 * q
    return TrajectoryData(t=np.tile(np.arange(T) * 0.01, n_ep), q=q, qd=qd, qdd=qdd, tau=tau,
                          episode=np.repeat(np.arange(n_ep), T), joint_names=["a", "b"], dt=0.01)


def test_linear_inverse_baseline_recovers_a_linear_torque_and_scores_the_model_rows():
    tr, te = _linear_inverse_data(0), _linear_inverse_data(1)
    out = inverse_baselines(tr, te)
    rows = inverse_rows(te.episode)
    assert out["linear (least squares)"].shape == (rows.size, 2)
    # noise-free and inside the feature set: only float rounding remains
    np.testing.assert_allclose(out["linear (least squares)"], te.tau[rows], atol=1e-5 * np.abs(te.tau).max())
    np.testing.assert_allclose(out["training mean"], np.broadcast_to(tr.tau.mean(0), (rows.size, 2)))


def test_arx_recovers_a_noise_free_linear_system_over_long_horizons():
    """The white-noise system observed as [q, qd] is ARX(1, 1): o_{t+1} - o_t is linear in
    (o_t, a_t); an ARX(2, 2) fit contains it, so its 10-step rollout error is rounding only."""
    data = white_noise_linear_data(n_ep=10, T=200, n=2, seed=5)
    tr, _va, te = train_val_test(data, seed=0)
    res = arx_multistep(tr, te, obs_qd=True)
    scale = float(np.std(te.qd))
    assert res["windows"] > 0 and res["rmse"]["10"] < 1e-6 * scale, (res["rmse"], scale)
    # observing q only, the same system needs two lags of q (velocity is their difference):
    # ARX(2, 2) is exact again; ARX(1, 1) is not (it lacks the velocity)
    exact = arx_multistep(tr, te, obs_qd=False, na=2, nb=2)["rmse"]["10"]
    short = arx_multistep(tr, te, obs_qd=False, na=1, nb=1)["rmse"]["10"]
    assert exact < 1e-6 * float(np.std(te.q)) < short


def test_arx_rollout_uses_only_the_context_observations():
    data = white_noise_linear_data(n_ep=6, T=120, n=1, seed=6)
    obs, act = model_arrays(data, "forward", True)
    arx = ARX().fit(obs, act, data.episode)
    s = window_starts(data.episode, 40, 40)
    ow, aw = gather(obs, s, 40), gather(act, s, 40)
    spoiled = ow.copy()
    spoiled[:, 30:] = 1e6                    # rows after the context must never be read
    np.testing.assert_array_equal(arx.rollout(ow, aw, 30), arx.rollout(spoiled, aw, 30))
