"""The pose-chain model: an LSTM that reads the joint angles one DoF per recurrent step.

Step k reads ``[sin q_k, cos q_k, axis_k (3), placement_k / scale (3)]`` (8 numbers: the angle
without a wrap-around, plus the joint's constant geometry from the chain, so the same class
serves any joint count and the steps are told apart by what they are, not by their index) and
emits pose-chain element k: ``[p_k / scale (3) | x axis (3) | z axis (3)]``. The two axes are
made orthonormal by Gram-Schmidt at the output, so every prediction is a rotation.

Two output modes (``outputs``):

* ``absolute``: step k's output is element k in the base frame (the first models, iiwa, Panda).
* ``relative`` (chain-relative): step k's output is joint frame k *in the frame of joint frame
  k-1* (a displacement dp_k and a rotation dR_k); the chain is composed at the output,
  R_k = R_{k-1} dR_k, p_k = p_{k-1} + R_{k-1} dp_k (R_0 = I, p_0 = 0, the base), and the last
  element is the last joint frame times the chain's constant end-effector offset ``tip`` (a
  constant of the geometry, like the joint placements: no step could tell it is the last one).
  Its step input adds Rodrigues' terms ``sin q_k axis_k`` and ``(1 - cos q_k) axis_k`` (14
  numbers), in which a rotation about a coordinate axis is linear. Each step then
  has a local, bounded thing to learn whatever the joint count, and the composition (exact,
  differentiable) carries it along the chain: what makes the 80-DoF arm learnable in minutes.
  The per-step map depends only on the step's input (angle and geometry), so a relative model
  trained on one armN runs on another (:meth:`PoseChainLSTM.on_geometry`).
"""

from __future__ import annotations

import torch
from torch import nn

STEP_IN = 8
STEP_IN_RELATIVE = 14
IDENTITY_TIP = (0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)
POSE_DIM = 9


OUTPUTS = ("absolute", "relative")


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
    weights, so a model file is complete. ``hidden``/``layers``: LSTM size; ``outputs``:
    ``absolute`` or ``relative`` (module docstring)."""

    def __init__(self, geometry: torch.Tensor, scale: float, hidden: int = 128, layers: int = 2,
                 outputs: str = "absolute", tip=IDENTITY_TIP) -> None:
        super().__init__()
        if outputs not in OUTPUTS:
            raise ValueError(f"outputs must be one of {OUTPUTS}, got {outputs!r}")
        self.outputs = outputs
        geometry = torch.as_tensor(geometry, dtype=torch.float32)
        self.n = int(geometry.shape[0])
        self.hidden, self.layers = hidden, layers
        self.register_buffer("geometry", torch.cat([geometry[:, :3], geometry[:, 3:] / scale], dim=1))
        self.register_buffer("scale", torch.tensor(float(scale)))
        if outputs == "relative":  # (9,) [p m | x | z]: the EE frame in the last joint frame
            self.register_buffer("tip", torch.as_tensor(tip, dtype=torch.float32).reshape(9))
        step_in = STEP_IN_RELATIVE if outputs == "relative" else STEP_IN
        self.lstm = nn.LSTM(step_in, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, POSE_DIM)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        if q.dim() != 2 or q.shape[1] != self.n:
            raise ValueError(f"q must be (B, {self.n}), got {tuple(q.shape)}")
        p, axes = self.steps(q)
        return torch.cat([p, axes], dim=-1) if self.outputs == "absolute" else compose(p, axes, self.tip)

    def steps(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-step outputs before any composition: positions (B, n, 3) m and orthonormal
        axes (B, n, 6); base-frame elements (absolute) or relative to the previous element."""
        geo = self.geometry.unsqueeze(0).expand(q.shape[0], -1, -1)
        s, c = torch.sin(q).unsqueeze(-1), torch.cos(q).unsqueeze(-1)
        parts = [s, c, geo]
        if self.outputs == "relative":
            parts += [s * geo[..., :3], (1 - c) * geo[..., :3]]
        h, _ = self.lstm(torch.cat(parts, dim=-1))
        out = self.head(h)
        return out[..., :3] * self.scale, orthonormalize(out[..., 3:])

    def config(self) -> dict:
        return {"n": self.n, "hidden": self.hidden, "layers": self.layers, "scale": float(self.scale),
                "outputs": self.outputs}

    def on_geometry(self, geometry: torch.Tensor) -> PoseChainLSTM:
        """A copy with the same weights and scale for another chain's ``geometry`` (n', 6)
        (only meaningful for a relative model: its per-step map does not depend on n)."""
        tip = self.tip if self.outputs == "relative" else IDENTITY_TIP
        other = PoseChainLSTM(geometry, float(self.scale), self.hidden, self.layers, self.outputs, tip)
        state = {k: v for k, v in self.state_dict().items() if k != "geometry"}
        other.load_state_dict(state, strict=False)
        for p in other.parameters():
            p.requires_grad_(False)
        return other.eval()


