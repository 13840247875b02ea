"""Gaussian-process inverse-dynamics models: SVDKL, SVGP and DKL (gpytorch).

All three map normalized inputs ``x = [q, qd, qdd]`` (shape (B, 3n), each column standardized)
to a normalized torque per joint (shape (B, n)), with independent outputs per joint:

* **SVDKL**: MLP feature extractor ``phi: R^{3n} -> R^D`` followed by a sparse variational GP
  per joint (M learned inducing points in feature space, whitened variational strategy with a
  full-rank Cholesky variational covariance), RBF kernel with ARD lengthscales, constant mean,
  Gaussian likelihood with one noise variance per joint. Trained on the ELBO with minibatches.
* **SVGP**: the same without the feature extractor (inducing points in input space).
* **DKL**: the same extractor followed by an *exact* GP per joint (trained on a subset).

Distance-aware option (``GPConfig.gp_input = "features+x"``, SVDKL and DKL): the GP's input is
``z = [phi(x), x]``, the deep features concatenated with the standardized raw input, so a state far
from the training data in input space is also far from every inducing point in the kernel's space
(|z - z'| >= |x - x'|): the latent variance returns towards the prior sf2 there, whatever the
learned features do. ``GPConfig.lengthscale_max`` optionally caps every ARD lengthscale (in
standardized units), so the ELBO cannot switch a raw input dimension off by growing its
lengthscale without bound; the features are unaffected in effect (the last linear layer rescales
them freely).

For joint ``j`` the predictive distribution of the torque at one input is Gaussian with

    mean_j = mu_j + a_j^T m_j,      a_j = L_j^{-1} k_j(x),   K_uu,j + jitter I = L_j L_j^T
    var_j  = sf2_j + jitter - |a_j|^2 + |L_S,j^T a_j|^2 + noise_j

(whitened strategy: q(v_j) = N(m_j, L_S,j L_S,j^T), u_j = L_j v_j). ``learning.export.gp`` evaluates the
same formula in ONNX from float64 caches.

Normalization (means and stds of inputs and targets, float64) lives in buffers of the model and
travels with every checkpoint and exported model.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import gpytorch
import numpy as np
import torch
from torch import nn

from dynlearn_ros.learning.models import GP_INPUTS, GP_KINDS

KINDS = GP_KINDS


@dataclass
class GPConfig:
    """Architecture of a GP inverse model.

    kind:          "svdkl" | "svgp" | "dkl"
    n_joints:      number of outputs n (torques, N*m)
    input_dim:     3n for (q, qd, qdd)
    hidden:        widths of the extractor's hidden ReLU layers (svdkl, dkl)
    feature_dim:   D, output width of the extractor (svdkl, dkl)
    num_inducing:  M inducing points per joint (svdkl, svgp)
    mean:          GP prior mean per joint: "linear" (w_j^T z + b_j on the GP's input z, i.e. the
                   deep features for svdkl/dkl: far from the data the prediction reverts to a
                   linear model of the features instead of a constant) or "constant"
    gp_input:      the GP's input z for svdkl/dkl: "features" (z = phi(x), width D) or
                   "features+x" (z = [phi(x), x], width D + input_dim: distance-aware)
    lengthscale_max: upper bound on every ARD lengthscale (standardized units of z), or None
                   (gpytorch's positive constraint only)

    Checkpoints and model directories written before ``gp_input`` / ``lengthscale_max`` existed
    load with the defaults, which are the architecture they were trained with.
    """

    kind: str = "svdkl"
    n_joints: int = 7
    input_dim: int = 21
    hidden: tuple[int, ...] = (128, 128)
    feature_dim: int = 8
    num_inducing: int = 128
    mean: str = "linear"
    gp_input: str = "features"
    lengthscale_max: float | None = None

    @property
    def gp_dim(self) -> int:
        """Width of the GP's input z: D, D + input_dim ("features+x"), or input_dim (svgp)."""
        if self.kind == "svgp":
            return self.input_dim
        return self.feature_dim + (self.input_dim if self.gp_input == "features+x" else 0)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> GPConfig:
        d = dict(d)
        d["hidden"] = tuple(d.get("hidden", ()))
        return cls(**d)


def make_extractor(input_dim: int, hidden: tuple[int, ...], feature_dim: int) -> nn.Sequential:
    """ReLU MLP ``(B, input_dim) -> (B, feature_dim)``, linear last layer."""
    layers: list[nn.Module] = []
    width = input_dim
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, feature_dim))
    return nn.Sequential(*layers)


