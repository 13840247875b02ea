"""A model version loaded in a process of its own (issue 10, "no tick missed because of a swap").

Why (docs/results_closed_loop.md "Session 11"): a version's load in the controller's process -
parse, NaN / inf scan, signature, golden replay, the analytic base's check: 15-22 ms of CPU -
ran in the slot's worker thread beside the ticking thread, competing with it for the
interpreter's lock, and the loading window (request -> ready) was over budget 3.7-7.0x as often
as the no-swap stretch. Here that work runs in a loader process (its own interpreter), and the
controller's worker only binds what it received onto the session it already holds.

The loader: ``python -m dynlearn_ros.runtime.loader``, started once by the controller with
:mod:`subprocess` (fork + exec: never a fork of a process with rclpy's threads that then runs
Python), before the first tick; it talks over its stdin / stdout pipes and ends when its stdin
closes (the controller ended, however: SIGKILL included). Per request it runs the whole
in-process load (:func:`dynlearn_ros.runtime.registry.load_inverse_model`: every check of
runtime/validate.py, on its own shared session per structure) and answers either a refusal (the
error's class and message, exactly as the in-process load raises it) or, for an online version
on a shared structure (runtime/shared_graph.py), a *hand-over*: the structure's key, the
version's parameter arrays (:data:`~dynlearn_ros.runtime.shared_graph.PARAM_NAMES`, float32
bytes) with the sha256 of each, and whether it checked an analytic base.

What the controller still checks itself (:meth:`ProcessLoader._bind`, cheap: ~1 ms, measured in
the bench's ``worker_stages``): the message's frame and keys; every array's name, dtype, shape
(the structure's session inputs), byte count, sha256 (against the header: a garbled or truncated
message) and finiteness; its own metadata.json (schema, kind, role, signature against the
session); and the first step of the version's golden sequence through its own binding
(golden.npz read and its sha256 checked against the metadata, the outputs within the golden
tolerance). That step ties the arrays the controller runs to the file's own record: a loader
that sends another version's arrays, or arrays of the right shape that are not the file's,
misses it (the loader replayed the whole sequence on the same structure with the same
onnxruntime, so the true arrays give the same numbers). The predictor is then built on the
controller's cached session (:meth:`ParamStep.on_session`): no session is built, no file parsed.

What the controller still loads itself (the in-process load, counted ``loader_inprocess``):
the first version of a structure it holds no session of (e.g. the first version of a new
learner track: the structure's session is built once there, the one-off cost it always had; the
later versions of the track are hand-overs), a graph that is not an online version (the shipped
models: a session of their own), and a version whose golden replay needed its own session on
the loader's side (shared_graph's float32 fallback).

Failures of the loader itself (it died, hung past :data:`LOADER_TIMEOUT_S`, or sent garbage the
checks above refuse): that load is refused (:class:`LoaderFailure`, a ModelLoadError: the slot
logs and counts it; the running model stays), the loader is killed and started again at once
(off the control path: its start-up runs in its own process), and after
:data:`LOADER_MAX_CONSECUTIVE_FAILURES` failures in a row or :data:`LOADER_MAX_RESTARTS` restarts
the controller loads in-process from then on (logged once). Never a crash, never a blocked tick:
everything here runs in the slot's worker thread.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dynlearn_ros.core.inverse_model import InverseModel
from dynlearn_ros.runtime import errors
from dynlearn_ros.runtime.errors import ModelLoadError

#: a load the loader has not answered in this long: taken as hung (a load takes 0.05-0.2 s of
#: the loader's CPU, up to ~1.5 s of wall time at load 16 on 2 cores)
LOADER_TIMEOUT_S = 20.0
#: the loader's start-up (imports onnx and onnxruntime: ~1.3 s of CPU, 14 s of wall time
#: measured at load 13, the process getting ~7 % of a core at load 20) until its hello; a load
#: waits for it (the running model stays meanwhile)
LOADER_START_TIMEOUT_S = 120.0
#: failures in a row after which the controller loads in-process (logged)
LOADER_MAX_CONSECUTIVE_FAILURES = 3
#: restarts over the controller's life after which it loads in-process (logged)
LOADER_MAX_RESTARTS = 10
#: the largest frame either side accepts (a version's arrays are ~0.1-1 MB)
MAX_FRAME = 1 << 28
#: the loader process's nice value for its loads (0: the controller's). A higher one (19: CFS
#: weight 15 against the tick's 1024) would make it lose a shared core to the ticking thread, and
#: unlike the slot's worker thread (runtime/slot.py WORKER_NICE, which stalled the tick while
#: starved with the interpreter's lock) it holds none of the controller's locks; but a starved
#: loader's loads take far longer (its start-up at 19 took over 120 s beside a busy thread of its
#: group), and its effect on the loading window is not measured yet (``bench online --arms
#: node,process_nice19``, docs/results_closed_loop.md "Session 11"), so the default is 0
LOADER_NICE = 0
#: the choices of the controller's ``model_loader`` parameter
MODEL_LOADERS = ("process", "thread")
_LEN = struct.Struct("<Q")
#: error classes a refusal may name (anything else becomes ModelLoadError)
_ERRORS = {name: getattr(errors, name) for name in ("ModelLoadError", "MetadataError", "JointMismatchError",
                                                    "GoldenMismatchError")}


class LoaderFailure(ModelLoadError):
    """The loader process failed this load (died, hung, or sent what the controller refuses)."""


# -- the frames (both sides) ------------------------------------------------------------------------
def write_frame(fd: int, payload: bytes | bytearray | memoryview) -> None:
    """One frame: 8-byte little-endian length, then the payload (all written)."""
    data = memoryview(_LEN.pack(len(payload)) + bytes(payload)) if len(payload) < 65536 else None
    if data is None:
        _write_all(fd, memoryview(_LEN.pack(len(payload))))
        _write_all(fd, memoryview(payload))
    else:
        _write_all(fd, data)


def _write_all(fd: int, view: memoryview) -> None:
    while len(view):
        k = os.write(fd, view)
        view = view[k:]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytearray:
    """``n`` bytes from ``fd``; LoaderFailure at end of file or past ``deadline`` (monotonic s)."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LoaderFailure(f"no answer within the timeout ({got} of {n} bytes)")
            if not select.select([fd], [], [], left)[0]:
                continue
        try:
            k = os.readv(fd, [view[got:]])
        except OSError as exc:
            raise LoaderFailure(f"reading the loader's pipe failed: {exc}") from exc
        if k == 0:
            raise LoaderFailure(f"the loader's pipe closed (it exited) after {got} of {n} bytes")
        got += k
    return buf


