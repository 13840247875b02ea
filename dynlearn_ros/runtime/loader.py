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
bytes) with the sha256 of each, and whether it checked an analytic base. A request may carry the
controller's recent steps (the slot's plant check, runtime/slot.py check_plant_fit, ~25 ms of
CPU per candidate): the loader then runs that check on a hand-over's candidate too and answers
its refusal as PlantFitRefused (the same message as the controller's own check), and the
controller's slot does not run it again (:meth:`ProcessLoader.plant_checked`). The loads run at
:data:`LOADER_PRIORITY` (nice 19: they take mostly what the controller and the other normal
tasks leave), the start-up at the controller's priority.

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

Failures of the loader itself (it died, hung past :data:`LOADER_TIMEOUT_S` - asleep or stopped;
a loader still runnable then is starved at its priority, not hung, and is waited for up to
:data:`LOADER_STARVED_MAX_S` -, or sent garbage the checks above refuse): that load is refused (:class:`LoaderFailure`, a ModelLoadError: the slot
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
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dynlearn_ros.core.inverse_model import InverseModel
from dynlearn_ros.runtime import errors
from dynlearn_ros.runtime.errors import ModelLoadError
from dynlearn_ros.runtime.slot import PlantFitRefused

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
#: the loader process's CPU priority for its loads (its start-up, the imports, runs at the
#: controller's): "nice19" (CFS weight 15 against the tick's 1024), "idle" (Linux SCHED_IDLE,
#: weight 3, never preempts a normal task at wake-up; where the OS has none, nice 19) or "normal"
#: (the controller's, session 11's default). Unlike the slot's worker thread at nice 19
#: (runtime/slot.py WORKER_NICE, which stalled the tick while starved holding the interpreter's
#: lock) a starved loader holds none of the controller's locks: its loads only take longer (and a
#: starved one is escalated, :data:`LOADER_ESCALATE_S`). Why nice 19 (docs/results_closed_loop.md
#: "Session 12"): in the two runs that had both, its loading window was over budget less often
#: than at "normal" (session 11 on a lightly loaded machine, session 12 on a quiet one), "idle"
#: was never better than "normal" on a quiet machine, and beside two busy loops an idle loader's
#: loads took seconds
LOADER_PRIORITY = "nice19"
LOADER_PRIORITIES = ("idle", "nice19", "normal")
#: a load past :data:`LOADER_TIMEOUT_S` whose loader is still runnable (waiting for a core: starved
#: by its low priority on a busy machine) or in an uninterruptible wait (a slow disk) is waited for,
#: up to this long in all from the request; a loader asleep or stopped past the timeout is hung. A
#: slow swap is better than a refusal (the running model stays while it waits)
LOADER_STARVED_MAX_S = 300.0
#: a load the loader has not answered this long after the request while it is runnable (waiting
#: for a core at its low priority: the machine has had no core free for it) is loaded in the
#: controller's process instead, as ``model_loader`` thread does (counted ``loader_escalations``;
#: the loader's late answer is read and dropped). Its own load is 10-35 ms of CPU, answered in
#: ~40 ms (median) when a core is free; 2 s unanswered and runnable means it got < 2 % of a core.
#: None: never (it is waited for, :data:`LOADER_STARVED_MAX_S`)
LOADER_ESCALATE_S: float | None = 2.0
#: the pipe to the loader is asked for this size (Linux F_SETPIPE_SZ; an unprivileged process may
#: ask up to /proc/sys/fs/pipe-max-size, 1 MiB by default): a request with the plant check's
#: steps (~0.2 MB) is then written without waiting for the loader to read it
PIPE_BYTES = 1 << 20
#: the choices of the controller's ``model_loader`` parameter
MODEL_LOADERS = ("process", "thread")
_LEN = struct.Struct("<Q")
#: error classes a refusal may name (anything else becomes ModelLoadError)
_ERRORS = {name: getattr(errors, name) for name in ("ModelLoadError", "MetadataError", "JointMismatchError",
                                                    "GoldenMismatchError")} | {"PlantFitRefused": PlantFitRefused}


class LoaderFailure(ModelLoadError):
    """The loader process failed this load (died, hung, or sent what the controller refuses)."""


class _Starved(Exception):  # noqa: N818 - internal: not an error, a decision (ProcessLoader._due)
    """The loader is runnable but has not answered within LOADER_ESCALATE_S: load here instead."""


# -- the frames (both sides) ------------------------------------------------------------------------
class Deadline:
    """When a wait on the loader ends (monotonic s). ``extend(escalate)``, asked when it has passed,
    returns a later time to wait on to (ProcessLoader._due: within the timeout, or the loader
    starved, not hung), None (LoaderFailure), or raises (_Starved: load it here instead)."""

    def __init__(self, at: float, extend: Callable[[bool], float | None] | None = None) -> None:
        self.at, self.extend = at, extend

    def left(self, what: str, escalate: bool = True) -> float:
        """Seconds left (> 0); LoaderFailure naming ``what`` once it has passed for good.
        ``escalate`` False: never _Starved (a frame begun is read or written whole)."""
        left = self.at - time.monotonic()
        if left <= 0 and self.extend is not None:
            later = self.extend(escalate)
            if later is not None:
                self.at = later
                left = later - time.monotonic()
        if left <= 0:
            raise LoaderFailure(f"no answer within the timeout ({what})")
        return left


def _as_deadline(deadline: float | Deadline | None) -> Deadline | None:
    return deadline if deadline is None or isinstance(deadline, Deadline) else Deadline(deadline)


def write_frame(fd: int, payload: bytes | bytearray | memoryview, deadline: float | Deadline | None = None) -> None:
    """One frame: 8-byte little-endian length, then the payload (all written). ``deadline``: for a
    non-blocking ``fd`` (the controller's end), the wait for room in the pipe ends there."""
    dl = _as_deadline(deadline)
    if len(payload) < 65536:
        _write_all(fd, memoryview(_LEN.pack(len(payload)) + bytes(payload)), dl)
    else:
        _write_all(fd, memoryview(_LEN.pack(len(payload))), dl)
        _write_all(fd, memoryview(payload).cast("B"), dl)


def _write_all(fd: int, view: memoryview, deadline: Deadline | None = None) -> None:
    while len(view):
        try:
            k = os.write(fd, view)
        except BlockingIOError:     # a non-blocking pipe that is full: wait for the reader
            left = None if deadline is None else deadline.left(f"the loader took no more of the request, "
                                                                f"{len(view)} bytes left", escalate=False)
            select.select([], [fd], [], left)
            continue
        view = view[k:]


def _read_exact(fd: int, n: int, deadline: float | Deadline | None, escalate: bool = True) -> bytearray:
    """``n`` bytes from ``fd``; LoaderFailure at end of file or past ``deadline`` (monotonic s).
    ``escalate``: the deadline may end the wait with _Starved before the first byte."""
    dl = _as_deadline(deadline)
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        if dl is not None and not select.select([fd], [], [], dl.left(f"{got} of {n} bytes", escalate and not got))[0]:
            continue
        try:
            k = os.readv(fd, [view[got:]])
        except OSError as exc:
            raise LoaderFailure(f"reading the loader's pipe failed: {exc}") from exc
        if k == 0:
            raise LoaderFailure(f"the loader's pipe closed (it exited) after {got} of {n} bytes")
        got += k
    return buf


def read_frame(fd: int, deadline: float | Deadline | None = None, escalate: bool = True) -> bytearray:
    """One frame; ``escalate``: the deadline may end the wait (_Starved) before its first byte only."""
    dl = _as_deadline(deadline)
    (n,) = _LEN.unpack(_read_exact(fd, _LEN.size, dl, escalate))
    if n > MAX_FRAME:
        raise LoaderFailure(f"a frame of {n} bytes (more than {MAX_FRAME})")
    return _read_exact(fd, n, dl, escalate=False)


# -- the loader process -----------------------------------------------------------------------------
#: the recent steps a request carries for the plant check (runtime/slot.py check_plant_fit):
#: float64 arrays, (rows, n) or (rows,), at most this many rows
PLANT_MAX_ROWS = 10000


def encode_plant(samples: dict[str, np.ndarray], sigma_n: np.ndarray, dt: float,
                 factor: float) -> tuple[dict, bytes]:
    """The request's plant-check part: (its header, the arrays' float64 bytes, in its order)."""
    arrays = [(k, np.ascontiguousarray(v, dtype=np.float64)) for k, v in samples.items()]
    head = {"dt": float(dt), "factor": float(factor), "sigma_n": [float(x) for x in np.asarray(sigma_n).ravel()],
            "arrays": [[k, list(v.shape)] for k, v in arrays]}
    return head, b"".join(v.tobytes() for _, v in arrays)


def decode_plant(head: dict, blob: bytes | bytearray) -> dict[str, np.ndarray]:
    """:func:`encode_plant`'s arrays back (ValueError if the bytes do not fit the header)."""
    out, off = {}, 0
    for name, shape in head["arrays"]:
        shape = tuple(int(d) for d in shape)
        if not 1 <= len(shape) <= 2 or shape[0] > PLANT_MAX_ROWS:
            raise ValueError(f"plant sample '{name}' of shape {shape}")
        count = int(np.prod(shape))
        if off + 8 * count > len(blob):
            raise ValueError(f"plant sample '{name}' {shape} runs past the {len(blob)} bytes sent")
        out[str(name)] = np.frombuffer(blob, dtype=np.float64, count=count, offset=off).reshape(shape)
        off += 8 * count
    if off != len(blob):
        raise ValueError(f"{len(blob) - off} bytes of plant samples beyond the arrays")
    return out


def _answer(req: dict, plant: dict[str, np.ndarray] | None = None) -> tuple[dict, list[np.ndarray]]:
    """One request -> (header, arrays to send after it). ``plant``: the controller's recent steps
    (the request's "plant" part): a hand-over's candidate is also put through the slot's plant
    check here (runtime/slot.py check_plant_fit), its refusal answered as PlantFitRefused."""
    from dynlearn_ros.runtime.registry import load_inverse_model
    from dynlearn_ros.runtime.shared_graph import ParamStep
    from dynlearn_ros.runtime.slot import check_plant_fit

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
    if plant is not None:
        pl = req["plant"]
        try:
            fit = check_plant_fit(model, plant, np.asarray(pl["sigma_n"], dtype=np.float64), float(pl["dt"]),
                                  factor=float(pl["factor"]))
        except PlantFitRefused as exc:
            return {"ok": False, "error_type": "PlantFitRefused", "error": str(exc),
                    "cpu_s": time.thread_time() - t0}, []
        head["plant_fit"] = {"rows": int(fit["rows"]), "ratio": fit.get("ratio"), "skipped": fit.get("skipped")}
    arrays = [(name, np.ascontiguousarray(arr, dtype=np.float32)) for name, arr in step.params.items()]
    head |= {"handover": True, "structure": step.structure_key,
             "base_urdf": req["urdf"] if getattr(model, "base", None) is not None else None,
             "params": [{"name": name, "shape": list(a.shape), "dtype": "float32", "nbytes": int(a.nbytes),
                         "sha256": hashlib.sha256(a.data).hexdigest()} for name, a in arrays],
             "cpu_s": time.thread_time() - t0}
    return head, [a for _, a in arrays]


def lower_priority(priority: str) -> str:
    """This process's (calling thread's, and the threads it starts later) CPU priority for its
    loads (:data:`LOADER_PRIORITY`); only ever lowered. Returns what it applied: "idle",
    "nice19", "normal" (as it was), or "normal (...)" naming why it could not."""
    try:
        if priority == "idle" and hasattr(os, "SCHED_IDLE"):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            return "idle"
        if priority in ("idle", "nice19"):
            if os.getpriority(os.PRIO_PROCESS, 0) < 19:
                os.setpriority(os.PRIO_PROCESS, 0, 19)
            return "nice19"
    except OSError as exc:
        return f"normal ({exc})"
    return "normal"


def serve(fd_in: int, fd_out: int, priority: str = "normal") -> int:
    """The loader's loop: a hello, then one answer per request until ``fd_in`` closes. The
    imports (the start-up, ~1.3 s of CPU, before the controller's first tick) run at the
    priority it was started with, the loads at ``priority`` (:func:`lower_priority`): at nice 19
    beside a busy thread of its group the start-up alone took over 120 s (measured beside the
    bench's busy-waiting tick loop). The hello says which priority the loads run at."""
    from dynlearn_ros.runtime.registry import import_model_runtime

    import_model_runtime()
    applied = lower_priority(priority)
    try:
        write_frame(fd_out, json.dumps({"hello": 1, "pid": os.getpid(), "priority": applied}).encode())
    except OSError:                 # the controller ended during our start-up
        return 0
    while True:
        try:
            req = json.loads(bytes(read_frame(fd_in)))
            blob = read_frame(fd_in) if isinstance(req, dict) and req.get("plant") else None
        except LoaderFailure:       # the controller closed the pipe (it ended): so do we
            return 0
        try:
            plant = None if blob is None else decode_plant(req["plant"], blob)
            head, arrays = _answer(req, plant)
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
        return serve(0, fd_out, os.environ.get("DYNLEARN_LOADER_PRIORITY", LOADER_PRIORITY))
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
    (tests); ``priority``: the loader's CPU priority for its loads (:data:`LOADER_PRIORITY`; the
    bench's A/B); ``timeout_s`` / ``start_timeout_s``: :data:`LOADER_TIMEOUT_S`,
    :data:`LOADER_START_TIMEOUT_S`; ``starved_max_s``: :data:`LOADER_STARVED_MAX_S`;
    ``escalate_s``: :data:`LOADER_ESCALATE_S`."""

    def __init__(self, joint_names: Sequence[str], urdf: str | None, start: bool = True,
                 log: Callable[[str, str], None] | None = None, timeout_s: float = LOADER_TIMEOUT_S,
                 start_timeout_s: float = LOADER_START_TIMEOUT_S, command: Sequence[str] | None = None,
                 threads: int = 1, priority: str = LOADER_PRIORITY,
                 starved_max_s: float = LOADER_STARVED_MAX_S,
                 escalate_s: float | None = LOADER_ESCALATE_S) -> None:
        from dynlearn_ros.runtime.registry import import_model_runtime

        import_model_runtime()
        self.joint_names, self.urdf, self.threads = tuple(joint_names), urdf, threads
        if priority not in LOADER_PRIORITIES:
            raise ValueError(f"loader priority {priority!r}: one of {', '.join(LOADER_PRIORITIES)}")
        self.timeout_s, self.start_timeout_s, self.priority = timeout_s, start_timeout_s, priority
        self.starved_max_s, self.escalate_s = starved_max_s, escalate_s
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
        #: whether the last load ran in the controller's process (its worker's arena then holds
        #: what a session build freed: the slot's heap trim is due before the next load)
        self.last_inprocess = False
        #: the priority the loader's loads run at, as its hello said (:func:`lower_priority`)
        self.applied_priority = ""
        #: loads waited for past ``timeout_s`` because the loader was starved, not hung
        self.starved_waits = 0
        #: loads done here because the loader was starved past ``escalate_s``; the ids of their
        #: requests, whose answers are still to come and are dropped
        self.escalations = 0
        self._stale: set[int] = set()
        #: the last model handed over whose plant check the loader ran (weak: :meth:`plant_checked`)
        self._plant_checked: weakref.ref | None = None
        #: per hand-over: the loader's thread CPU for the load (s), as it reported it
        self.loader_cpu_s: list[float] = []
        if start:
            self._spawn()

    # -- the process ------------------------------------------------------------------------------
    def _spawn(self) -> None:
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])   # this package's tree first (a source checkout)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env["DYNLEARN_LOADER_PRIORITY"] = self.priority
        # fork + exec of a fresh interpreter (never a fork that keeps running Python with the
        # parent's threads); close_fds: the loader holds no other descriptor of the controller's,
        # so its stdin closes exactly when the controller's end does
        self.proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0,
                                     close_fds=True, env=env)
        # the request may be larger than the pipe holds (the plant check's samples): written with
        # a deadline, never a blocking write to a loader that stopped reading
        os.set_blocking(self.proc.stdin.fileno(), False)
        try:
            import fcntl

            fcntl.fcntl(self.proc.stdin.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
        except (ImportError, OSError):
            pass   # the default size: a large request then waits for the loader to read it
        self._stale = set()
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
        return {"loader_handovers": self.handovers, "loader_inprocess": self.inprocess, "loader_refused": self.refused,
                "loader_failures": self.failures, "loader_restarts": self.restarts,
                "loader_fallback": int(self.fallback), "loader_pid": self.pid or 0,
                "loader_starved_waits": self.starved_waits, "loader_escalations": self.escalations,
                "loader_priority": self.applied_priority}

    def plant_checked(self, model: InverseModel) -> bool:
        """Whether ``model`` is the last hand-over and the loader put it through the plant check
        (the request carried ``plant``): the slot's check then need not run it again."""
        ref = self._plant_checked
        return ref is not None and ref() is model

    # -- a load (the slot's worker thread) ----------------------------------------------------------
    def load(self, kind: str, path: str | Path, plant: tuple | None = None) -> InverseModel:
        """The version at ``path`` checked by the loader and bound here, or loaded here (module
        docstring); ModelLoadError (LoaderFailure for the loader's own failures) if refused.
        ``plant``: (samples, sigma_n, dt, factor) of the slot's plant check (runtime/slot.py
        check_plant_fit, the controller's recent steps): the loader runs it on a hand-over's
        candidate (refused there: PlantFitRefused) and :meth:`plant_checked` says so; a version
        loaded here is not checked here (the slot's check does it)."""
        with self._lock:
            self._plant_checked = None
            self.last_inprocess = False
            if self.fallback or self.closed:
                return self._here(kind, path)
            try:
                try:
                    head, blob = self._ask(kind, str(path), plant)
                except _Starved as why:
                    self._stale.add(self._next_id)
                    self.escalations += 1
                    self._in_a_row = 0
                    self._log("info", f"model loader process: {why}: loading {path} in the controller's process")
                    return self._here(kind, path)
                if not head["ok"]:
                    self._in_a_row = 0
                    self.refused += 1
                    raise _ERRORS.get(head.get("error_type"), ModelLoadError)(str(head.get("error")))
                if not head["handover"]:
                    self._in_a_row = 0
                    return self._here(kind, path)
                from dynlearn_ros.runtime import shared_graph

                session = shared_graph.cached_session(str(head["structure"]))
                if session is None:   # a structure this process holds no session of: built here, once
                    self._in_a_row = 0
                    return self._here(kind, path)
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
            if plant is not None and isinstance(head.get("plant_fit"), dict):
                self._plant_checked = weakref.ref(model)
            return model

    def _here(self, kind: str, path: str | Path) -> InverseModel:
        """A load in the controller's process (module docstring), counted."""
        self.inprocess += 1
        self.last_inprocess = True
        return _inprocess(kind, path, self.joint_names, self.urdf)

    def _ask(self, kind: str, path: str, plant: tuple | None = None) -> tuple[dict, bytearray]:
        if self.proc is None:
            self._spawn()
        fd_in, fd_out = self.proc.stdout.fileno(), self.proc.stdin.fileno()
        if not self._hello:
            hello = json.loads(bytes(read_frame(fd_in, self._started_at + self.start_timeout_s)))
            if not isinstance(hello, dict) or hello.get("hello") != 1:
                raise LoaderFailure(f"the loader's first message is not its hello: {str(hello)[:200]}")
            self._hello = True
            self.applied_priority = str(hello.get("priority", ""))
        self._next_id += 1
        req = {"id": self._next_id, "kind": kind, "path": path, "joints": list(self.joint_names), "urdf": self.urdf,
               "threads": self.threads}
        blob_out = None
        if plant is not None:
            req["plant"], blob_out = encode_plant(*plant)
        asked = time.monotonic()
        try:   # never given up mid-frame for a starved loader: a partial frame would break the protocol
            sending = Deadline(asked + self.timeout_s, lambda escalate: self._due(asked, escalate=False))
            write_frame(fd_out, json.dumps(req).encode(), sending)
            if blob_out is not None:
                write_frame(fd_out, blob_out, sending)
        except BrokenPipeError as exc:
            raise LoaderFailure(f"the loader's pipe closed (it exited) before it took the request: {exc}") from exc
        except OSError as exc:
            raise LoaderFailure(f"cannot send the request to the loader: {exc}") from exc
        first = self.timeout_s if self.escalate_s is None else min(self.escalate_s, self.timeout_s)
        deadline = Deadline(asked + first, lambda escalate: self._due(asked, escalate))
        while True:
            try:
                head = json.loads(bytes(read_frame(fd_in, deadline)))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise LoaderFailure(f"the loader's answer is not JSON: {exc}") from exc
            if not isinstance(head, dict):
                raise LoaderFailure(f"the loader's answer is not a message: {str(head)[:200]}")
            if head.get("id") in self._stale:     # a request loaded here meanwhile: its answer dropped
                self._stale.discard(head.get("id"))
                if head.get("ok") and head.get("handover"):
                    read_frame(fd_in, deadline, escalate=False)
                continue
            if head.get("id") != self._next_id:
                raise LoaderFailure(f"the loader answered another request: {str(head)[:200]}")
            break
        blob = read_frame(fd_in, deadline, escalate=False) if head.get("ok") and head.get("handover") else bytearray()
        return head, blob

    def _due(self, asked: float, escalate: bool) -> float | None:
        """(A wait on the loader reached its deadline) what next: raise :class:`_Starved` (load
        here) if ``escalate`` and the loader is runnable ``escalate_s`` after the request; a
        later deadline while within ``timeout_s``, or past it while the loader is runnable or in
        an uninterruptible wait (starved, or on a slow disk: not hung) within ``starved_max_s``;
        None if it is asleep or stopped past ``timeout_s`` (hung: LoaderFailure)."""
        proc = self.proc
        if proc is None:
            return None
        try:
            state = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return None
        now = time.monotonic()
        waited = now - asked
        if escalate and self.escalate_s is not None and waited >= self.escalate_s and state == "R":
            raise _Starved(f"runnable but unanswered {waited:.1f} s after the request (starved at its "
                           f"priority '{self.applied_priority}')")
        if waited < self.timeout_s:
            nxt = asked + self.timeout_s
            if escalate and self.escalate_s is not None and waited < self.escalate_s:
                nxt = min(nxt, asked + self.escalate_s)
            return nxt
        if state not in ("R", "D") or waited >= self.starved_max_s:
            return None
        self.starved_waits += 1
        self._log("warning", f"model loader process: no answer {waited:.1f} s after the request, still "
                  f"runnable (state {state}: starved at its priority '{self.applied_priority}', not hung): waiting "
                  f"up to {self.starved_max_s:.0f} s")
        nxt = min(now + self.timeout_s, asked + self.starved_max_s)
        if escalate and self.escalate_s is not None:    # runnable again later: escalate then
            nxt = min(nxt, now + max(self.escalate_s, 0.05))
        return nxt

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
        from dynlearn_ros.runtime.golden import load_golden, tolerance
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
            err = np.abs(buf.astype(np.float64) - ref[0])
            if not np.all(err <= tolerance(ref)):
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