def make_mean(kind: str, dim: int, batch: torch.Size) -> gpytorch.means.Mean:
    """Prior mean per output: "constant" (b_j) or "linear" (w_j^T z + b_j, z of width ``dim``)."""
    if kind == "constant":
        return gpytorch.means.ConstantMean(batch_shape=batch)
    if kind == "linear":
        return gpytorch.means.LinearMean(dim, batch_shape=batch)
    raise ValueError(f"unknown GP mean {kind!r}; choose 'linear' or 'constant'")


def make_kernel(dim: int, batch: torch.Size, lengthscale_max: float | None = None) -> gpytorch.kernels.Kernel:
    """ScaleKernel(RBF with ARD over ``dim`` inputs), batched over outputs. With
    ``lengthscale_max`` the lengthscales live in (1e-4, lengthscale_max) (sigmoid transform;
    they start at the interval's midpoint), else gpytorch's default positive constraint."""
    kw = {}
    if lengthscale_max is not None:
        kw["lengthscale_constraint"] = gpytorch.constraints.Interval(1e-4, float(lengthscale_max))
    return gpytorch.kernels.ScaleKernel(
        gpytorch.kernels.RBFKernel(ard_num_dims=dim, batch_shape=batch, **kw), batch_shape=batch
    )


def init_input_lengthscales(kernel: gpytorch.kernels.ScaleKernel, feature_dim: int, input_dim: int,
                            lengthscale_max: float | None = None) -> None:
    """Start the lengthscales of the raw-input part of z = [phi(x), x] at sqrt(input_dim).

    Standardized inputs put two random training rows about sqrt(2 input_dim) apart, so with
    gpytorch's default start (0.69 per dimension) every kernel value between distinct rows is
    ~exp(-input_dim) ~ 0: the GP explains nothing, the ELBO shrinks the outputscale and the
    model degenerates to its linear prior mean (seen on the 21-input iiwa data). At
    sqrt(input_dim) the raw part contributes exp(-|dx|^2 / (2 input_dim)) ~ exp(-1) between
    random rows and ~1 between neighbours on a trajectory."""
    ls0 = math.sqrt(input_dim)
    # (the prior mean's weights on the raw inputs are zeroed by init_input_mean)
    if lengthscale_max is not None:
        ls0 = min(ls0, 0.9 * lengthscale_max)
    with torch.no_grad():
        ls = kernel.base_kernel.lengthscale.clone()
        ls[..., feature_dim:] = ls0
        kernel.base_kernel.lengthscale = ls


def init_input_mean(mean: gpytorch.means.Mean, feature_dim: int) -> None:
    """Zero the linear prior mean's weights on the raw-input part of z = [phi(x), x].

    gpytorch draws them from N(0, 1): on input_dim standardized inputs that starts the prior
    mean with a random linear function of std ~sqrt(input_dim) target stds (4.6 for 21
    inputs), which the ELBO then spends its first epochs undoing (the feature weights act on
    features of scale ~0.3 and are harmless)."""
    if isinstance(mean, gpytorch.means.LinearMean):
        with torch.no_grad():
            mean.weights[..., feature_dim:, :] = 0.0


class IndependentSVGP(gpytorch.models.ApproximateGP):
    """One sparse variational GP per output, batched over outputs.

    inducing: (n_out, M, D) initial inducing locations (in feature or input space).
    Calling the model on ``z`` (B, D) returns a MultitaskMultivariateNormal over (B, n_out).
    """

    def __init__(self, inducing: torch.Tensor, mean: str = "constant",
                 lengthscale_max: float | None = None) -> None:
        n_out, m, d = inducing.shape
        batch = torch.Size([n_out])
        var_dist = gpytorch.variational.CholeskyVariationalDistribution(m, batch_shape=batch)
        base = gpytorch.variational.VariationalStrategy(
            self, inducing, var_dist, learn_inducing_locations=True
        )
        strategy = gpytorch.variational.IndependentMultitaskVariationalStrategy(base, num_tasks=n_out)
        super().__init__(strategy)
        self.mean_module = make_mean(mean, d, batch)
        self.covar_module = make_kernel(d, batch, lengthscale_max)

    def forward(self, z: torch.Tensor) -> gpytorch.distributions.MultivariateNormal:
        return gpytorch.distributions.MultivariateNormal(self.mean_module(z), self.covar_module(z))


