"""Synthetic pendulum data (no data set needed) for unit tests, examples and the training benchmark:
a damped pendulum per joint, qdd = tau - 2 sin(q) - 0.5 qd, explicit Euler at dt, sinusoidal torques."""

import numpy as np

from dynlearn_ros.datasets.format import TrajectoryData


def pendulum_data(n_ep: int = 12, T: int = 200, n: int = 2, seed: int = 0, dt: float = 0.01) -> TrajectoryData:
    rng = np.random.default_rng(seed)
    t_all, q_all, qd_all, tau_all, ep_all = [], [], [], [], []
    for e in range(n_ep):
        q, qd = rng.normal(0, 0.3, n), np.zeros(n)
        freq, ph = rng.uniform(0.5, 2.0, n), rng.uniform(0, 2 * np.pi, n)
        for k in range(T):
            tau = 2.0 * np.sin(2 * np.pi * freq * k * dt + ph)
            t_all.append(k * dt)
            q_all.append(q.copy())
            qd_all.append(qd.copy())
            tau_all.append(tau)
            ep_all.append(e)
            qdd = tau - 2.0 * np.sin(q) - 0.5 * qd
            qd = qd + dt * qdd
            q = q + dt * qd
    return TrajectoryData(t=np.array(t_all), q=np.array(q_all), qd=np.array(qd_all), tau=np.array(tau_all),
                          episode=np.array(ep_all), joint_names=[f"j{i}" for i in range(n)], dt=dt)
