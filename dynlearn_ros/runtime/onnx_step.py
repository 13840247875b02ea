"""A stateful batch-1 onnxruntime step with preallocated float32 buffers bound once (IOBinding).

Inputs and outputs are numpy arrays owned by this object; callers write the inputs in place,
call :meth:`OnnxStep.run` and read the outputs in place: nothing is allocated per call.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort


def make_session(path: Path | str | bytes, threads: int = 1) -> ort.InferenceSession:
    """CPU session, ``threads`` intra-op threads, one inter-op thread, sequential execution.
    ``path``: a file, or a serialized graph (bytes: runtime/shared_graph.py)."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path if isinstance(path, bytes) else str(path), so, providers=["CPUExecutionProvider"])


class OnnxStep:
    """One session with every input and output preallocated (float32, static shapes)."""

    def __init__(self, path: Path | str, threads: int = 1) -> None:
        self.session = make_session(path, threads)
        self._bind_all(self.session.get_inputs(), self.session.get_outputs())

    def _bind_all(self, ins: Sequence, outs: Sequence, fixed: dict[str, np.ndarray] | None = None) -> None:
        """Bind ``ins`` / ``outs`` (the session's argument descriptions) to views of one
        contiguous float32 vector each, and ``fixed`` (name -> float32 array: inputs bound once
        onto their own memory, never part of ``inputs``); then :meth:`run` is the fast path."""
        self.inputs: dict[str, np.ndarray] = {}
        self.outputs: dict[str, np.ndarray] = {}
        self._binding = self.session.io_binding()
        self._keep = []  # OrtValues must outlive the binding
        in_shapes = [self._shape(a.shape, a.name) for a in ins]
        out_shapes = [self._shape(a.shape, a.name) for a in outs]
        #: all inputs / all outputs as one contiguous float32 vector each (in graph order), so a
        #: caller can scan or copy them with one numpy call
        self.in_buf = np.zeros(sum(int(np.prod(s)) for s in in_shapes), dtype=np.float32)
        self.out_buf = np.zeros(sum(int(np.prod(s)) for s in out_shapes), dtype=np.float32)
        for args, shapes, buf, table, bind in ((ins, in_shapes, self.in_buf, self.inputs, self._binding.bind_ortvalue_input),
                                               (outs, out_shapes, self.out_buf, self.outputs, self._binding.bind_ortvalue_output)):
            off = 0
            for arg, shape in zip(args, shapes, strict=True):
                size = int(np.prod(shape))
                view = buf[off:off + size].reshape(shape)   # a view: the session reads/writes buf
                off += size
                table[arg.name] = view
                self._bind_value(bind, arg.name, view)
        for name, arr in (fixed or {}).items():
            self._bind_value(self._binding.bind_ortvalue_input, name, arr)
        # run() calls the session's C++ entry with the binding, bound once: onnxruntime's Python
        # method (InferenceSession.run_with_iobinding) checks for WebGPU graph capture on every
        # call: on the iiwa's ac-RKN, thread CPU per step min 48.5 against 49.3 us, p50 61.5
        # against 78.6 us (8 shuffled rounds of 2 000 at load ~15, docs/benchmarks.md: a small
        # saving; the graph itself is the cost). A partial is called without a Python frame.
        # Where the private names are missing, the public method.
        sess, iob = getattr(self.session, "_sess", None), getattr(self._binding, "_iobinding", None)
        if sess is not None and iob is not None and hasattr(sess, "run_with_iobinding"):
            self.run = functools.partial(sess.run_with_iobinding, iob, None)

    def declared_inputs(self) -> list:
        """The session's input descriptions a caller feeds (all of them here; a subclass may bind
        some once, runtime/shared_graph.py): what the metadata's inputs must equal."""
        return self.session.get_inputs()

    def _bind_value(self, bind, name: str, arr: np.ndarray) -> None:
        ov = ort.OrtValue.ortvalue_from_numpy(arr)   # onto arr's memory: no copy per run
        self._keep.append(ov)
        bind(name, ov)

    @staticmethod
    def _shape(shape: Sequence, name: str) -> tuple[int, ...]:
        if not all(isinstance(s, int) for s in shape):
            raise ValueError(f"ONNX tensor '{name}' has a dynamic shape {shape}; export with static batch-1 shapes")
        return tuple(int(s) for s in shape)

    def run(self) -> None:
        """Run once: reads ``self.inputs``, fills ``self.outputs`` in place."""
        self.session.run_with_iobinding(self._binding)