class ExactBatchGP(gpytorch.models.ExactGP):
    """Exact GP per output on deep features (DKL). train_x (N, input_dim), train_y (n_out, N);
    likelihood: a batch GaussianLikelihood (batch_shape [n_out])."""

    def __init__(self, train_x: torch.Tensor, train_y: torch.Tensor, likelihood, extractor: nn.Module,
                 feature_dim: int, mean: str = "constant", skip_input: bool = False,
                 lengthscale_max: float | None = None) -> None:
        super().__init__(train_x, train_y, likelihood)
        n_out = train_y.shape[0]
        batch = torch.Size([n_out])
        self.extractor = extractor
        self.skip_input = skip_input
        dim = feature_dim + (train_x.shape[-1] if skip_input else 0)
        self.mean_module = make_mean(mean, dim, batch)
        self.covar_module = make_kernel(dim, batch, lengthscale_max)

    def forward(self, x: torch.Tensor):
        z = self.extractor(x)
        if self.skip_input:
            z = torch.cat([z, x], dim=-1)
        # a batch of n_out independent MVNs over the N rows (targets are (n_out, N)): the
        # multitask form would factor one (N n_out) x (N n_out) matrix instead of n_out N x N
        return gpytorch.distributions.MultivariateNormal(self.mean_module(z), self.covar_module(z))