def _frames(chain_: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., 9) elements -> positions (..., 3) and rotation matrices (..., 3, 3)."""
    x, z = chain_[..., 3:6], chain_[..., 6:9]
    return chain_[..., :3], torch.stack([x, torch.cross(z, x, dim=-1), z], dim=-1)


def relative(chain_: torch.Tensor, tip=IDENTITY_TIP) -> torch.Tensor:
    """Base-frame pose chain (B, n, 9) -> each joint frame in the previous one's frame (B, n, 9)
    (the first in the base frame; the last element's ``tip`` offset removed first): the inverse
    of :func:`compose`, the relative model's targets."""
    p, rot = _frames(chain_)
    tp, trot = _frames(torch.as_tensor(tip, dtype=chain_.dtype).reshape(9))
    last_rot = rot[:, -1] @ trot.T
    last_p = p[:, -1] - (last_rot @ tp[:, None])[..., 0]
    p = torch.cat([p[:, :-1], last_p[:, None]], dim=1)
    rot = torch.cat([rot[:, :-1], last_rot[:, None]], dim=1)
    prev_rot = torch.cat([torch.eye(3, dtype=rot.dtype).expand(rot.shape[0], 1, 3, 3), rot[:, :-1]], dim=1)
    prev_p = torch.cat([torch.zeros_like(p[:, :1]), p[:, :-1]], dim=1)
    t = prev_rot.transpose(-1, -2)
    dp = (t @ (p - prev_p)[..., None])[..., 0]
    drot = t @ rot
    return torch.cat([dp, drot[..., 0], drot[..., 2]], dim=-1)


def compose(dp: torch.Tensor, axes: torch.Tensor, tip=IDENTITY_TIP) -> torch.Tensor:
    """Chain-relative outputs -> base-frame pose chain (B, n, 9).

    dp (B, n, 3) m: joint frame k's origin in joint frame k-1; axes (B, n, 6): its x and z axes
    there (orthonormal); ``tip`` (9,): the end-effector frame in the last joint frame, applied
    to the last element.

    T_k = T_{k-1} D_k is a prefix product of rigid transforms, which is associative, so it is
    computed as a log-depth (Hillis-Steele) scan: at level d = 1, 2, 4, ... every element k >= d
    is premultiplied by the partial product ending at k - d. That is ceil(log2 n) batched steps
    (7 for 80 DoF) instead of n sequential ones: O(n log n) arithmetic, but the time of a step is
    the framework's per-operation overhead at these sizes, and the number of operations (forward
    and backward) falls from O(n) to O(log n). Same result as the sequential product up to
    float round-off (associativity)."""
    p, rot = _frames(torch.cat([dp, axes], dim=-1))
    n = dp.shape[1]
    d = 1
    while d < n:
        rp, pp = rot[:, :-d], p[:, :-d]
        p = torch.cat([p[:, :d], pp + (rp @ p[:, d:, :, None])[..., 0]], dim=1)
        rot = torch.cat([rot[:, :d], rp @ rot[:, d:]], dim=1)
        d *= 2
    tp, trot = _frames(torch.as_tensor(tip, dtype=dp.dtype).reshape(9))
    last_p = p[:, -1] + (rot[:, -1] @ tp[:, None])[..., 0]
    last_rot = rot[:, -1] @ trot
    p = torch.cat([p[:, :-1], last_p[:, None]], dim=1)
    rot = torch.cat([rot[:, :-1], last_rot[:, None]], dim=1)
    return torch.cat([p, rot[..., 0], rot[..., 2]], dim=-1)


def compose_sequential(dp: torch.Tensor, axes: torch.Tensor, tip=IDENTITY_TIP) -> torch.Tensor:
    """The same as :func:`compose` by n sequential products (the reference it is tested
    against, and the first implementation, kept for the cost comparison in ``ik tasks``)."""
    _, rel = _frames(torch.cat([dp, axes], dim=-1))
    tp, trot = _frames(torch.as_tensor(tip, dtype=dp.dtype).reshape(9))
    b, n = dp.shape[:2]
    rot = torch.eye(3, dtype=dp.dtype).expand(b, 3, 3)
    pos = torch.zeros(b, 3, dtype=dp.dtype)
    out = []
    for k in range(n):
        pos = pos + (rot @ dp[:, k, :, None])[..., 0]
        rot = rot @ rel[:, k]
        if k == n - 1:
            pos = pos + (rot @ tp[:, None])[..., 0]
            rot = rot @ trot
        out.append(torch.cat([pos, rot[..., 0], rot[..., 2]], dim=-1))
    return torch.stack(out, dim=1)
