"""RKN cell against a dense Kalman filter (float64): the factorized update and predict are exact
for H = [I 0] and a covariance with diagonal blocks, so agreement is to rounding (1e-10)."""

import numpy as np
import pytest
import torch

from dynlearn_ros.learning.models.rkn import RKNCell, elup1

torch.set_num_threads(1)


def dense_cov(cu, cl, cs):
    return np.block([[np.diag(cu), np.diag(cs)], [np.diag(cs), np.diag(cl)]])


@pytest.fixture
def cell():
    torch.manual_seed(0)
    c = RKNCell(lod=5, num_basis=4, bandwidth=1).double()
    with torch.no_grad():  # move away from the symmetric init so the test sees real mixing
        c.basis.add_(0.1 * torch.randn_like(c.basis))
    return c


def random_belief(m, b=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(b, 2 * m, generator=g, dtype=torch.float64)
    cu = torch.rand(b, m, generator=g, dtype=torch.float64) + 0.5
    cl = torch.rand(b, m, generator=g, dtype=torch.float64) + 0.5
    cs = 0.3 * (torch.rand(b, m, generator=g, dtype=torch.float64) - 0.5)
    return z, cu, cl, cs


def test_update_matches_dense_kalman(cell):
    m = cell.lod
    z, cu, cl, cs = random_belief(m)
    w = torch.randn(3, m, dtype=torch.float64)
    r = torch.rand(3, m, dtype=torch.float64) + 0.1
    zp, cup, clp, csp = cell.update((z, cu, cl, cs), w, r)
    H = np.hstack([np.eye(m), np.zeros((m, m))])
    for i in range(3):
        S = dense_cov(cu[i].numpy(), cl[i].numpy(), cs[i].numpy())
        K = S @ H.T @ np.linalg.inv(H @ S @ H.T + np.diag(r[i].numpy()))
        z_ref = z[i].numpy() + K @ (w[i].numpy() - H @ z[i].numpy())
        S_ref = (np.eye(2 * m) - K @ H) @ S
        np.testing.assert_allclose(zp[i].numpy(), z_ref, atol=1e-10)
        np.testing.assert_allclose(cup[i].numpy(), np.diag(S_ref[:m, :m]), atol=1e-10)
        np.testing.assert_allclose(clp[i].numpy(), np.diag(S_ref[m:, m:]), atol=1e-10)
        np.testing.assert_allclose(csp[i].numpy(), np.diag(S_ref[m:, :m]), atol=1e-10)


def test_missing_observation_keeps_prior(cell):
    m = cell.lod
    belief = random_belief(m)
    w, r = torch.randn(3, m, dtype=torch.float64), torch.ones(3, m, dtype=torch.float64)
    valid = torch.tensor([[1.0], [0.0], [1.0]], dtype=torch.float64)
    out = cell.update(belief, w, r, valid)
    full = cell.update(belief, w, r)
    for o, b, f in zip(out, belief, full, strict=True):
        assert torch.equal(o[1], b[1])          # row 1 untouched, bit for bit
        assert torch.allclose(o[0], f[0]) and torch.allclose(o[2], f[2])
        assert not torch.allclose(f[1], b[1])   # the update would have changed it


def test_predict_matches_dense_propagation(cell):
    m = cell.lod
    z, cu, cl, cs = random_belief(m)
    ctrl = torch.randn(3, 2 * m, dtype=torch.float64)
    zn, cun, cln, csn = cell.predict((z, cu, cl, cs), ctrl)
    a11, a12, a21, a22 = cell.transition(z)
    q = elup1(cell.log_trans_cov).detach().numpy()
    for i in range(3):
        A = np.block([[a11[i].detach().numpy(), a12[i].detach().numpy()],
                      [a21[i].detach().numpy(), a22[i].detach().numpy()]])
        S = A @ dense_cov(cu[i].numpy(), cl[i].numpy(), cs[i].numpy()) @ A.T + np.diag(q)
        np.testing.assert_allclose(zn[i].detach().numpy(), A @ z[i].numpy() + ctrl[i].numpy(), atol=1e-10)
        np.testing.assert_allclose(cun[i].detach().numpy(), np.diag(S[:m, :m]), atol=1e-10)
        np.testing.assert_allclose(cln[i].detach().numpy(), np.diag(S[m:, m:]), atol=1e-10)
        np.testing.assert_allclose(csn[i].detach().numpy(), np.diag(S[m:, :m]), atol=1e-10)


def test_initial_transition_and_band_structure():
    c = RKNCell(lod=6, num_basis=5, bandwidth=1).double()
    z = torch.randn(4, 12, dtype=torch.float64)
    a11, a12, a21, a22 = c.transition(z)
    eye = torch.eye(6, dtype=torch.float64)
    # every basis starts equal, so any softmax mix gives the documented init exactly
    assert torch.allclose(a11, eye.expand(4, 6, 6)) and torch.allclose(a22, eye.expand(4, 6, 6))
    assert torch.allclose(a12, 0.2 * eye.expand(4, 6, 6)) and torch.allclose(a21, -0.2 * eye.expand(4, 6, 6))
    with torch.no_grad():
        c.basis.normal_()
    a11, *_ = c.transition(z)
    off = (torch.arange(6)[:, None] - torch.arange(6)[None, :]).abs() > 1
    assert torch.all(a11[:, off] == 0)          # outside the band: exactly zero
    assert torch.all(a11[:, ~off] != 0)
