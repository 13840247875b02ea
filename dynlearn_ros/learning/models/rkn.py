"""The Recurrent Kalman Network cell (Becker et al. 2019; Shaj et al. 2020), one step at a time.

Latent state ``z = [z_u | z_l]`` of size ``n = 2m`` (``m`` = latent observation size). The
covariance is kept factorized as three diagonal ``(B, m)`` vectors: upper ``cu``, lower ``cl``,
side ``cs``. A belief is the tuple ``(z, cu, cl, cs)``; it is an explicit input and output of every
step, so the same cell serves unrolled training and one-step inference (ONNX export).

Update with a latent observation ``w`` (B, m) of variance ``s`` (B, m)::

    q_u = cu / (cu + s),  q_l = cs / (cu + s)
    z+  = z- + [q_u; q_l] * (w - z_u-)
    cu+ = (1 - q_u) cu,  cs+ = (1 - q_u) cs,  cl+ = cl - q_l cs

A missing observation (``valid = 0``) keeps the prior. Predict with a locally linear transition::

    A = [[I + B11, B12], [B21, I + B22]],   B_ij = sum_k alpha_k(z+) band_k,ij
    alpha = softmax(Linear(z+)),  z-_{t+1} = A z+ + b(a_t)
    Sigma-_{t+1} = A Sigma+ A^T + diag(elu(q)+1)      (kept in the factorized form)

All quantities are in the model's normalized units.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

Belief = tuple[Tensor, Tensor, Tensor, Tensor]


def elup1(x: Tensor) -> Tensor:
    """elu(x) + 1: a smooth positive map used for every variance."""
    return F.elu(x) + 1.0


class RKNCell(nn.Module):
    """Kalman update + locally linear predict over a factorized latent belief.

    Args:
        lod: latent observation size m (latent state size n = 2m).
        num_basis: K band matrices mixed per step.
        bandwidth: entries with |i - j| <= bandwidth are free in each band matrix.
        trans_net_hidden: 0 -> coefficients alpha = softmax(Linear(z)); otherwise one hidden
            ReLU layer of this width.
        init_trans_cov: initial transition noise (elu(q)+1 at init).
        init_cov: prior variance of the initial belief (upper and lower parts).
    """

    def __init__(self, lod: int, num_basis: int = 15, bandwidth: int = 3,
                 trans_net_hidden: int = 0, init_trans_cov: float = 0.1, init_cov: float = 10.0) -> None:
        super().__init__()
        self.lod = int(lod)
        self.num_basis = int(num_basis)
        self.init_cov = float(init_cov)
        m = self.lod
        idx = torch.arange(m)
        band = ((idx[:, None] - idx[None, :]).abs() <= bandwidth).float()
        self.register_buffer("band_mask", band, persistent=False)
        self.register_buffer("eye", torch.eye(m), persistent=False)
        self.register_buffer("eye2", torch.eye(2 * m), persistent=False)
        # basis (K, 4, m, m): blocks 11, 12, 21, 22; every basis starts at the same matrices so the
        # softmax mix equals B11=B22=0, B12=0.2 I, B21=-0.2 I whatever alpha is.
        init = torch.zeros(4, m, m)
        init[1] = 0.2 * torch.eye(m)
        init[2] = -0.2 * torch.eye(m)
        self.basis = nn.Parameter(init.unsqueeze(0).repeat(self.num_basis, 1, 1, 1))
        if trans_net_hidden > 0:
            self.coef_net = nn.Sequential(nn.Linear(2 * m, trans_net_hidden), nn.ReLU(),
                                          nn.Linear(trans_net_hidden, self.num_basis))
        else:
            self.coef_net = nn.Linear(2 * m, self.num_basis)
        # elu(x)+1 = init_trans_cov  <=>  x = log(init_trans_cov) for init_trans_cov < 1
        x0 = torch.log(torch.tensor(init_trans_cov)) if init_trans_cov < 1 else torch.tensor(init_trans_cov - 1)
        self.log_trans_cov = nn.Parameter(torch.full((2 * m,), float(x0)))

    # -- belief ------------------------------------------------------------------------------
    def initial_belief(self, batch: int, device: torch.device | None = None,
                       dtype: torch.dtype = torch.float32) -> Belief:
        """z = 0, cu = cl = init_cov, cs = 0; each (B, n) / (B, m)."""
        m = self.lod
        z = torch.zeros(batch, 2 * m, device=device, dtype=dtype)
        cu = torch.full((batch, m), self.init_cov, device=device, dtype=dtype)
        return z, cu, cu.clone(), torch.zeros(batch, m, device=device, dtype=dtype)

    # -- update ------------------------------------------------------------------------------
    def update(self, belief: Belief, w: Tensor, w_var: Tensor, valid: Tensor | None = None) -> Belief:
        """Kalman update with latent observation w (B, m), variance w_var (B, m).

        valid: (B, 1) in {0, 1}; rows with 0 keep the prior (missing observation)."""
        z, cu, cl, cs = belief
        m = self.lod
        denom = cu + w_var
        q_u = cu / denom
        q_l = cs / denom
        res = w - z[:, :m]
        z_new = z + torch.cat([q_u * res, q_l * res], dim=-1)
        cu_new = (1.0 - q_u) * cu
        cs_new = (1.0 - q_u) * cs
        cl_new = cl - q_l * cs
        if valid is None:
            return z_new, cu_new, cl_new, cs_new
        v = valid
        return (v * z_new + (1 - v) * z, v * cu_new + (1 - v) * cu,
                v * cl_new + (1 - v) * cl, v * cs_new + (1 - v) * cs)

    # -- predict -----------------------------------------------------------------------------
    def transition(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The four (B, m, m) blocks of A for posterior mean z (B, n)."""
        m = self.lod
        alpha = torch.softmax(self.coef_net(z), dim=-1)                       # (B, K)
        basis = (self.basis * self.band_mask).reshape(self.num_basis, 4 * m * m)
        mix = (alpha @ basis).reshape(-1, 4, m, m)
        return mix[:, 0] + self.eye, mix[:, 1], mix[:, 2], mix[:, 3] + self.eye

    def transition_matrix(self, z: Tensor) -> Tensor:
        """Full A (B, n, n) = [[I + B11, B12], [B21, I + B22]] for posterior mean z (B, n)."""
        m = self.lod
        alpha = torch.softmax(self.coef_net(z), dim=-1)                        # (B, K)
        # (K, 4, m, m) -> (K, 2, 2, m, m) -> (K, 2, m, 2, m) = row-major (K, n, n); parameter-only
        # work, folded into a constant by onnxruntime at session creation
        basis = (self.basis * self.band_mask).reshape(self.num_basis, 2, 2, m, m)
        basis = basis.permute(0, 1, 3, 2, 4).reshape(self.num_basis, 4 * m * m)
        return (alpha @ basis).reshape(-1, 2 * m, 2 * m) + self.eye2

    def predict(self, belief: Belief, control: Tensor | None = None) -> Belief:
        """Prior of the next step; control (B, n) is the additive control-model output b(a).

        The factorized covariance propagation is one matrix product
        [cu'; cl'; cs'] = M [cu; cs; cl] + [q_u; q_l; 0] with
        M = [[a11^2, 2 a11 a12, a12^2], [a21^2, 2 a21 a22, a22^2], [a21 a11, a22 a11 + a21 a12, a22 a12]]
        (elementwise products), i.e. the diagonals of the blocks of A Sigma A^T + Q."""
        z, cu, cl, cs = belief
        m = self.lod
        A = self.transition_matrix(z)
        z_new = (A @ z.unsqueeze(-1)).squeeze(-1)
        if control is not None:
            z_new = z_new + control
        top, bot = A[:, :m], A[:, m:]                  # (B, m, n): [a11 a12], [a21 a22]
        a11, a12, a21, a22 = top[..., :m], top[..., m:], bot[..., :m], bot[..., m:]
        mat = torch.cat([
            torch.cat([a11 * a11, 2.0 * a11 * a12, a12 * a12], -1),
            torch.cat([a21 * a21, 2.0 * a21 * a22, a22 * a22], -1),
            torch.cat([a21 * a11, a22 * a11 + a21 * a12, a22 * a12], -1),
        ], 1)                                          # (B, 3m, 3m)
        c = (mat @ torch.cat([cu, cs, cl], -1).unsqueeze(-1)).squeeze(-1) + self._trans_cov3()
        return z_new, c[:, :m], c[:, m:2 * m], c[:, 2 * m:]

    def _trans_cov3(self) -> Tensor:
        """[q_u; q_l; 0] (3m,): learned transition noise added to cu, cl (none on cs)."""
        return torch.cat([elup1(self.log_trans_cov), torch.zeros_like(self.log_trans_cov[: self.lod])])


class Encoder(nn.Module):
    """o (B, d) -> latent observation w (B, m) (L2-normalized) and its variance (B, m) (elu+1)."""

    def __init__(self, in_dim: int, lod: int, hidden: tuple[int, ...] = (120,)) -> None:
        super().__init__()
        self.body = mlp(in_dim, hidden)
        h = hidden[-1] if hidden else in_dim
        self.mean = nn.Linear(h, lod)
        self.var = nn.Linear(h, lod)

    def forward(self, o: Tensor) -> tuple[Tensor, Tensor]:
        h = self.body(o)
        w = self.mean(h)
        w = w / torch.sqrt((w * w).sum(-1, keepdim=True) + 1e-8)
        return w, elup1(self.var(h))


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int | None = None) -> nn.Sequential:
    """ReLU MLP in_dim -> hidden... [-> out_dim (linear)]."""
    layers: list[nn.Module] = []
    d = in_dim
    for h in hidden:
        layers += [nn.Linear(d, h), nn.ReLU()]
        d = h
    if out_dim is not None:
        layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers)
