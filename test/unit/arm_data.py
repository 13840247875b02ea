"""Shared test data: sinusoidal motions of a 2-joint arm, a few episodes at 100 Hz."""

import numpy as np


def sine_arm(rng: np.random.Generator, n_ep: int, rows: int, w) -> tuple[np.ndarray, ...]:
    """t, episode, q, qd, qdd for ``n_ep`` episodes of ``rows`` rows (dt 0.01 s); joint j moves as
    0.8 sin(w_j t + phase), one random phase per episode and joint."""
    t = np.tile(np.arange(rows) * 0.01, n_ep)
    ep = np.repeat(np.arange(n_ep), rows)
    phase = rng.uniform(0, 2 * np.pi, (n_ep, 2)).repeat(rows, axis=0)
    w = np.asarray(w, dtype=np.float64)
    q = 0.8 * np.sin(w * t[:, None] + phase)
    qd = 0.8 * w * np.cos(w * t[:, None] + phase)
    qdd = -0.8 * w**2 * np.sin(w * t[:, None] + phase)
    return t, ep, q, qd, qdd
