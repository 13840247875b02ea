"""Model architectures (torch / gpytorch): the RKN cell (``rkn``), the ac-RKN and its RNN / FFNN
baselines (``sequence``), the GP inverse models SVDKL / SVGP / DKL (``gp``) and the novelty term
of the GP variance (``novelty``).

This package module itself imports nothing heavy: the names below are what a command-line
parser needs without paying for torch.
"""

#: the GP's input: learned features phi(x), or [phi(x), x] (distance-aware variance)
GP_INPUTS = ("features", "features+x")
#: the GP model kinds
GP_KINDS = ("svdkl", "svgp", "dkl")
