"""Synthetic data (no data set needed) for unit tests, examples and the training benchmark.

``pendulum_data``: a damped pendulum per joint, qdd = tau - 2 sin(q) - 0.5 qd, explicit Euler at
dt, sinusoidal torques. ``white_noise_linear_data``: a linear system driven by white-noise actions
at a coarse dt, where a one-step shift of a target leaves nothing to learn (alignment tests)."""

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


def white_noise_linear_data(n_ep: int = 6, T: int = 300, n: int = 1, seed: int = 0, dt: float = 0.1,
                            stiffness: float = 1.0, damping: float = 0.5) -> TrajectoryData:
    """A discrete-time linear system driven by white-noise actions, for alignment tests.

    Per joint, semi-implicit Euler at a coarse ``dt`` (s):
        qd_{t+1} = qd_t + dt (a_t - stiffness q_t - damping qd_t),  q_{t+1} = q_t + dt qd_{t+1},
    a_t ~ N(0, 1) i.i.d. (N*m), so a_t and a_{t+1} are uncorrelated and o_{t+1} - o_t (o = [q, qd])
    is an exact linear function of (o_t, a_t): a model shifted by one step has nothing to learn
    from. Rows (n_ep * T,); q, qd, tau (n_ep * T, n).
    """
    rng = np.random.default_rng(seed)
    qs, qds, taus, eps, ts = [], [], [], [], []
    for e in range(n_ep):
        q, qd = rng.normal(0, 0.3, n), np.zeros(n)
        a = rng.normal(0.0, 1.0, (T, n))
        for k in range(T):
            qs.append(q.copy())
            qds.append(qd.copy())
            taus.append(a[k])
            eps.append(e)
            ts.append(k * dt)
            qd = qd + dt * (a[k] - stiffness * q - damping * qd)
            q = q + dt * qd
    return TrajectoryData(t=np.array(ts), q=np.array(qs), qd=np.array(qds), tau=np.array(taus),
                          episode=np.array(eps), joint_names=[f"j{i}" for i in range(n)], dt=dt)