def read_frame(fd: int, deadline: float | None = None) -> bytearray:
    (n,) = _LEN.unpack(_read_exact(fd, _LEN.size, deadline))
    if n > MAX_FRAME:
        raise LoaderFailure(f"a frame of {n} bytes (more than {MAX_FRAME})")
    return _read_exact(fd, n, deadline)


# -- the loader process -----------------------------------------------------------------------------
def _answer(req: dict) -> tuple[dict, list[np.ndarray]]:
    """One request -> (header, arrays to send after it)."""
    from dynlearn_ros.runtime.registry import load_inverse_model
    from dynlearn_ros.runtime.shared_graph import ParamStep

    t0 = time.thread_time()
    try:
        model = load_inverse_model(req["kind"], req["path"], tuple(req["joints"]), urdf=req["urdf"])
    except ModelLoadError as exc:
        return {"ok": False, "error_type": type(exc).__name__, "error": str(exc)}, []
    step = getattr(model, "step", None)
    head: dict[str, Any] = {"ok": True, "kind": model.kind, "version": int(getattr(model, "version", 0) or 0)}
    if not isinstance(step, ParamStep):
        head |= {"handover": False, "reason": "not an online version on a shared structure (a session of its own)"}
        return head | {"cpu_s": time.thread_time() - t0}, []
    arrays = [(name, np.ascontiguousarray(arr, dtype=np.float32)) for name, arr in step.params.items()]
    head |= {"handover": True, "structure": step.structure_key,
             "base_urdf": req["urdf"] if getattr(model, "base", None) is not None else None,
             "params": [{"name": name, "shape": list(a.shape), "dtype": "float32", "nbytes": int(a.nbytes),
                         "sha256": hashlib.sha256(a.data).hexdigest()} for name, a in arrays],
             "cpu_s": time.thread_time() - t0}
    return head, [a for _, a in arrays]


