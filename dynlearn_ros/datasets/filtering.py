"""Zero-phase low-pass filtering and differentiation of sampled joint signals (numpy/scipy).

Accelerations of real robot logs are not measured; they are obtained as in Gaz et al. 2019 and
the ac-RKN paper: the measured velocity is low-pass filtered forward and backward (zero phase,
``scipy.signal.butter`` + ``filtfilt``) and then differentiated with central differences.

Forward-backward filtering with a Butterworth filter of order ``k`` and cut-off ``fc`` has the
squared magnitude response ``|H(f)|^2 = 1 / (1 + (f/fc)^(2k))`` and no phase lag.

:func:`subsample` lowers a data set's rate by keeping every k-th row of each episode.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, filtfilt

from dynlearn_ros.datasets.format import TrajectoryData


def lowpass_zero_phase(x: np.ndarray, dt: float, cutoff_hz: float, order: int = 4) -> np.ndarray:
    """Zero-phase Butterworth low-pass of ``x`` along axis 0.

    x: (N, ...) samples at period ``dt`` (s); cutoff_hz: -3 dB frequency of the one-way filter (Hz),
    must be below the Nyquist frequency 1/(2 dt). Returns an array of the shape of ``x``.
    N must exceed filtfilt's pad length 3*(order+1).
    """
    x = np.asarray(x, dtype=np.float64)
    nyquist = 0.5 / dt
    if not 0 < cutoff_hz < nyquist:
        raise ValueError(f"cutoff {cutoff_hz} Hz must lie in (0, {nyquist}) Hz for dt={dt} s")
    b, a = butter(order, cutoff_hz / nyquist)
    pad = 3 * max(len(a), len(b))
    if x.shape[0] <= pad:
        raise ValueError(f"need more than {pad} samples to filter, got {x.shape[0]}")
    return filtfilt(b, a, x, axis=0)


def central_difference(x: np.ndarray, dt: float) -> np.ndarray:
    """d/dt of ``x`` (N, ...) along axis 0: second-order central differences inside, one-sided
    first-order differences at the two ends (``numpy.gradient``). Units: [x]/s."""
    return np.gradient(np.asarray(x, dtype=np.float64), dt, axis=0)


def acceleration_from_velocity(
    qd: np.ndarray, dt: float, cutoff_hz: float, order: int = 4, episode: np.ndarray | None = None
) -> np.ndarray:
    """Joint acceleration (N, n) rad/s^2 from measured velocities ``qd`` (N, n) rad/s.

    Low-pass (zero phase, :func:`lowpass_zero_phase`) then central differences, separately for
    each episode (rows with the same id in ``episode`` (N,), contiguous) so that no filter or
    difference reaches across a recording boundary.
    """
    qd = np.asarray(qd, dtype=np.float64)
    if episode is None:
        return central_difference(lowpass_zero_phase(qd, dt, cutoff_hz, order), dt)
    out = np.empty_like(qd)
    for start, stop in episode_bounds(episode):
        out[start:stop] = central_difference(lowpass_zero_phase(qd[start:stop], dt, cutoff_hz, order), dt)
    return out


def episode_bounds(episode: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) row ranges of the contiguous runs of equal ids in ``episode`` (N,)."""
    episode = np.asarray(episode).reshape(-1)
    if episode.size == 0:
        return []
    cuts = np.flatnonzero(episode[1:] != episode[:-1]) + 1
    starts = np.r_[0, cuts]
    stops = np.r_[cuts, episode.size]
    return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def subsample(data: TrajectoryData, k: int) -> TrajectoryData:
    """Every k-th row of each episode (dt becomes k * dt); k <= 1 returns ``data`` unchanged.

    qd and qdd are kept as measured (instantaneous values, no anti-alias filter); tau is the
    applied torque at the kept rows. Used to train inverse models at a lower rate, where one
    step's torque change is larger than the sensor noise."""
    if k <= 1:
        return data
    mask = np.zeros(len(data), dtype=bool)
    for a, b in episode_bounds(data.episode):
        mask[a:b:k] = True
    out = data.select(mask)
    out.dt = data.dt * k
    out.meta = {**data.meta, "subsample": k}
    return out
