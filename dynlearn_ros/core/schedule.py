"""Variance-scheduled PD gains (SVDKL variable-gain paper, Eq. 7-8), per joint.

    z    = exp(-C * (sigma - sigma_n) / (sigma_f - sigma_n))      sigma clipped to [sigma_n, sigma_f]
    K_P  = K_min + (1 - z) * (K_max - K_min)
    K_D  = zeta * sqrt(K_P)

sigma is the inverse model's predictive std (N*m). A confident model (sigma -> sigma_n) gives
z -> 1 and K_P -> K_min (compliant); an unsure one (sigma -> sigma_f) gives z = exp(-C) and
K_P -> K_min + (1 - exp(-C)) (K_max - K_min), close to K_max for C >= 3. Clipping sigma to
[sigma_n, sigma_f] keeps K_P in [K_min, K_max] for any input; a non-finite sigma is treated as
maximal (K_P -> the sigma_f value): safe, not limp.

With K_D = zeta * sqrt(K_P) the damping ratio of a joint of effective inertia I is
zeta / (2 sqrt(I)) whatever K_P is, so choose zeta_j = 2 * ratio * sqrt(I_j).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: the controller's default bandwidths (rad/s): K_min = I omega_min^2, K_max = I omega_max^2
OMEGA_MIN, OMEGA_MAX = 10.0, 40.0


def default_gains(inertia: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(k_min, k_max, zeta), each (n,), for joint inertias ``inertia`` (n,) kg*m^2: stiffness
    scaled with the inertia (K = I omega^2, so the light wrist joints get gains they can take at
    1 kHz) and zeta = 2 sqrt(I) (damping ratio 1 at every K_P). The computed_torque node's
    parameter defaults, with I = diag M(home) clipped at 1e-4."""
    inertia = np.asarray(inertia, dtype=np.float64)
    return inertia * OMEGA_MIN**2, inertia * OMEGA_MAX**2, 2.0 * np.sqrt(inertia)


@dataclass
class GainSchedule:
    """Per-joint schedule parameters, all (n,) float64.

    k_min, k_max: stiffness bounds (N*m/rad), 0 <= k_min <= k_max
    sigma_n, sigma_f: std bounds (N*m), 0 <= sigma_n < sigma_f
    c: steepness C > 0 (dimensionless)
    zeta: damping factor (N*m*s/rad per sqrt(N*m/rad)), >= 0
    fixed: if True, K_P = k_max regardless of sigma (the fixed-gain comparison mode)
    """

    k_min: np.ndarray
    k_max: np.ndarray
    sigma_n: np.ndarray
    sigma_f: np.ndarray
    c: np.ndarray
    zeta: np.ndarray
    fixed: bool = False

    def __post_init__(self) -> None:
        n = np.asarray(self.k_max).size
        for name in ("k_min", "k_max", "sigma_n", "sigma_f", "c", "zeta"):
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            arr = np.broadcast_to(arr, (n,)).copy() if arr.size in (1, n) else arr
            if arr.shape != (n,):
                raise ValueError(f"{name}: expected 1 or {n} values, got {np.asarray(getattr(self, name)).size}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name}: values must be finite, got {arr}")
            setattr(self, name, arr)
        errors = []
        if np.any(self.k_min < 0):
            errors.append(f"k_min must be >= 0 ({self.k_min})")
        if np.any(self.k_min > self.k_max):
            errors.append(f"k_min must be <= k_max per joint (k_min {self.k_min}, k_max {self.k_max})")
        if np.any(self.sigma_n < 0):
            errors.append(f"sigma_n must be >= 0 ({self.sigma_n})")
        if np.any(self.sigma_f <= self.sigma_n):
            errors.append(f"sigma_f must be > sigma_n per joint (sigma_n {self.sigma_n}, sigma_f {self.sigma_f})")
        if np.any(self.c <= 0):
            errors.append(f"c must be > 0 ({self.c})")
        if np.any(self.zeta < 0):
            errors.append(f"zeta must be >= 0 ({self.zeta})")
        if errors:
            raise ValueError("invalid gain schedule: " + "; ".join(errors))
        self._span = self.sigma_f - self.sigma_n
        self._tmp = np.zeros(n)

    @property
    def n(self) -> int:
        return int(self.k_max.size)

    def gains(self, sigma: np.ndarray, kp_out: np.ndarray, kd_out: np.ndarray) -> None:
        """Fill kp_out, kd_out (n,) from the predictive std ``sigma`` (n,) N*m. No allocation."""
        if self.fixed:
            kp_out[:] = self.k_max
        else:
            z = self._tmp
            # non-finite sigma -> sigma_f (maximal uncertainty)
            np.copyto(z, sigma)
            np.copyto(z, self.sigma_f, where=~np.isfinite(z))
            np.clip(z, self.sigma_n, self.sigma_f, out=z)
            z -= self.sigma_n
            z /= self._span
            z *= -self.c
            np.exp(z, out=z)
            # kp = k_min + (1 - z) (k_max - k_min)
            np.subtract(1.0, z, out=z)
            np.subtract(self.k_max, self.k_min, out=kp_out)
            kp_out *= z
            kp_out += self.k_min
        np.sqrt(kp_out, out=kd_out)
        kd_out *= self.zeta

    def max_gains(self, kp_out: np.ndarray, kd_out: np.ndarray) -> None:
        """The gains for maximal uncertainty (sigma = sigma_f), used when no valid model
        prediction exists; in fixed mode these are the fixed gains."""
        self.gains(self.sigma_f, kp_out, kd_out)
