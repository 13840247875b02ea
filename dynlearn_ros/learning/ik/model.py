"""The pose-chain model: an LSTM that reads the joint angles one DoF per recurrent step.

Step k reads ``[sin q_k, cos q_k, axis_k (3), placement_k / scale (3)]`` (8 numbers: the angle
without a wrap-around, plus the joint's constant geometry from the chain, so the same class
serves any joint count and the steps are told apart by what they are, not by their index) and
emits pose-chain element k: ``[p_k / scale (3) | x axis (3) | z axis (3)]``. The two axes are
made orthonormal by Gram-Schmidt at the output, so every prediction is a rotation.
"""

from __future__ import annotations

import torch
from torch import nn

STEP_IN = 8
POSE_DIM = 9


def orthonormalize(raw: torch.Tensor) -> torch.Tensor:
    """raw (..., 6) two vectors -> (..., 6) [x, z]: x = a/|a|, z = unit(b - (b.x) x)."""
    a, b = raw[..., :3], raw[..., 3:]
    x = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    b = b - (b * x).sum(-1, keepdim=True) * x
    z = b / b.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    return torch.cat([x, z], dim=-1)


class PoseChainLSTM(nn.Module):
    """q (B, n) rad -> pose chain (B, n, 9) [p m | x axis | z axis] in the chain's base frame.

    ``geometry`` (n, 6) [axis | placement m] and ``scale`` (m) are buffers: they travel with the
    weights, so a model file is complete. ``hidden``/``layers``: LSTM size."""

    def __init__(self, geometry: torch.Tensor, scale: float, hidden: int = 128, layers: int = 2) -> None:
        super().__init__()
        geometry = torch.as_tensor(geometry, dtype=torch.float32)
        self.n = int(geometry.shape[0])
        self.hidden, self.layers = hidden, layers
        self.register_buffer("geometry", torch.cat([geometry[:, :3], geometry[:, 3:] / scale], dim=1))
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.lstm = nn.LSTM(STEP_IN, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, POSE_DIM)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        if q.dim() != 2 or q.shape[1] != self.n:
            raise ValueError(f"q must be (B, {self.n}), got {tuple(q.shape)}")
        geo = self.geometry.unsqueeze(0).expand(q.shape[0], -1, -1)
        x = torch.cat([torch.sin(q).unsqueeze(-1), torch.cos(q).unsqueeze(-1), geo], dim=-1)
        h, _ = self.lstm(x)
        out = self.head(h)
        return torch.cat([out[..., :3] * self.scale, orthonormalize(out[..., 3:])], dim=-1)

    def config(self) -> dict:
        return {"n": self.n, "hidden": self.hidden, "layers": self.layers, "scale": float(self.scale)}
