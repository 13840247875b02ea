"""Gaussian-process inverse-dynamics models (gpytorch): SVDKL, SVGP, DKL.

``models`` (architectures), ``training`` (ELBO / exact-MLL training, metrics, checkpoints),
``export`` (ONNX mean + variance, batch 1), ``cli`` (train / evaluate / export for the
``dynlearn-ros`` commands), ``bench`` (latency of the exported model), ``report`` (the tables
and plots of docs/results_svdkl.md). Import the submodules directly; this package imports
nothing heavy itself.
"""
