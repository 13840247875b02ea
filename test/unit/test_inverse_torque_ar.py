"""learning.evaluation.linear_baselines.torque_ar: the torque-history reference of regime (ii)."""

from __future__ import annotations

import numpy as np

from dynlearn_ros.datasets.format import TrajectoryData
from dynlearn_ros.datasets.windows import inverse_rows
from dynlearn_ros.learning.evaluation.linear_baselines import _torque_lags, torque_ar


def _sines(n_ep: int, rows: int, w: tuple[float, ...], seed: int) -> TrajectoryData:
    rng = np.random.default_rng(seed)
    t = np.arange(rows) * 0.01
    tau = np.concatenate([np.sin(np.outer(t, w) + rng.uniform(0, 6, len(w))) * 3.0 for _ in range(n_ep)])
    z = np.zeros_like(tau)
    return TrajectoryData(t=np.tile(t, n_ep), q=z, qd=z, qdd=z, tau=tau, episode=np.repeat(np.arange(n_ep), rows),
                          joint_names=tuple(f"j{i}" for i in range(len(w))), dt=0.01)


def test_lags_are_the_previous_changes_inside_the_episode():
    tau = np.arange(10.0)[:, None] ** 2              # d_t = tau_t - tau_{t-1} = 2t - 1
    lags = _torque_lags(tau, np.repeat([0, 1], 5), 2)[:, 0]
    # row 3 of episode 0: tau_2 - tau_1 = 3, tau_1 - tau_0 = 1; row 1 has no change before it
    np.testing.assert_array_equal(lags[3], [3, 1])
    np.testing.assert_array_equal(lags[1], [0, 0])
    np.testing.assert_array_equal(lags[2], [1, 0])
    np.testing.assert_array_equal(lags[7], [11, 0])  # episode 1 starts at row 5: nothing from episode 0


def test_a_sinusoid_is_an_exact_ar2_and_not_an_ar1():
    """d_t = 2 cos(w dt) d_{t-1} - d_{t-2} holds exactly for a sampled sinusoid, so AR(2) fitted on
    other episodes (other phases) predicts every row with all lags to rounding; AR(1) cannot, and
    a lag read one row late would break AR(2) by a whole step's change."""
    tr, te = _sines(4, 200, (1.3, 4.0), 0), _sines(2, 200, (1.3, 4.0), 1)
    rows = inverse_rows(te.episode)
    full = rows[(rows % 200) >= 3]                   # rows whose two lags lie inside the episode
    idx = np.isin(rows, full)
    err2 = torque_ar(tr, te, rows, 2)[idx] - te.tau[full]
    err1 = torque_ar(tr, te, rows, 1)[idx] - te.tau[full]
    prev = te.tau[full - 1] - te.tau[full]
    assert np.abs(err2).max() < 1e-9                 # float64 least squares on exact data
    assert np.sqrt((err1**2).mean()) > 1e-4 and np.sqrt((prev**2).mean()) > 0.05
