"""Training (torch / gpytorch): the sequence models' loop (``sequence``), the GP models' ELBO /
exact-MLL training and checkpoints (``gp``), GP training runs from a typed configuration
(``gp_runs``) and the calibration of the GP novelty term (``novelty``)."""
