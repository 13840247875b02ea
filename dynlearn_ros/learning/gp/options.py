"""GP command-line options without importing torch or gpytorch, so every ``dynlearn-ros``
subcommand (``launch`` too) can build its parser without paying for them."""

from __future__ import annotations

#: the GP's input: learned features phi(x), or [phi(x), x] (distance-aware variance)
GP_INPUTS = ("features", "features+x")


def add_architecture_arguments(parser) -> None:
    """The GP architecture options (an ArgumentParser or argument group): --gp-hidden,
    --gp-features, --gp-inducing, --gp-input, --gp-lengthscale-max."""
    parser.add_argument("--gp-hidden", default=None, help="extractor hidden widths, e.g. 128,128")
    parser.add_argument("--gp-features", type=int, default=None, help="feature dimension D")
    parser.add_argument("--gp-inducing", type=int, default=None, help="inducing points M per joint")
    parser.add_argument("--gp-input", choices=GP_INPUTS, default=None,
                        help="the GP's input: 'features' (phi(x), default) or 'features+x' ([phi(x), x]: "
                             "distance-aware variance; svdkl/dkl)")
    parser.add_argument("--gp-lengthscale-max", type=float, default=None,
                        help="upper bound on the ARD lengthscales (standardized units; default none)")
