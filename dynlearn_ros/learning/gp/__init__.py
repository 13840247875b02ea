"""Export of the Gaussian-process inverse-dynamics models (SVDKL, SVGP): ``export`` (the ONNX
graph: mean + variance, batch 1) and ``export_run`` (a trained run -> model directory with
metrics and provenance). Architectures live in ``learning.models.gp``, training in
``learning.training.gp``. Import the submodules directly; this package imports nothing heavy.
"""