def serve(fd_in: int, fd_out: int, nice: int | None = None) -> int:
    """The loader's loop: a hello, then one answer per request until ``fd_in`` closes. The
    imports (the start-up, ~1.3 s of CPU, before the controller's first tick) run at the
    priority it was started with, the loads at ``nice`` (only ever lowered): at nice 19 beside
    a busy thread of its group the start-up alone took over 120 s (measured beside the bench's
    busy-waiting tick loop)."""
    from dynlearn_ros.runtime.registry import import_model_runtime

    import_model_runtime()
    try:
        if nice is not None and nice > os.getpriority(os.PRIO_PROCESS, 0):
            os.setpriority(os.PRIO_PROCESS, 0, nice)
    except OSError:
        pass
    try:
        write_frame(fd_out, json.dumps({"hello": 1, "pid": os.getpid()}).encode())
    except OSError:                 # the controller ended during our start-up
        return 0
    while True:
        try:
            req = json.loads(bytes(read_frame(fd_in)))
        except LoaderFailure:       # the controller closed the pipe (it ended): so do we
            return 0
        try:
            head, arrays = _answer(req)
        except Exception as exc:  # noqa: BLE001 - anything unexpected is this load's refusal
            head, arrays = {"ok": False, "error_type": "ModelLoadError",
                            "error": f"{req.get('path')}: the loader failed: {type(exc).__name__}: {exc}"}, []
        head["id"] = req.get("id")
        try:
            write_frame(fd_out, json.dumps(head).encode())
            if arrays:
                write_frame(fd_out, b"".join(a.tobytes() for a in arrays))
        except OSError:             # the controller went away mid-answer
            return 0


def main() -> int:
    # the protocol owns the real stdout; anything printed by a library goes to stderr
    fd_out = os.dup(1)
    os.dup2(2, 1)
    try:
        return serve(0, fd_out, int(os.environ.get("DYNLEARN_LOADER_NICE", LOADER_NICE)))
    except KeyboardInterrupt:
        return 0


# -- the controller's side ----------------------------------------------------------------------------
def _inprocess(kind: str, path: str | Path, joints: Sequence[str], urdf: str | None) -> InverseModel:
    from dynlearn_ros.runtime.registry import load_inverse_model

    return load_inverse_model(kind, path, joints, urdf=urdf)


