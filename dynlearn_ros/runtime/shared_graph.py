"""One onnxruntime session for every version of an online model: a hot swap that builds and
releases no session (issue 10, "no tick missed because of a swap").

An online version (``learning/online.py`` :func:`~dynlearn_ros.learning.online.compose_graph`)
is the base graph with a correction appended; from one version to the next of one learner only
the correction's arrays change, the initializers :data:`PARAM_NAMES`:

    oc_w (F, n) N*m, oc_p (F, F), oc_s2 (1, n) (N*m)^2, oc_pm_dm (1, 1) kg, oc_pm_dmvar (1, 1) kg^2

(W, the posterior covariance P, the residual variance s2, the payload dm and its variance). The
rest - the base model's weights and normalization, the features' Omega and phase, the payload
regressor's constants, every node - is the same for every version of a learner's track.

So a reader (:func:`dynlearn_ros.runtime.validate.open_model_dir`, every controller load) turns
these initializers into graph inputs, serializes what is left (the *structure*) and looks its
sha256 up in a process-wide cache of sessions: the first version of a structure builds the
session, every later one reuses it. A version is then a :class:`ParamStep`: its own IOBinding on
the shared session, onto its own buffers (the declared inputs, the outputs, and its parameter
arrays copied from its file). Swapping versions swaps which binding the tick runs; releasing a
version frees a binding and a few arrays, not a session. onnxruntime runs one session from
several threads at once (``InferenceSession::Run`` is thread-safe), each with its own binding:
the slot's worker replays the golden sequence of a new version while the tick runs the active one.

What that removes from a swap (measured, docs/results_closed_loop.md "Session 8"): the session
build in the worker (18-22 ms CPU per version, session 7) and the old version's session
destruction (1.1-1.3 ms holding the interpreter's lock, in whichever thread drops it last).

The contract is unchanged: each version's file is parsed, its initializers scanned for NaN / inf,
its signature checked against its metadata and its golden sequence replayed through its own
binding (the values it runs with), so a corrupt file, a NaN model or a mismatching golden is
refused exactly as before. The outputs equal a session built from the file to float32 rounding
(onnxruntime may order the MatMul's sums differently with a weight it cannot pre-pack):
test/unit/test_shared_graph.py.

Cache size: :data:`MAX_SESSIONS` structures (a learner exports on two bases at most, "model" and
"analytic"; a restarted trainer with another seed or feature count is a new structure). An
evicted structure's session lives on while a version still holds it and is released with its
last version (a rare, one-off release, as every swap's used to be).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import onnxruntime as ort

from dynlearn_ros.runtime.onnx_step import OnnxStep, make_session

#: the per-version initializers of an online correction (learning/online.py compose_graph)
PARAM_NAMES: tuple[str, ...] = ("oc_w", "oc_p", "oc_s2", "oc_pm_dm", "oc_pm_dmvar")
#: the initializer that marks a graph as an online version (every composed graph has it)
MARKER = "oc_w"
#: structures whose session the cache keeps (module docstring)
MAX_SESSIONS = 4

#: whether readers share sessions (``open_model_dir(shared=None)``); benchmarks switch it off for
#: their per-version-session arm with :func:`per_version_sessions`
enabled = True
_lock = threading.Lock()
_sessions: OrderedDict[str, ort.InferenceSession] = OrderedDict()
#: since the process started: sessions built (tests: a second version builds none) / found in the
#: cache; versions that missed their golden replay on the shared
#: session by float32 rounding and passed it on a session of their own file (runtime/validate.py)
stats = {"sessions_built": 0, "cache_hits": 0, "own_session_after_golden_miss": 0}


def is_online_graph(proto: Any) -> bool:
    """Whether ``proto`` (onnx.ModelProto) carries an online correction's parameters."""
    return any(init.name == MARKER for init in proto.graph.initializer)


