"""The model slot: load and check a new feed-forward model off the control path, hand it to the
tick as one reference, keep the previous one for rollback. No ROS here.

Life of a model::

    request(kind, path)  -> worker thread: load (``loader``), check (the node's: :func:`check_model`
                            at home, :func:`check_plant_fit` on the controller's recent steps),
                            prepare (the node's ``prepare(model)``, e.g. its gain tuning)
                         -> ready (one reference) or refused (reason kept for :meth:`poll`)
    take_ready()         <- the tick, at its start: returns the ready :class:`Candidate` once;
                            the tick swaps it in (``ComputedTorqueController.swap_model``)
    activated(prev)      <- the tick: the swapped-out model becomes the rollback target
    note_tick(ok)        <- every tick: ROLLBACK_AFTER unusable predictions in a row right after
                            a swap (within WATCH_TICKS) stage the previous model again
    after_tick(query)    <- deferred mode only (``deferred=True``, the controller node): the
                            ticking thread, after the tick's command is out, does at most one
                            piece of the swap's own work: release a model the swap let go, or
                            warm the ready candidate with one prediction at the tick's query

Why the deferred mode (measured here, see docs/results_closed_loop.md "bench online"): two costs of a
swap otherwise land in the swap tick. (1) The model that leaves the rollback place is released
there: destroying its onnxruntime session took 0.35 ms median for the shipped graph and 0.7-0.9
ms for an online version (load average ~12 on 2 cores), and the session's destructor holds the
interpreter's lock the whole time (a spinning thread stalled as long), so handing it to the
worker thread only moves the stall to whichever tick the worker overlaps. That is the likely
cause of the status rows test_hot_swap lost when it was tried (session 5, not reproduced since):
the worker, woken by the swap, can take the lock between the swap tick's command and its status
row, so that row leaves ~1 ms late, back to back with the next tick's, and the peer's keep-last-1
best-effort reader keeps only the later one. Also, the worker's own locals held the model it
had loaded last until its next load, so a model could be released there even without any
hand-over; it now lets go of them before it waits. (2) The new
model's first prediction in the ticking thread took 1.9-2.3x its second one (median of the
paired ratio over 25 swaps), although the worker had run 25 predictions of it: the worker runs
on the other core, so the weights are not in the ticking core's cache. Deferred, both happen in
the ticking thread right after a command is published (the time the controller otherwise waits
for the next state) and never in the tick that swaps: the candidate is warmed after tick k, swapped
in at tick k+1, and the model it pushes out is released after tick k+1 has published.

``ROLLBACK_AFTER`` = 20 ticks (20 ms at 1 kHz): one unusable prediction can be a transient the
controller's fallback covers (analytic feed-forward, K_max: safe, not limp); twenty in a row
right after a swap mean the new model does not work on this robot's states, while a model that
passed the checks and then fails late (beyond ``WATCH_TICKS`` = 1000 ticks) is the controller's
fallback business, not the swap's.

A recurrent model's belief (ac-RKN) is not carried across: the new model starts from its initial
belief (the controller resets it on swap) and warms up from the next measured state, with the
last commanded torque as its previous action; the std envelope keeps its state, so the gains
follow a higher std at once and a lower one with ``sigma_release_s``.

Threads: the worker only touches the new model; ``_ready`` is handed over under a lock that the
tick takes without blocking for long (a reference swap). ``poll`` (the node's executor thread)
collects results for logging. Counters: swaps, refused, rollbacks, released (deferred releases).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from dynlearn_ros.core.inverse_model import InverseModel, InverseQuery
from dynlearn_ros.core.residual import REFERENCE_KEYS
from dynlearn_ros.runtime.memory import trim_heap

ROLLBACK_AFTER = 20
#: deferred mode: models let go and not yet released by the ticking thread, at most. The ticking
#: thread releases one per tick, announcements come at most every few hundred ms and a load takes
#: >= 10 ms of the worker, so while the controller ticks the queue holds 0-2. More means no tick
#: drains it (no state yet, a second source, a lifecycle node inactive: a 24-minute soak that
#: refused to control loaded and queued all 74 announced models, +2.7 MB/min): the worker then
#: releases the oldest beyond this itself (no tick to stall, so no tick pays for it)
RETIRED_MAX = 4
WATCH_TICKS = 1000
#: plant check (:func:`check_plant_fit`): recent steps scored (0.3 s at 1 kHz), the fewest that
#: make a score (fewer: the check is skipped and says so), and the refusal factor on the RMS error
PLANT_FIT_ROWS = 300
PLANT_FIT_MIN_ROWS = 100
PLANT_FIT_FACTOR = 2.0
#: a nice value for the worker thread (``ModelSlot(worker_nice=...)``, not the default): measured
#: (session 9, ``bench online --arms nice``), it shortens nothing the tick waits for and makes it
#: worse: the worker, starved on the loaded cores while it holds the interpreter's lock, stalled
#: the tick it finished in for up to 2 s (p99), and a load took 1.5 s instead of 0.07 s
WORKER_NICE = 19
#: the interpreter's thread switch interval in the controller's process (Python's default: 5 ms):
#: how long the ticking thread, back from a call that released the interpreter's lock (an
#: onnxruntime run), may wait for the slot's worker to hand the lock back; see
#: docs/results_closed_loop.md "Session 9"
CONTROL_SWITCH_INTERVAL_S = 2e-4


class ModelRefused(RuntimeError):
    """A candidate model that failed its checks (the message says which)."""


class PlantFitRefused(ModelRefused):
    """A candidate that does not fit the running plant (:func:`check_plant_fit`)."""


@dataclass(frozen=True)
class Candidate:
    """A loaded, checked model with what the node prepared for it (e.g. a controller tuning)."""

    model: InverseModel
    kind: str
    path: str
    prepared: Any = None

    @property
    def version(self) -> int:
        return int(getattr(self.model, "version", 0) or 0)


@dataclass(frozen=True)
class SlotEvent:
    """A finished request for the node to log: ``ok`` (ready for the tick) or refused (``reason``)."""

    ok: bool
    kind: str
    path: str
    reason: str = ""
    version: int = 0
    rollback: bool = False


def check_model(model: InverseModel, joint_names: tuple[str, ...], q: np.ndarray, dt: float = 1e-3,
                ticks: int = 5) -> None:
    """Golden-state check: ``ticks`` predictions at ``q`` (n,) rad at rest with the reference at
    ``q`` must be usable (True) and finite with std >= 0; the model's joints must be ``joint_names``.
    Raises :class:`ModelRefused`. The model is reset afterwards."""
    if tuple(model.joint_names) != tuple(joint_names):
        raise ModelRefused(f"joints {list(model.joint_names)} differ from the controller's {list(joint_names)}")
    n = model.n
    query = InverseQuery(n, dt=dt)
    for arr in (query.q, query.q_des, query.q_des_next):
        arr[:] = q
    mean, std = np.zeros(n), np.zeros(n)
    with checking(model):
        for k in range(ticks):
            ok = model.predict(query, mean, std)
            if not ok or not np.isfinite(mean).all() or not np.isfinite(std).all() or np.any(std < 0):
                raise ModelRefused(f"prediction {k + 1} at the check state is unusable "
                                   f"(ok={ok}, mean={np.round(mean, 3).tolist()}, std={np.round(std, 3).tolist()})")
            model.commit(mean)
            query.tau_prev[:] = mean


def check_plant_fit(model: InverseModel, samples: dict[str, np.ndarray] | None, sigma_n: np.ndarray,
                    dt: float, factor: float = PLANT_FIT_FACTOR, replay: str = "reference") -> dict:
    """Score ``model`` on the controller's recent steps against the running model; refuse
    (:class:`PlantFitRefused`, both errors in the message) a candidate worse by ``factor``.

    samples: :meth:`dynlearn_ros.core.residual.ResidualSigma.snapshot` - per step t (m,) s, the
    state q, qd, the measured acceleration a, the applied torque tau, the running model's
    realized error r, the linearization term ma = M(q)(a - qdd_des) (m, n), and for
    ``replay="reference"`` the reference the running model read (q_des, qd_des, qdd_des,
    q_des_next, qd_des_next). The candidate is run over the steps in order as the controller ran
    the running model (the previous applied torque committed; reset where the steps are not
    contiguous), and its error is scored in the form r has:

    * ``replay="reference"`` (the swap's check): the candidate at the tick's own query,
      e = tau - f(q, qd, reference) - ma, exactly the innovation the controller would have
      measured had the candidate been running (core/residual.py). Like with like: a copy of the
      running model scores r itself (ratio 1 for a stateless model; a recurrent one differs by its
      reset belief's first steps).
    * ``replay="measured"``: the measured motion as the reference (q_des = q, qd_des = qd,
      qdd_des = a, the next desired state the step reached), e = tau - f(q, qd, a), the exact
      error at the measured acceleration (the report of what the linearization misses,
      scenarios/online_inproc.py ``realized_check``). Not for refusing: a learned model evaluated
      at measured accelerations (the feedback's, off its training inputs) errs more than its
      linearization at the reference does, so a copy of the running SVDKL scored up to 2.5x its own
      r on the sine (in-process, 2 of 28 windows of 0.3 s; 5.2x once over DDS under load), and the
      check refused the very model it ran (the intermittent test_hot_swap_plant_check failure).

    Score per joint: s_j = RMS_t e_tj (N*m), the running model's s_run,j = RMS_t r_tj, and
    refused if s_j > factor * max(s_run,j, sigma_n,j) on any joint (both errors of the worst joint
    in the message). Per joint and relative, because the joints' torques differ by 1000x (iiwa
    sigma_f 1.5 N*m on joint 2, 7e-4 on joint 7): one pooled score is the few joints' whose
    friction is largest against their scale, and a payload that joint 7 does not feel would pass.
    The floor sigma_n: below it the schedule is at K_min either way, errors under it are equally good.

    Why factor 2: the trainer exports only a candidate no worse than the running model on its
    own held-out window of the same plant, so a candidate of this plant scores here about as the
    running one does (the windows differ by < 1 s); the score's sampling error over 300 steps of
    ~20 independent stretches (a 5-15 ms correlation of the motion's error) is ~1 / sqrt(2 * 20)
    ~ 16 %, so 2x is > 6 of those. A candidate 2x worse would double sigma (the realized-error
    sigma) and the tracking error at the same gains: nothing a swap should bring. A model of
    another plant misses by the plant difference: 10 kg more payload than the plant carries is
    ~10 kg * 9 N*m/kg on the iiwa's joint 2, ~60 sigma_f, in either replay.

    Returns {"rows", "score", "running", "floor"} ((n,) N*m each: s, s_run, sigma_n) and "ratio"
    (the largest s_j / max(s_run,j, sigma_n,j)), or {"rows", "skipped"} with fewer than
    PLANT_FIT_MIN_ROWS steps. Raises ValueError for an unknown ``replay`` or samples without
    the reference it needs."""
    if replay not in ("reference", "measured"):
        raise ValueError(f"replay must be 'reference' or 'measured', got {replay!r}")
    rows = 0 if samples is None else len(samples["t"])
    if rows < PLANT_FIT_MIN_ROWS:
        return {"rows": rows, "skipped": f"{rows} recent steps (< {PLANT_FIT_MIN_ROWS})"}
    if replay == "reference" and not all(k in samples for k in (*REFERENCE_KEYS, "ma")):
        raise ValueError("replay='reference' needs the recorded reference (ResidualSigma.bind_query) and ma")
    n = model.n
    query = InverseQuery(n, dt=dt)
    mean, std = np.zeros(n), np.zeros(n)
    err = np.zeros((rows, n))
    t, q, qd, a, tau = (samples[k] for k in ("t", "q", "qd", "a", "tau"))
    with checking(model):
        for i in range(rows):
            if i and not abs(t[i] - t[i - 1] - dt) <= 0.25 * dt:
                model.reset()            # a gap: a recurrent model restarts, as after a hold
            query.q[:], query.qd[:] = q[i], qd[i]
            if replay == "reference":
                for k in REFERENCE_KEYS:
                    getattr(query, k)[:] = samples[k][i]
            else:
                query.q_des[:], query.qd_des[:] = q[i], qd[i]
                query.qdd_des[:] = a[i]
                np.multiply(a[i], dt, out=query.qd_des_next)
                query.qd_des_next += qd[i]
                np.multiply(query.qd_des_next, dt, out=query.q_des_next)
                query.q_des_next += q[i]
            if i:
                query.tau_prev[:] = tau[i - 1]
            ok = model.predict(query, mean, std)
            if not ok or not np.isfinite(mean).all():
                raise PlantFitRefused(f"prediction on recent step {i} of {rows} is unusable (ok={ok})")
            err[i] = tau[i] - mean
            if replay == "reference":
                err[i] -= samples["ma"][i]
            model.commit(tau[i])
    score = np.sqrt(np.mean(err ** 2, axis=0))
    running = np.sqrt(np.mean(samples["r"] ** 2, axis=0))
    floor = np.asarray(sigma_n, dtype=np.float64)
    ratios = score / np.maximum(np.maximum(running, floor), 1e-300)
    j = int(np.argmax(ratios))
    out = {"rows": rows, "score": score, "running": running, "floor": floor, "ratio": float(ratios[j])}
    if not ratios[j] <= factor:
        raise PlantFitRefused(
            f"does not fit the running plant: RMS error on the controller's last {rows} steps, joint {j + 1}: "
            f"{score[j]:.4g} N*m against the running model's {running[j]:.4g} (sigma_n {floor[j]:.3g}): "
            f"{ratios[j]:.3g}x, refused above {factor:g}x")
    return out


def lower_this_thread(nice: int | None) -> dict:
    """Lower the calling thread's CPU priority (Linux: policy and nice value are per thread): leave
    a real-time policy (``chrt -f`` on the controller's process) for SCHED_OTHER, then take nice
    value ``nice`` if that is lower priority than the thread's own (None: the nice value stays).
    Only ever lowers, so it needs no privilege; an OS that refuses leaves the thread as it was.
    Returns what it did: {"policy": the policy before, "nice": the nice value after} or {"error": ...}."""
    try:
        tid = threading.get_native_id()
        before = os.sched_getscheduler(0)
        if before != os.SCHED_OTHER:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        cur = os.getpriority(os.PRIO_PROCESS, tid)
        if nice is not None and nice > cur:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
        return {"policy": before, "nice": os.getpriority(os.PRIO_PROCESS, tid)}
    except (OSError, AttributeError) as exc:   # not Linux, or a sandbox that refuses
        return {"error": f"{type(exc).__name__}: {exc}"}


@contextmanager
def checking(model: Any) -> Iterator[None]:
    """The frame of a check-state prediction (inverse :func:`check_model`, forward
    ``runtime.forward.check_forward_model``): ``model`` reset before and after; an exception the
    model raises on the finite check input breaks its contract and becomes :class:`ModelRefused`."""
    model.reset()
    try:
        yield
    except ModelRefused:
        raise
    except Exception as exc:  # a model raising on finite input breaks its contract: refuse it
        raise ModelRefused(f"prediction at the check state raised {type(exc).__name__}: {exc}") from exc
    finally:
        model.reset()


class ModelSlot:
    """The active model's slot. ``loader(kind, path) -> InverseModel`` may raise (any exception
    refuses the request with its message); ``check(model)`` raises :class:`ModelRefused`;
    ``prepare(model)`` builds what the tick needs with the model (may raise ValueError)."""

    def __init__(self, active: InverseModel, active_kind: str, active_path: str,
                 loader: Callable[[str, str], InverseModel], check: Callable[[InverseModel], None],
                 prepare: Callable[[InverseModel], Any] = lambda m: None, deferred: bool = False,
                 worker_nice: int | None = None, on_close: Callable[[], None] | None = None,
                 trim_before_load: bool | Callable[[], bool] = False) -> None:
        """``deferred``: the ticking thread calls :meth:`after_tick` after each tick's command
        (module docstring); a ready candidate is then swapped in only once it was warmed there,
        and the models a swap lets go are released there, never in :meth:`activated`; and the
        worker thread leaves a real-time policy for SCHED_OTHER and lowers its nice value to
        ``worker_nice`` (:func:`lower_this_thread`; None: it keeps the nice value of the thread that
        started it). Not deferred: ``worker_nice`` unused, the worker keeps its priority.
        ``on_close``: called by :meth:`close` before it waits for the worker (the node's loader
        process is stopped there: a load waiting on it ends at once, runtime/loader.py).
        ``trim_before_load``: the worker calls glibc's ``malloc_trim(0)`` (runtime/memory.py
        ``trim_heap``) as it takes each request, before loading: what the previous load and the
        swap's release freed in the malloc arenas goes back to the kernel instead of staying
        resident, where it piled up load after load (docs/safety.md, "Memory, eleventh
        session"). Before the load, not after it: right after a load the tick warms, swaps and
        releases, and a trim then holding the arena's lock made those ticks slower. A callable:
        asked before each load whether to trim (the node: only when the previous load ran in
        this process: a version handed over by the loader process leaves the worker's arena flat,
        docs/results_closed_loop.md "Session 12", and a trim that walks the main arena holds its
        lock for up to ~3 ms against the tick's mallocs).
        Imports what a load needs here, in the constructing thread (``registry.import_model_runtime``:
        a first import in the worker would hold the GIL for ~1 s against the ticking thread)."""
        from dynlearn_ros.runtime.registry import import_model_runtime

        import_model_runtime()
        self.loader, self.check, self.prepare = loader, check, prepare
        self._on_close = on_close
        self.deferred = deferred
        self.worker_nice = worker_nice if deferred else None
        #: what the worker's :func:`lower_this_thread` did (None until it ran; deferred slots only)
        self.worker_priority: dict | None = None
        self.trim_before_load = trim_before_load
        #: trim_before_load: malloc_trim calls made and the longest one (ms; in the worker thread)
        self.trims = 0
        self.trim_max_ms = 0.0
        #: deferred mode: models the swaps let go, released one per :meth:`after_tick`
        self._retired: list[InverseModel] = []
        #: deferred mode: the ready model warmed in the ticking thread (identity, not a copy)
        self._warmed: InverseModel | None = None
        # the warm-up's output buffers (n,): deferred mode only, i.e. the controller's inverse
        # models; a slot that never warms (the predictor's forward models) needs none
        n = active.n if deferred else 0
        self._warm_mean = np.zeros(n)
        self._warm_std = np.zeros(n)
        self.released = 0
        self.released_off_tick = 0   # of ``released``: by the worker, the queue over RETIRED_MAX
        self.active = Candidate(active, active_kind, active_path)
        self.previous: Candidate | None = None
        self._ready: Candidate | None = None
        self._pending: tuple[str, str] | None = None   # the latest request waiting for the worker
        self._lock = threading.Lock()
        self._events: list[SlotEvent] = []
        self._worker: threading.Thread | None = None
        self._wake = threading.Condition(self._lock)
        self._closed = False
        self._staged_rollback = False
        self._since_swap = WATCH_TICKS
        self._bad_run = 0
        self.swaps = 0
        self.refused = 0
        self.refused_plant_fit = 0   # of ``refused``: candidates that did not fit the running plant
        self.rollbacks = 0
        self.loading = False

    # -- requests (any thread) ------------------------------------------------------------------
    def request(self, kind: str, path: str) -> None:
        """Load ``kind`` from ``path`` in the worker; a newer request replaces one not yet started."""
        with self._lock:
            if self._closed:
                return
            self._pending = (kind, path)
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="model-slot", daemon=True)
                self._worker.start()
            self._wake.notify()

    def rollback(self, reason: str = "requested") -> bool:
        """Stage the previous model again (the next tick swaps it in); False if there is none."""
        with self._lock:
            prev = self.previous
            if prev is None:
                return False
            try:
                prepared = self.prepare(prev.model)
            except ValueError:
                return False
            self._ready = Candidate(prev.model, prev.kind, prev.path, prepared)
            self._staged_rollback = True
            self._events.append(SlotEvent(True, prev.kind, prev.path, f"rollback to the previous model: {reason}",
                                          prev.version, rollback=True))
            return True

    def reprepare(self) -> None:
        """Rebuild the ready candidate's prepared part (after the parameters changed)."""
        with self._lock:
            r = self._ready
            if r is not None:
                self._ready = Candidate(r.model, r.kind, r.path, self.prepare(r.model))

    def close(self, timeout: float = 2.0) -> bool:
        """Stop taking requests; wait up to ``timeout`` s for the worker. The worker ends at its
        next stage boundary (after the load, after the check); a load itself (onnxruntime
        building a session, a model file on a stalled disk) cannot be interrupted. Returns False
        if the worker is still inside one after ``timeout``: the process must then not run the
        interpreter's finalization (a thread inside onnxruntime while the interpreter tears down
        aborts it with 'terminate called without an active exception'), see
        :func:`dynlearn_ros.nodes.runner.run_node`."""
        with self._lock:
            self._closed = True
            self._pending = None
            self._wake.notify()
        if self._on_close is not None:
            self._on_close()
        if self._worker is not None:
            self._worker.join(timeout)
            return not self._worker.is_alive()
        return True

    # -- the worker -------------------------------------------------------------------------------
    def _work(self) -> None:
        if self.deferred:
            # never a real-time policy (rt_priority runs the controller under chrt -f, which the
            # worker inherits from the thread that starts it): at the ticking thread's priority a
            # load's CPU (parse, checks: ~13 ms) would run ahead of ticks on its core. The nice
            # value changes only when asked (worker_nice)
            self.worker_priority = lower_this_thread(self.worker_nice)
        while True:
            with self._lock:
                while self._pending is None and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                kind, path = self._pending
                self._pending = None
                self.loading = True
            due = self.trim_before_load
            if due() if callable(due) else due:
                took = trim_heap()
                if took is not None:
                    self.trims += 1
                    self.trim_max_ms = max(self.trim_max_ms, took * 1e3)
            model = None
            try:
                model = self.loader(kind, path)
                if self._closed:   # shut down while it loaded: drop it, end
                    return
                kind = kind or model.kind
                self.check(model)
                if self._closed:
                    return
            except Exception as exc:  # every failure refuses the request, with its reason
                with self._lock:
                    self.refused += 1
                    self.refused_plant_fit += isinstance(exc, PlantFitRefused)
                    self.loading = False
                    self._events.append(SlotEvent(False, kind, path, f"{type(exc).__name__}: {exc}"))
                    self._drop(model)
                continue
            with self._lock:
                self.loading = False
                try:
                    prepared = self.prepare(model)
                except ValueError as exc:
                    self.refused += 1
                    self._events.append(SlotEvent(False, kind, path, f"cannot build the controller for it: {exc}"))
                    self._drop(model)
                    continue
                cand = Candidate(model, kind, path, prepared)
                if self._ready is not None and self._ready.model is not model:
                    self._drop(self._ready.model)   # a ready one never taken: replaced by the newer
                self._ready = cand
                self._staged_rollback = False
                self._events.append(SlotEvent(True, kind, path, version=cand.version))
            # hold no reference while waiting: deferred, a model must never be released in this
            # thread (its session's destructor holds the interpreter's lock: the stall would land in
            # whichever tick runs meanwhile), so the worker's locals let go of it here - unless no
            # tick has drained the queue (RETIRED_MAX)
            model = cand = None
            self._release_excess()

    def _release_excess(self) -> None:
        """(Worker) deferred: release the oldest queued models beyond :data:`RETIRED_MAX` here,
        outside the lock (their destructors may take a millisecond)."""
        with self._lock:
            n = len(self._retired) - RETIRED_MAX
            if n <= 0:
                return
            # in place: the ticking thread pops from the end of this same list without the lock
            excess = self._retired[:n]
            del self._retired[:n]
            self.released += n
            self.released_off_tick += n
        del excess

    def _drop(self, model: InverseModel | None) -> None:
        """(Under the lock) a model this slot lets go of: deferred, queued for :meth:`after_tick`
        to release; otherwise released where the last reference goes."""
        if self.deferred and model is not None and model is not self.active.model:
            self._retired.append(model)

    # -- the tick (no allocation, no blocking beyond the lock's reference swap) -----------------
    def take_ready(self) -> Candidate | None:
        """The candidate to swap in now, once; None most ticks (and, deferred, until
        :meth:`after_tick` has warmed it)."""
        r = self._ready
        if r is None or (self.deferred and r.model is not self._warmed):
            return None
        with self._lock:
            cand, self._ready = self._ready, None
            if cand is not None and self.deferred and cand.model is not self._warmed:
                self._ready = cand   # replaced since the check above: warm the new one first
                return None
            self._warmed = None
            return cand

    def activated(self, cand: Candidate, previous_model: InverseModel) -> None:
        """The tick swapped ``cand`` in, replacing ``previous_model``. Deferred, the model that
        leaves the rollback place (after a rollback: the one rolled back from) is queued for
        :meth:`after_tick` instead of released here."""
        old = self.active
        if self.deferred:
            leaving = previous_model if self._staged_rollback else (None if self.previous is None else self.previous.model)
            if leaving is not None and leaving is not cand.model:
                self._retired.append(leaving)
        self.previous = Candidate(previous_model, old.kind, old.path) if not self._staged_rollback else None
        if self._staged_rollback:
            self.rollbacks += 1
            self._staged_rollback = False
        self.active = cand
        self.swaps += 1
        self._since_swap = 0
        self._bad_run = 0

    def note_tick(self, usable: bool) -> None:
        """Count the active model's prediction this tick; may stage an automatic rollback."""
        if self._since_swap >= WATCH_TICKS:
            return
        self._since_swap += 1
        self._bad_run = 0 if usable else self._bad_run + 1
        if self._bad_run >= ROLLBACK_AFTER:
            self._since_swap = WATCH_TICKS
            self.rollback(f"{ROLLBACK_AFTER} unusable predictions in a row right after the swap")

    def after_tick(self, query: InverseQuery) -> str:
        """Deferred mode: the swap's own work, at most one piece, in the ticking thread after the
        tick's command is out. Returns what it did: "released" (a model a swap let go: its last
        reference here, so its onnxruntime session is destroyed now), "warmed" (one prediction of
        the ready candidate at ``query``, the tick's own (n,) state and reference, so the weights
        are in this core's cache; its output is discarded and the swap resets the model), or ""
        (nothing to do: nearly every tick, no allocation). A candidate whose warm-up raises or is
        unusable is still marked warm: the swap's watch (:meth:`note_tick`) judges it."""
        if self._retired:
            self._retired.pop()   # the last reference: released here, between two ticks
            self.released += 1
            return "released"
        r = self._ready
        if r is None or r.model is self._warmed:
            return ""
        try:
            r.model.predict(query, self._warm_mean, self._warm_std)
        except Exception:  # noqa: BLE001 - a raising model is the watch's business after the swap
            pass
        self._warmed = r.model
        return "warmed"

    # -- the node's executor thread -------------------------------------------------------------
    def poll(self) -> list[SlotEvent]:
        """Finished requests since the last call (for logging and parameter bookkeeping)."""
        if not self._events:
            return []
        with self._lock:
            out, self._events = self._events, []
        return out

    def counters(self) -> dict:
        return {"model_swaps": self.swaps, "model_refused": self.refused, "model_released": self.released,
                "model_released_off_tick": self.released_off_tick,
                "model_refused_plant_fit": self.refused_plant_fit, "model_heap_trims": self.trims,
                "model_heap_trim_max_ms": round(self.trim_max_ms, 3), "model_rollbacks": self.rollbacks,
                "model_version": self.active.version, "model_dir": self.active.path, "model_kind": self.active.kind}