class GPInverseModel(nn.Module):
    """Inverse-dynamics GP: ``(q, qd, qdd) -> tau`` with predictive variance.

    Holds the normalization as float64 buffers ``x_mean, x_std`` (input_dim,) and
    ``y_mean, y_std`` (n_joints,), the optional extractor, the GP and the likelihood.
    For "dkl" the GP is built by :meth:`set_dkl_data` (it needs its training set).
    """

    def __init__(self, cfg: GPConfig, x_mean: np.ndarray, x_std: np.ndarray, y_mean: np.ndarray,
                 y_std: np.ndarray, inducing: torch.Tensor | None = None) -> None:
        super().__init__()
        if cfg.kind not in KINDS:
            raise ValueError(f"unknown GP kind {cfg.kind!r}; choose from {KINDS}")
        if cfg.gp_input not in GP_INPUTS:
            raise ValueError(f"unknown GP input {cfg.gp_input!r}; choose from {GP_INPUTS}")
        if cfg.kind == "svgp" and cfg.gp_input != "features":
            raise ValueError("gp_input 'features+x' needs a feature extractor (svdkl or dkl); svgp's GP "
                             "already sees the raw input")
        if cfg.lengthscale_max is not None and not cfg.lengthscale_max > 1e-4:
            raise ValueError(f"lengthscale_max must be > 1e-4 (standardized units), not {cfg.lengthscale_max}")
        self.cfg = cfg
        for name, arr in (("x_mean", x_mean), ("x_std", x_std), ("y_mean", y_mean), ("y_std", y_std)):
            self.register_buffer(name, torch.as_tensor(np.asarray(arr, dtype=np.float64)))
        n = cfg.n_joints
        self.extractor = (
            make_extractor(cfg.input_dim, cfg.hidden, cfg.feature_dim) if cfg.kind in ("svdkl", "dkl") else None
        )
        # start with noise std ~0.2 of the target std: the ELBO then shrinks or grows it from a
        # value typical of torque sensors, instead of gpytorch's default of std 0.83
        if cfg.kind == "dkl":
            self.likelihood = gpytorch.likelihoods.GaussianLikelihood(batch_shape=torch.Size([n]))
            self.likelihood.noise = torch.full((n, 1), 0.04)
        else:
            self.likelihood = gpytorch.likelihoods.MultitaskGaussianLikelihood(
                num_tasks=n, rank=0, has_global_noise=False
            )
            self.likelihood.task_noises = torch.full((n,), 0.04)
        self.gp: gpytorch.models.GP | None = None
        if cfg.kind in ("svdkl", "svgp"):
            if inducing is None:
                inducing = torch.randn(n, cfg.num_inducing, cfg.gp_dim)
            self.gp = IndependentSVGP(inducing, cfg.mean, cfg.lengthscale_max)
            if cfg.kind == "svdkl" and cfg.gp_input == "features+x":
                init_input_lengthscales(self.gp.covar_module, cfg.feature_dim, cfg.input_dim, cfg.lengthscale_max)
                init_input_mean(self.gp.mean_module, cfg.feature_dim)

    # ----------------------------------------------------------------- helpers
    def normalize_x(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Raw inputs (B, input_dim) -> standardized float32 tensor (B, input_dim)."""
        x = torch.as_tensor(np.asarray(x, dtype=np.float64))
        return ((x - self.x_mean) / self.x_std).float()

    def normalize_y(self, y: np.ndarray | torch.Tensor) -> torch.Tensor:
        y = torch.as_tensor(np.asarray(y, dtype=np.float64))
        return ((y - self.y_mean) / self.y_std).float()

    def set_dkl_data(self, xn: torch.Tensor, yn: torch.Tensor) -> None:
        """DKL only: attach the (normalized) training subset, xn (N, input_dim), yn (N, n)."""
        assert self.cfg.kind == "dkl" and self.extractor is not None
        yn = yn.mT.contiguous()  # (n, N): one independent GP per joint
        if self.gp is None:
            self.gp = ExactBatchGP(xn, yn, self.likelihood, self.extractor, self.cfg.feature_dim, self.cfg.mean,
                                   skip_input=self.cfg.gp_input == "features+x",
                                   lengthscale_max=self.cfg.lengthscale_max)
            self.gp.covar_module.outputscale = torch.ones(self.cfg.n_joints)
            if self.cfg.gp_input == "features+x":
                init_input_lengthscales(self.gp.covar_module, self.cfg.feature_dim, self.cfg.input_dim,
                                        self.cfg.lengthscale_max)
                init_input_mean(self.gp.mean_module, self.cfg.feature_dim)
        else:
            self.gp.set_train_data(xn, yn, strict=False)

    def gp_inputs(self, xn: torch.Tensor) -> torch.Tensor:
        """The GP's input z for standardized inputs xn (B, input_dim): (B, cfg.gp_dim)."""
        if self.extractor is None:
            return xn
        z = self.extractor(xn)
        if self.cfg.gp_input == "features+x":
            z = torch.cat([z, xn], dim=-1)
        return z

    def latent(self, xn: torch.Tensor):
        """Latent function distribution at xn: MultitaskMultivariateNormal over (B, n) for
        svdkl/svgp; for dkl a batch MultivariateNormal over (n, B) (use :meth:`predict`)."""
        if self.cfg.kind == "dkl":
            return self.gp(xn)
        return self.gp(self.gp_inputs(xn))

    def noise_var(self) -> torch.Tensor:
        """Likelihood noise variance per joint, normalized units, (n,)."""
        if self.cfg.kind == "dkl":
            return self.likelihood.noise.detach().reshape(-1)
        return self.likelihood.task_noises.detach().reshape(-1)

    def signal_var(self) -> torch.Tensor:
        """Kernel outputscale per joint, normalized units, (n,)."""
        return self.gp.covar_module.outputscale.detach().reshape(-1)

    def sigma_n_f(self) -> tuple[np.ndarray, np.ndarray]:
        """(sigma_n, sigma_f) per joint in N*m: likelihood noise std and kernel signal std."""
        ys = self.y_std.numpy()
        return (np.sqrt(self.noise_var().double().numpy()) * ys,
                np.sqrt(self.signal_var().double().numpy()) * ys)

    @torch.no_grad()
    def predict(self, x: np.ndarray, batch_size: int = 2048, include_noise: bool = True
                ) -> tuple[np.ndarray, np.ndarray]:
        """Predictive mean and std of tau (N*m), both (B, n) float64, for raw inputs x (B, 3n).

        ``include_noise`` adds the likelihood noise (the std of a new measured torque)."""
        self.eval()
        if self.cfg.kind == "dkl":
            # gpytorch forms the exact GP's full (B x B) predictive covariance per joint before
            # taking its diagonal: keep B small so that costs B * N_train, not B^2 * N_train
            batch_size = min(batch_size, 128)
        means, stds = [], []
        xn_all = self.normalize_x(x)
        noise = self.noise_var()
        with gpytorch.settings.fast_pred_var(False), gpytorch.settings.max_cholesky_size(10**5):
            for i in range(0, xn_all.shape[0], batch_size):
                f = self.latent(xn_all[i:i + batch_size])
                mean, var = f.mean, f.variance
                if self.cfg.kind == "dkl":  # (n, B) -> (B, n)
                    mean, var = mean.mT, var.mT
                var = var + (noise if include_noise else 0.0)
                means.append(mean.double())
                stds.append(var.clamp_min(0).double().sqrt())
        mean = torch.cat(means) * self.y_std + self.y_mean
        std = torch.cat(stds) * self.y_std
        return mean.numpy(), std.numpy()
