"""Export of trained models to model directories (docs/models.md): ONNX graphs with batch-1 static
shapes, metadata in the runtime's schema, a golden sequence, written whole or not at all.

``acrkn``: ac-RKN steps (torch export; belief as explicit inputs/outputs) and ``write_model_dir``;
``acrkn_graph`` / ``acrkn_weights``: the hand-built ac-RKN inverse step and its weights;
``gp``: the SVDKL / SVGP mean + variance graph; ``gp_run``: a trained GP run -> model directory.
Import the submodules directly; this package imports nothing heavy.
"""