def split_params(proto: Any) -> tuple[bytes, dict[str, np.ndarray]]:
    """Move the :data:`PARAM_NAMES` initializers of ``proto`` (changed in place) into graph
    inputs; returns (the structure serialized, {name: float32 array}). The structure's bytes
    are the same for two versions of one learner's track."""
    from onnx import TensorProto, helper, numpy_helper

    g = proto.graph
    params: dict[str, np.ndarray] = {}
    keep = []
    for init in g.initializer:
        if init.name in PARAM_NAMES:
            params[init.name] = np.ascontiguousarray(numpy_helper.to_array(init), dtype=np.float32)
        else:
            keep.append(init)
    del g.initializer[:]
    g.initializer.extend(keep)
    for name in PARAM_NAMES:   # a fixed order: the same structure for the same parameters
        if name in params:
            g.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(params[name].shape)))
    return proto.SerializeToString(), params


def structure_key(structure: bytes, threads: int = 1) -> str:
    """The cache's key of ``structure`` (bytes of a graph) run with ``threads``."""
    return hashlib.sha256(structure).hexdigest() + f":{threads}"


def cached_session(key: str) -> ort.InferenceSession | None:
    """The cached session of :func:`structure_key` ``key``, or None (never builds one): the
    controller's side of a load in the loader process (runtime/loader.py)."""
    with _lock:
        sess = _sessions.get(key)
        if sess is not None:
            _sessions.move_to_end(key)
            stats["cache_hits"] += 1
        return sess


def shared_session(structure: bytes, threads: int, key: str) -> ort.InferenceSession:
    """The cached session of ``structure`` (bytes of a graph) run with ``threads``, built on the
    first request; ``key``: its :func:`structure_key` (the caller's, so a load hashes once)."""
    sess = cached_session(key)
    if sess is not None:
        return sess
    sess = make_session(structure, threads)   # outside the lock: a build takes ~20 ms
    with _lock:
        have = _sessions.get(key)
        if have is not None:        # another thread built it meanwhile: use one, drop ours
            return have
        _sessions[key] = sess
        stats["sessions_built"] += 1
        while len(_sessions) > MAX_SESSIONS:
            _sessions.popitem(last=False)
    return sess


@contextmanager
def per_version_sessions() -> Iterator[None]:
    """Context: every reader builds a session of its own per version (the behaviour before this
    module; ``bench online`` measures both in one run)."""
    global enabled
    before, enabled = enabled, False
    try:
        yield
    finally:
        enabled = before


def clear_cache() -> None:
    """Forget every cached session (tests)."""
    with _lock:
        _sessions.clear()


class ParamStep(OnnxStep):
    """A batch-1 step of one online version on its structure's shared session: the interface of
    :class:`~dynlearn_ros.runtime.onnx_step.OnnxStep` (``inputs`` / ``outputs`` name -> float32
    view, ``in_buf`` / ``out_buf`` the same as one contiguous vector each, ``run()``,
    ``session``), where ``inputs`` are the graph's declared inputs only, and ``params``
    (name -> float32 array, :data:`PARAM_NAMES`) are bound once and never written again."""

    def __init__(self, proto: Any, threads: int = 1) -> None:   # not OnnxStep.__init__: no file to open
        declared = [i.name for i in proto.graph.input]
        structure, params = split_params(proto)
        #: the structure's cache key (:func:`structure_key`): what a loader process hands over
        self.structure_key = structure_key(structure, threads)
        self.session = shared_session(structure, threads, self.structure_key)
        self.params = params
        by_name = {a.name: a for a in self.session.get_inputs()}
        self._bind_all([by_name[name] for name in declared], self.session.get_outputs(), params)

    @classmethod
    def on_session(cls, session: ort.InferenceSession, key: str, params: dict[str, np.ndarray]) -> ParamStep:
        """A version's step on ``session`` (its structure's, cached under ``key``) with ``params``
        (name -> float32 array of the session's input shape, bound once onto its own memory, not
        copied): no file parsed, no session built (runtime/loader.py). The declared inputs are the
        session's other inputs, in the graph's order (``split_params`` appends the parameters)."""
        self = cls.__new__(cls)
        self.session, self.structure_key, self.params = session, key, params
        self._bind_all([a for a in session.get_inputs() if a.name not in params], session.get_outputs(), params)
        return self

    def declared_inputs(self) -> list:
        """The session's input descriptions without the parameters (the metadata's inputs)."""
        return [a for a in self.session.get_inputs() if a.name not in self.params]