class ProcessLoader:
    """The controller's handle on its loader process; :meth:`load` is the slot's loader
    (module docstring). ``joint_names`` / ``urdf``: the controller's (every load is for them).
    ``start``: spawn the loader now (the controller's start-up); else at the first load.
    ``log(level, message)``: level "info" / "warning" / "error". ``command``: the loader's argv
    (tests); ``nice``: the loader's nice value (:data:`LOADER_NICE`; the bench's A/B); ``timeout_s`` / ``start_timeout_s``: :data:`LOADER_TIMEOUT_S`,
    :data:`LOADER_START_TIMEOUT_S`."""

    def __init__(self, joint_names: Sequence[str], urdf: str | None, start: bool = True,
                 log: Callable[[str, str], None] | None = None, timeout_s: float = LOADER_TIMEOUT_S,
                 start_timeout_s: float = LOADER_START_TIMEOUT_S, command: Sequence[str] | None = None,
                 threads: int = 1, nice: int = LOADER_NICE) -> None:
        from dynlearn_ros.runtime.registry import import_model_runtime

        import_model_runtime()
        self.joint_names, self.urdf, self.threads = tuple(joint_names), urdf, threads
        self.timeout_s, self.start_timeout_s, self.nice = timeout_s, start_timeout_s, nice
        self.command = list(command) if command else [sys.executable, "-m", "dynlearn_ros.runtime.loader"]
        self._log = log or (lambda level, msg: None)
        self._lock = threading.Lock()   # one load at a time (the slot has one worker)
        self.proc: subprocess.Popen | None = None
        self._hello = False
        self._started_at = 0.0
        self._next_id = 0
        self.closed = False
        self.fallback = False           # loading in-process from now on (after repeated failures)
        self.handovers = 0              # versions bound from the loader's arrays
        self.inprocess = 0              # loads the controller did itself (module docstring)
        self.refused = 0                # loads the loader refused (the file's fault, not the loader's)
        self.failures = 0               # loads the loader failed (LoaderFailure)
        self.restarts = 0
        self._in_a_row = 0
        #: per hand-over: the loader's thread CPU for the load (s), as it reported it
        self.loader_cpu_s: list[float] = []
        if start:
            self._spawn()

    # -- the process ------------------------------------------------------------------------------
    def _spawn(self) -> None:
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])   # this package's tree first (a source checkout)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env["DYNLEARN_LOADER_NICE"] = str(self.nice)
        # fork + exec of a fresh interpreter (never a fork that keeps running Python with the
        # parent's threads); close_fds: the loader holds no other descriptor of the controller's,
        # so its stdin closes exactly when the controller's end does
        self.proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0,
                                     close_fds=True, env=env)
        self._hello = False
        self._started_at = time.monotonic()

    def _kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for f in (proc.stdin, proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        try:
            proc.kill()
            proc.wait(timeout=5.0)
        except (OSError, subprocess.TimeoutExpired):
            pass

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def close(self) -> None:
        """Stop the loader (any thread; idempotent). A load waiting on it ends at once: the
        process is killed, so the waiting worker reads the end of its pipe and cleans up itself
        (the pipe's descriptors are closed only by the thread that reads them)."""
        self.closed = True
        if self._lock.acquire(blocking=False):
            try:
                self._kill()
            finally:
                self._lock.release()
            return
        proc = self.proc
        if proc is not None:
            try:
                proc.kill()
            except OSError:
                pass

    def counters(self) -> dict:
        return {"loader_handovers": self.handovers, "loader_inprocess": self.inprocess,
                "loader_failures": self.failures, "loader_restarts": self.restarts,
                "loader_fallback": int(self.fallback), "loader_pid": self.pid or 0}

    # -- a load (the slot's worker thread) ----------------------------------------------------------
    def load(self, kind: str, path: str | Path) -> InverseModel:
        """The version at ``path`` checked by the loader and bound here, or loaded here (module
        docstring); ModelLoadError (LoaderFailure for the loader's own failures) if refused."""
        with self._lock:
            if self.fallback or self.closed:
                self.inprocess += 1
                return _inprocess(kind, path, self.joint_names, self.urdf)
            try:
                head, blob = self._ask(kind, str(path))
                if not head["ok"]:
                    self._in_a_row = 0
                    self.refused += 1
                    raise _ERRORS.get(head.get("error_type"), ModelLoadError)(str(head.get("error")))
                if not head["handover"]:
                    self._in_a_row = 0
                    self.inprocess += 1
                    return _inprocess(kind, path, self.joint_names, self.urdf)
                from dynlearn_ros.runtime import shared_graph

                session = shared_graph.cached_session(str(head["structure"]))
                if session is None:   # a structure this process holds no session of: built here, once
                    self._in_a_row = 0
                    self.inprocess += 1
                    return _inprocess(kind, path, self.joint_names, self.urdf)
                model = self._bind(head, blob, session, kind, Path(path))
            except LoaderFailure as exc:
                self._failed(exc)
                raise
            except (KeyError, TypeError, ValueError) as exc:   # a header without what it must hold
                exc2 = LoaderFailure(f"{path}: the loader's answer is malformed ({type(exc).__name__}: {exc})")
                self._failed(exc2)
                raise exc2 from exc
            self._in_a_row = 0
            self.handovers += 1
            self.loader_cpu_s.append(float(head.get("cpu_s", 0.0)))
            return model

    def _ask(self, kind: str, path: str) -> tuple[dict, bytearray]:
        if self.proc is None:
            self._spawn()
        fd_in, fd_out = self.proc.stdout.fileno(), self.proc.stdin.fileno()
        if not self._hello:
            hello = json.loads(bytes(read_frame(fd_in, self._started_at + self.start_timeout_s)))
            if hello.get("hello") != 1:
                raise LoaderFailure(f"the loader's first message is not its hello: {str(hello)[:200]}")
            self._hello = True
        self._next_id += 1
        req = {"id": self._next_id, "kind": kind, "path": path, "joints": list(self.joint_names), "urdf": self.urdf,
               "threads": self.threads}
        try:
            write_frame(fd_out, json.dumps(req).encode())
        except OSError as exc:
            raise LoaderFailure(f"cannot send the request to the loader: {exc}") from exc
        deadline = time.monotonic() + self.timeout_s
        try:
            head = json.loads(bytes(read_frame(fd_in, deadline)))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise LoaderFailure(f"the loader's answer is not JSON: {exc}") from exc
        if not isinstance(head, dict) or head.get("id") != self._next_id:
            raise LoaderFailure(f"the loader answered another request: {str(head)[:200]}")
        blob = read_frame(fd_in, deadline) if head.get("ok") and head.get("handover") else bytearray()
        return head, blob

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        self._in_a_row += 1
        self._kill()
        if self.closed:
            return
        if self._in_a_row >= LOADER_MAX_CONSECUTIVE_FAILURES or self.restarts >= LOADER_MAX_RESTARTS:
            self.fallback = True
            self._log("error", f"model loader process: {exc}; {self._in_a_row} failures in a row, "
                      f"{self.restarts} restarts: loading models in the controller's process from now on")
            return
        self.restarts += 1
        self._log("warning", f"model loader process: {exc}; that load is refused, loader restarted "
                  f"(restart {self.restarts} of at most {LOADER_MAX_RESTARTS})")
        try:
            self._spawn()
        except OSError as exc2:   # cannot start a process at all: in-process from now on
            self.fallback = True
            self._log("error", f"model loader process cannot start ({exc2}): loading in the controller's process")

    def _bind(self, head: dict, blob: bytearray, session: Any, kind: str, model_dir: Path) -> InverseModel:
        """The controller's own checks of a hand-over (module docstring) and the predictor."""
        from dynlearn_ros.runtime.golden import GOLDEN_FLOOR, GOLDEN_RTOL, load_golden
        from dynlearn_ros.runtime.metadata import ModelMetadata
        from dynlearn_ros.runtime.registry import LEARNED_KINDS
        from dynlearn_ros.runtime.shared_graph import PARAM_NAMES, ParamStep
        from dynlearn_ros.runtime.validate import ValidatedModel, _check_signature

        want = {a.name: tuple(a.shape) for a in session.get_inputs() if a.name in PARAM_NAMES}
        specs = head["params"]
        if sorted(s["name"] for s in specs) != sorted(want):
            raise LoaderFailure(f"{model_dir}: handed-over arrays {[s['name'] for s in specs]}, the structure "
                                f"takes {sorted(want)}")
        params: dict[str, np.ndarray] = {}
        off = 0
        for s in specs:
            shape, nbytes = tuple(int(d) for d in s["shape"]), int(s["nbytes"])
            if s["dtype"] != "float32" or shape != want[s["name"]] or nbytes != 4 * int(np.prod(shape)) \
                    or off + nbytes > len(blob):
                raise LoaderFailure(f"{model_dir}: handed-over '{s['name']}' {s['dtype']} {shape} ({nbytes} bytes at "
                                    f"{off} of {len(blob)}) does not fit the structure's {want[s['name']]}")
            view = memoryview(blob)[off:off + nbytes]
            if hashlib.sha256(view).hexdigest() != s["sha256"]:
                raise LoaderFailure(f"{model_dir}: handed-over '{s['name']}' differs from its sha256 (garbled)")
            arr = np.frombuffer(blob, dtype=np.float32, count=nbytes // 4, offset=off).reshape(shape)
            if not np.isfinite(arr).all():
                raise LoaderFailure(f"{model_dir}: handed-over '{s['name']}' holds non-finite values")
            params[s["name"]] = arr
            off += nbytes
        if off != len(blob):
            raise LoaderFailure(f"{model_dir}: {len(blob) - off} bytes handed over beyond the arrays")
        meta = ModelMetadata.read(model_dir)
        if meta.kind != kind or meta.role != "inverse":
            raise LoaderFailure(f"{model_dir}: a {meta.kind} {meta.role} model, the loader passed it as {kind} inverse")
        step = ParamStep.on_session(session, str(head["structure"]), params)
        _check_signature(model_dir, step, meta)
        # the first golden step through this binding: the arrays are the file's (module docstring)
        ins, outs = load_golden(model_dir, meta)
        for name, buf in step.inputs.items():
            buf[...] = ins[name][0]
        step.run()
        for name, buf in step.outputs.items():
            ref = outs[name].astype(np.float64)
            elem = np.max(np.abs(ref), axis=0)
            scale = GOLDEN_RTOL * (elem + GOLDEN_FLOOR * float(np.max(elem)))
            err = np.abs(buf.astype(np.float64) - ref[0])
            if not np.all(err <= np.maximum(scale, np.finfo(np.float32).tiny)):
                raise LoaderFailure(f"{model_dir}: the handed-over arrays miss golden step 0 of output '{name}' "
                                    f"(max |diff| {float(np.max(err)):.3g}): not this file's parameters")
        if (meta.base is not None) != (head.get("base_urdf") is not None) or \
                (meta.base is not None and head["base_urdf"] != self.urdf):
            raise LoaderFailure(f"{model_dir}: the loader checked the analytic base against {head.get('base_urdf')!r}, "
                                f"the controller's URDF is {self.urdf!r}")
        vm = ValidatedModel(model_dir, meta, step, {}, self.urdf if meta.base is not None else None)
        module_name, cls_name = LEARNED_KINDS[kind].split(":")
        cls = getattr(importlib.import_module(module_name), cls_name)
        return cls(vm, self.joint_names)


if __name__ == "__main__":
    sys.exit(main())
