"""Evaluation (torch): the sequence models' multi-step / inverse metrics (``sequence``) and runs
(``sequence_runs``), GP run evaluation (``gp_runs``), the GP studies of docs/results_svdkl.md
(``gp_studies``: quality, data fractions, comparisons), the rigid-body baseline (``baselines``)
and one inverse-dynamics table across every model family (``inverse_table``). Results are dicts;
tables are drawn by :mod:`dynlearn_ros.reporting`."""
