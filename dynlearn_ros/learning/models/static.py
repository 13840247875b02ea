"""Static (memoryless) inverse-dynamics model for logs that are not sequences: a feed-forward
network ``x = [q, qd, qdd] (B, 3n) -> tau (B, n)`` with a variance head, the same inputs as the
GP models and the analytic model (no previous torque, no desired next observation, no time
order: every row stands alone).

Normalization (training means and stds of x and tau, float32 buffers) lives inside the module,
so ``forward`` takes and returns physical units: q rad, qd rad/s, qdd rad/s^2, tau N*m, variance
(N*m)^2.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor, nn

from dynlearn_ros.learning.models.rkn import elup1, mlp

STATIC_KINDS = ("ffnn",)


@dataclass
class StaticConfig:
    """kind "ffnn"; ``n_joints`` n; ``hidden`` widths of the ReLU layers."""

    n_joints: int
    hidden: tuple[int, ...] = (128, 128)
    kind: str = "ffnn"

    def __post_init__(self) -> None:
        if self.kind not in STATIC_KINDS:
            raise ValueError(f"no static model {self.kind!r}; choose from {STATIC_KINDS}")
        if self.n_joints < 1 or not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"need n_joints >= 1 and hidden widths >= 1, got {self.n_joints}, {self.hidden}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> StaticConfig:
        d = dict(d)
        d["hidden"] = tuple(d["hidden"])
        return cls(**d)


class StaticFFNN(nn.Module):
    """tau_hat = y_mean + y_std * head(body((x - x_mean) / x_std)); var = y_std^2 * (elu(v) + 1 + 1e-4)."""

    def __init__(self, cfg: StaticConfig) -> None:
        super().__init__()
        self.cfg = cfg
        n = cfg.n_joints
        self.body = mlp(3 * n, cfg.hidden)          # ends in a ReLU
        self.mean_head = nn.Linear(cfg.hidden[-1], n)
        self.var_head = nn.Linear(cfg.hidden[-1], n)
        for name, size in (("x_mean", 3 * n), ("x_std", 3 * n), ("y_mean", n), ("y_std", n)):
            self.register_buffer(name, torch.zeros(size) if "mean" in name else torch.ones(size))

    def set_normalization(self, x: np.ndarray, y: np.ndarray) -> None:
        """Means and stds (a constant column gets std 1) of the training inputs x (N, 3n) and torques y (N, n)."""
        for name, arr in (("x", x), ("y", y)):
            std = arr.std(0)
            getattr(self, f"{name}_mean").copy_(torch.as_tensor(arr.mean(0), dtype=torch.float32))
            getattr(self, f"{name}_std").copy_(torch.as_tensor(np.where(std > 1e-12, std, 1.0), dtype=torch.float32))

    def normalized(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and variance (B, n) in normalized torque units from physical inputs x (B, 3n)."""
        h = self.body((x - self.x_mean) / self.x_std)
        return self.mean_head(h), elup1(self.var_head(h)) + 1e-4

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, 3n) = [q, qd, qdd] -> torque mean (B, n) N*m, variance (B, n) (N*m)^2."""
        mu, var = self.normalized(x)
        return self.y_mean + self.y_std * mu, var * self.y_std**2

    @torch.no_grad()
    def predict(self, x: np.ndarray, batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std (N*m, float64 (N, n)) for inputs x (N, 3n), as ``GPInverseModel.predict``."""
        self.eval()
        means, stds = [], []
        for i in range(0, len(x), batch):
            m, v = self(torch.as_tensor(x[i:i + batch], dtype=torch.float32))
            means.append(m.double().numpy())
            stds.append(np.sqrt(v.double().numpy()))
        return np.concatenate(means), np.concatenate(stds)
