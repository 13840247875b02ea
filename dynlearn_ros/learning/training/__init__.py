"""Training (torch / gpytorch): the sequence models' loop (``sequence``) and runs
(``sequence_runs``), the GP models' ELBO / exact-MLL training and checkpoints (``gp``), GP runs
from a typed configuration (``gp_runs``) and the calibration of the GP novelty term
(``novelty``)."""
