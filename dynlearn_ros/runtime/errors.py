"""Errors of the model runtime, in a module of their own so every runtime module can raise them
without importing the registry (which imports the predictor modules lazily).

All are :class:`ModelLoadError`: a caller that only needs "usable or not" catches that one.
"""

from __future__ import annotations


class ModelLoadError(RuntimeError):
    """A model directory that cannot be used (missing, corrupt, wrong joints, failed checks).

    The message names the directory (or file) and the reason."""


class MetadataError(ModelLoadError):
    """metadata.json is unreadable, lacks a key, has a value of the wrong type or an unsupported
    ``format_version``; the message names the file and the key."""


class JointMismatchError(ModelLoadError):
    """The model's joint names are not a permutation of the controller's."""


class GoldenMismatchError(ModelLoadError):
    """The golden input/output pair recorded at export is not reproduced by this graph."""
