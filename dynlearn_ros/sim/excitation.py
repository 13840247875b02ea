"""Exciting reference trajectories: finite Fourier series per joint, seeded, within limits.

For joint j with centre c_j, base frequency w = 2*pi*f0 and harmonics l = 1..L:

    q_j(t)   = c_j + sum_l A_jl sin(l w t + phi_jl)
    qd_j(t)  =       sum_l A_jl (l w) cos(l w t + phi_jl)
    qdd_j(t) =     - sum_l A_jl (l w)^2 sin(l w t + phi_jl)

so |q_j - c_j| <= sum_l |A_jl|, |qd_j| <= sum_l |A_jl| l w, |qdd_j| <= sum_l |A_jl| (l w)^2. The
random amplitudes are scaled per joint so that all three bounds hold: positions stay inside the
joint limits minus a margin, velocities and accelerations stay under the given maxima. The
trajectory is periodic with period 1/f0 and smooth, which excites the dynamics broadly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dynlearn_ros.core.robots import RobotSpec


@dataclass
class FourierTrajectory:
    """q_d(t) = c + sum_l A[:, l] sin((l+1) w t + phi[:, l]) (see module docstring).

    center: (n,) rad; amplitude, phase: (n, L) rad and rad; base_freq_hz: f0 (Hz)."""

    center: np.ndarray
    amplitude: np.ndarray
    phase: np.ndarray
    base_freq_hz: float

    def __post_init__(self) -> None:
        self.center = np.asarray(self.center, dtype=np.float64)
        self.amplitude = np.asarray(self.amplitude, dtype=np.float64)
        self.phase = np.asarray(self.phase, dtype=np.float64)
        n = self.center.shape[0]
        if self.amplitude.ndim != 2 or self.amplitude.shape[0] != n or self.phase.shape != self.amplitude.shape:
            raise ValueError(f"amplitude and phase must be (n={n}, L), got {self.amplitude.shape}, {self.phase.shape}")
        if not self.base_freq_hz > 0:
            raise ValueError(f"base_freq_hz must be > 0, got {self.base_freq_hz}")
        self._omega = 2.0 * np.pi * self.base_freq_hz * np.arange(1, self.amplitude.shape[1] + 1)  # (L,) rad/s

    @property
    def n(self) -> int:
        return int(self.center.shape[0])

    @classmethod
    def random(
        cls,
        spec: RobotSpec,
        rng: np.random.Generator,
        base_freq_hz: float = 0.1,
        harmonics: int = 5,
        max_amplitude: float = 1.0,
        max_velocity: float = 1.5,
        max_acceleration: float = 6.0,
        limit_margin: float = 0.15,
        center_spread: float = 0.25,
    ) -> FourierTrajectory:
        """A random series for ``spec``'s joints (all (n,) bounds per joint, the same for all).

        center: home + U(-center_spread, center_spread) * (upper - lower) / 2, kept inside the
        limits minus ``limit_margin`` (rad). Amplitudes ~ U(0, 1) / l with random phases, then
        scaled so that |q - c| <= min(max_amplitude, distance of c to the margin), |qd| <=
        max_velocity (rad/s) and |qdd| <= max_acceleration (rad/s^2)."""
        lo = spec.lower + limit_margin
        hi = spec.upper - limit_margin
        if np.any(hi <= lo):
            raise ValueError("limit_margin leaves no room inside the joint limits")
        half = 0.5 * (spec.upper - spec.lower)
        center = np.clip(spec.home + rng.uniform(-center_spread, center_spread, spec.n) * half, lo, hi)
        lvec = np.arange(1, harmonics + 1)
        amp = rng.uniform(0.0, 1.0, (spec.n, harmonics)) / lvec
        phase = rng.uniform(-np.pi, np.pi, (spec.n, harmonics))
        omega = 2.0 * np.pi * base_freq_hz * lvec
        pos_budget = np.minimum(np.minimum(center - lo, hi - center), max_amplitude)
        s_pos = pos_budget / amp.sum(axis=1)
        s_vel = max_velocity / (amp * omega).sum(axis=1)
        s_acc = max_acceleration / (amp * omega**2).sum(axis=1)
        scale = np.minimum(np.minimum(s_pos, s_vel), s_acc)
        return cls(center=center, amplitude=amp * scale[:, None], phase=phase, base_freq_hz=base_freq_hz)

    def evaluate(self, t: float | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(q, qd, qdd) at time(s) t (s): (n,) each for a scalar t, (T, n) for t of shape (T,)."""
        t_arr = np.asarray(t, dtype=np.float64)
        arg = t_arr.reshape(-1, 1, 1) * self._omega + self.phase  # (T, n, L)
        s, c = np.sin(arg), np.cos(arg)
        q = self.center + (self.amplitude * s).sum(axis=-1)
        qd = (self.amplitude * self._omega * c).sum(axis=-1)
        qdd = -(self.amplitude * self._omega**2 * s).sum(axis=-1)
        if t_arr.ndim == 0:
            return q[0], qd[0], qdd[0]
        return q, qd, qdd

    def bounds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-joint bounds (n,) on |q - c| (rad), |qd| (rad/s), |qdd| (rad/s^2)."""
        a = np.abs(self.amplitude)
        return a.sum(axis=1), (a * self._omega).sum(axis=1), (a * self._omega**2).sum(axis=1)
