"""The model slot: a load in the worker thread, one swap between two ticks, refusals (corrupt
ONNX, wrong joints, a model emitting NaN) that leave the running model, manual and automatic
rollback. Real models (models/svdkl_iiwa_sim through onnxruntime), a real controller."""

import json
import shutil
import time

import numpy as np
import pytest

from dynlearn_ros.core.assembly import build_analytic, build_controller, build_tuning, builtin_reference
from dynlearn_ros.core.config import robot_context, validate
from dynlearn_ros.core.control import Mode
from dynlearn_ros.core.inverse_model import InverseModel
from dynlearn_ros.paths import models_dir, resolve_model_dir
from dynlearn_ros.runtime.registry import load_inverse_model
from dynlearn_ros.runtime.slot import ROLLBACK_AFTER, ModelRefused, ModelSlot, check_model

CTX = robot_context("iiwa")
SPEC = CTX.spec
N = CTX.n
SVDKL = models_dir() / "svdkl_iiwa_sim"


class NanModel(InverseModel):
    """A model whose predictions are NaN from its ``bad_from``-th call on (a broken export)."""

    kind = "nan"

    def __init__(self, bad_from=0):
        super().__init__(SPEC.joint_names)
        self.calls, self.bad_from = 0, bad_from

    def predict(self, query, mean_out, std_out):
        self.calls += 1
        mean_out[:] = np.nan if self.calls > self.bad_from else 0.0
        std_out[:] = 1.0
        return True


class Loop:
    """A controller ticking at a hold reference at home with a slot, as the node does."""

    def __init__(self, extra_models=None, deferred=False):
        self.cfg = validate({"reference": "hold"}, CTX)
        self.analytic = build_analytic(self.cfg)
        self.ctl = build_controller(self.cfg, self.analytic, self.analytic, builtin_reference(self.cfg, SPEC.home))
        self.extra = extra_models or {}
        self.slot = ModelSlot(self.analytic, "analytic", "", self.load,
                              lambda m: check_model(m, SPEC.joint_names, SPEC.home),
                              prepare=lambda m: build_tuning(self.cfg, m), deferred=deferred)
        self.k = 0
        self.phase = "idle"   # "tick" inside a tick, "after" inside slot.after_tick
        self.after = []       # what each after_tick did
        self.swapped_at = []
        self.modes = []

    def load(self, kind, path):
        if kind in self.extra:
            return self.extra[kind]
        return load_inverse_model(kind, resolve_model_dir(path), SPEC.joint_names)

    def tick(self):
        self.phase = "tick"
        cand = self.slot.take_ready()
        if cand is not None:
            self.slot.activated(cand, self.ctl.swap_model(cand.model, cand.prepared))
            self.swapped_at.append(self.k)
        mode = self.ctl.step(SPEC.home, np.zeros(N), self.k * 1e-3, 0.0)
        self.slot.note_tick(mode is not Mode.MODEL_FALLBACK)
        self.modes.append(mode)
        self.k += 1
        if self.slot.deferred:   # as the node: after the tick's command is out
            self.phase = "after"
            self.after.append(self.slot.after_tick(self.ctl.query))
        self.phase = "idle"
        return mode

    def wait_events(self, count=1, timeout=30.0):
        events, end = [], time.monotonic() + timeout
        while len(events) < count and time.monotonic() < end:
            self.tick()
            events += self.slot.poll()
            time.sleep(0.001)
        return events


@pytest.fixture
def loop():
    lp = Loop({"nan": NanModel()})
    yield lp
    lp.slot.close()


def test_load_in_worker_then_one_swap_between_two_ticks(loop):
    loop.slot.request("svdkl", "svdkl_iiwa_sim")
    ev = loop.wait_events()   # ticks continue while the worker loads
    assert ev and ev[0].ok and ev[0].kind == "svdkl", ev
    for _ in range(5):
        loop.tick()
    assert len(loop.swapped_at) == 1 and loop.slot.swaps == 1
    assert loop.ctl.model.kind == "svdkl" and loop.slot.active.path == "svdkl_iiwa_sim"
    assert loop.slot.previous.model is loop.analytic
    # sigma bounds of the new model reached the schedule with the swap
    bounds = loop.ctl.model.noise_and_signal_std()
    if bounds is not None:
        np.testing.assert_allclose(loop.ctl.schedule.sigma_f, np.asarray(bounds[1]).reshape(N))
    # rollback brings the analytic model back at the next tick
    assert loop.slot.rollback()
    loop.tick()
    assert loop.ctl.model is loop.analytic and loop.slot.rollbacks == 1 and loop.slot.swaps == 2


def test_deferred_slot_warms_before_and_releases_after_the_swap_tick_in_the_ticking_thread():
    # deferred mode (the node's): the ready candidate is swapped in only after one warm-up
    # prediction in the ticking thread after a tick, and the model a swap lets go is released in
    # a later after_tick, never in the swap tick (its session's destructor holds the
    # interpreter's lock for ~0.4-0.9 ms). Three swaps: the third pushes the first out of the
    # rollback place.
    import threading

    events = []   # (what, model id, phase, thread)

    class Tracked(NanModel):
        def __init__(self, tag):
            super().__init__(bad_from=10**9)
            self.tag = tag

        def predict(self, query, mean_out, std_out):
            events.append(("predict", self.tag, lp.phase, threading.current_thread().name))
            return super().predict(query, mean_out, std_out)

        def __del__(self):
            events.append(("del", self.tag, lp.phase, threading.current_thread().name))

    lp = Loop(deferred=True)
    try:
        made = iter(range(3))
        lp.slot.loader = lambda kind, path: Tracked(next(made))
        lp.slot.check = lambda m: None   # the golden check runs in the worker: not what is tested
        for i in range(3):
            lp.slot.request("tracked", f"v{i}")
            ev = lp.wait_events()
            assert ev and ev[0].ok, ev
            for _ in range(3):
                lp.tick()
            assert lp.slot.swaps == i + 1 and lp.ctl.model.tag == i
        main = threading.current_thread().name
        for tag in range(3):
            mine = [e for e in events if e[1] == tag and e[0] == "predict"]
            # its first prediction ever: the warm-up, after a tick, in the ticking thread
            assert mine[0][2:] == ("after", main), mine[:2]
            assert mine[1][2] == "tick", mine[:2]
        # model 0 left the rollback place at the third swap: released in after_tick of the ticking
        # thread (not in the swap tick, not in the worker)
        assert [e for e in events if e[0] == "del"] == [("del", 0, "after", main)], events
        # released: the analytic model (out of the rollback place at the 2nd swap; the controller
        # still holds it as its fallback) and model 0
        assert lp.slot.released == 2 and lp.slot.counters()["model_released"] == 2
        assert lp.after.count("warmed") == 3 and lp.after.count("released") == 2
        assert lp.slot.previous.model.tag == 1
        # a rollback is warmed too, then the one rolled back from is released after the swap
        assert lp.slot.rollback()
        lp.tick()
        assert lp.ctl.model.tag == 2, "a rollback candidate is taken only once warmed"
        lp.tick()
        assert lp.ctl.model.tag == 1 and lp.slot.rollbacks == 1
        lp.tick()
        assert [e for e in events if e[0] == "del"] == [("del", 0, "after", main), ("del", 2, "after", main)], events[-3:]
    finally:
        lp.slot.close()


def _copy(tmp_path, name):
    dst = tmp_path / name
    shutil.copytree(SVDKL, dst)
    return dst


def test_failing_models_are_refused_and_the_running_one_stays(loop, tmp_path):
    corrupt = _copy(tmp_path, "corrupt")
    (corrupt / "model.onnx").write_bytes(b"not an onnx file" * 10)
    wrong = _copy(tmp_path, "wrong_joints")
    meta = json.loads((wrong / "metadata.json").read_text())
    meta["joint_names"] = [f"j{i}" for i in range(N)]
    (wrong / "metadata.json").write_text(json.dumps(meta))
    loop.slot.request("svdkl", "svdkl_iiwa_sim")
    assert loop.wait_events()[0].ok
    loop.tick()
    running = loop.ctl.model
    for kind, path in (("svdkl", str(corrupt)), ("svdkl", str(wrong)), ("nan", "-"),
                       ("svdkl", str(tmp_path / "missing"))):
        loop.slot.request(kind, path)
        ev = loop.wait_events()
        assert ev and not ev[0].ok and ev[0].reason, (path, ev)
        for _ in range(3):
            loop.tick()
        assert loop.ctl.model is running, path
    assert loop.slot.refused == 4 and loop.slot.swaps == 1
    assert loop.ctl.mode is Mode.HOLD or loop.ctl.mode is Mode.NORMAL


def test_nan_model_is_refused_by_the_golden_check():
    with pytest.raises(ModelRefused, match="unusable"):
        check_model(NanModel(), SPEC.joint_names, SPEC.home)


def test_automatic_rollback_after_consecutive_unusable_predictions():
    # passes the 5-prediction check, then emits NaN: the controller falls back each tick and
    # the slot rolls back after ROLLBACK_AFTER ticks in a row
    lp = Loop({"late_nan": NanModel(bad_from=5)})
    try:
        lp.slot.request("late_nan", "-")
        assert lp.wait_events()[0].ok
        for _ in range(ROLLBACK_AFTER + 2):
            lp.tick()
        first = lp.swapped_at[0]   # the swap tick already predicts NaN
        modes = lp.modes[first:]
        assert modes[:ROLLBACK_AFTER] == [Mode.MODEL_FALLBACK] * ROLLBACK_AFTER
        assert modes[ROLLBACK_AFTER] is Mode.NORMAL and lp.swapped_at[1] == first + ROLLBACK_AFTER
        assert lp.ctl.model is lp.analytic and lp.slot.rollbacks == 1
        assert any(e.rollback and "unusable predictions in a row" in e.reason for e in lp.slot.poll())
    finally:
        lp.slot.close()


def test_no_tick_to_drain_the_queue_the_worker_bounds_it():
    """Deferred: models a swap lets go wait for the ticking thread to release them. A controller
    that does not tick (refusing a second source, no state yet) never drains that queue: a soak
    queued all 74 announced models (+2.7 MB/min). Ten requests with no tick: every model but the
    ready one is let go, the queue keeps RETIRED_MAX, the worker released the rest (each model's
    destructor ran in the worker, none is kept alive elsewhere). Then ticks resume: they take the
    ready one and drain the queue, and nothing more is released off the tick."""
    import gc
    import threading

    from dynlearn_ros.runtime.slot import RETIRED_MAX

    alive: set[int] = set()
    released_in: dict[int, str] = {}

    class Tracked(NanModel):
        def __init__(self, tag):
            super().__init__(bad_from=10**9)
            self.tag = tag
            alive.add(tag)

        def __del__(self):
            alive.discard(self.tag)
            released_in[self.tag] = threading.current_thread().name

    lp = Loop(deferred=True)
    try:
        made = iter(range(100))
        lp.slot.loader = lambda kind, path: Tracked(next(made))
        lp.slot.check = lambda m: None
        for i in range(10):
            lp.slot.request("tracked", f"v{i}")
            end = time.monotonic() + 30
            events = []
            while not events and time.monotonic() < end:   # no tick: only the worker runs
                events = lp.slot.poll()
                time.sleep(0.001)
            assert events and events[0].ok, events
        gc.collect()
        # 10 loaded: 1 ready, 9 let go; of those RETIRED_MAX still queued, 9 - RETIRED_MAX released
        assert len(lp.slot._retired) == RETIRED_MAX
        assert lp.slot.released_off_tick == 9 - RETIRED_MAX == lp.slot.counters()["model_released_off_tick"]
        assert alive == {9} | {5, 6, 7, 8}, alive   # the ready one and the queued four
        assert all(released_in[t] == "model-slot" for t in range(9 - RETIRED_MAX)), released_in
        for _ in range(2 + RETIRED_MAX + 3):   # warm, swap, then one release per tick
            lp.tick()
        assert lp.ctl.model.tag == 9 and lp.slot.swaps == 1
        assert lp.slot._retired == [] and lp.slot.released_off_tick == 9 - RETIRED_MAX
        assert alive == {9}, alive
    finally:
        lp.slot.close()


def _thread_nice_during_load(deferred, worker_nice):
    """The nice value and policy the slot's worker thread had while it loaded (read in the loader)."""
    import os
    import threading

    seen = {}

    def load(kind, path):
        tid = threading.get_native_id()
        seen.update(nice=os.getpriority(os.PRIO_PROCESS, tid), policy=os.sched_getscheduler(0))
        raise ModelRefused("only looked")

    slot = ModelSlot(NanModel(), "nan", "", load, lambda m: None, deferred=deferred, worker_nice=worker_nice)
    slot.request("x", "y")
    t_end = time.monotonic() + 30.0
    while slot.refused == 0 and time.monotonic() < t_end:
        time.sleep(0.01)
    slot.close()
    assert slot.refused == 1
    return seen, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_a_slot_worker_asked_to_runs_below_the_ticking_thread_and_by_default_does_not():
    """Asked to (worker_nice, deferred slots only), the worker lowers its own thread to that nice
    value and the thread that ticks keeps its priority; the default (None, the node's) and a plain
    slot's worker (the predictor's) keep the priority they were started with; lowering never raises."""
    from dynlearn_ros.runtime.slot import WORKER_NICE, lower_this_thread

    seen, mine = _thread_nice_during_load(True, WORKER_NICE)
    assert seen["nice"] == max(WORKER_NICE, mine) and seen["policy"] == 0   # SCHED_OTHER
    import os
    import threading
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine
    assert ModelSlot(NanModel(), "nan", "", None, None, deferred=True).worker_nice is None
    for deferred, nice in ((False, WORKER_NICE), (True, None)):
        seen, mine = _thread_nice_during_load(deferred, nice)
        assert seen["nice"] == mine, (deferred, nice)
    # a value above the thread's priority (a lower nice) is not taken: it only ever lowers
    out: dict = {}

    def probe():
        out["first"] = lower_this_thread(15)
        out["second"] = lower_this_thread(5)

    t = threading.Thread(target=probe)
    t.start()
    t.join()
    assert out["first"].get("nice") == max(15, mine) and out["second"].get("nice") == max(15, mine), out


def test_a_deferred_worker_started_from_a_real_time_thread_leaves_that_policy():
    """Under rt_priority (chrt -f on the controller) the thread that starts the worker is
    SCHED_FIFO and the worker inherits it; at the ticking thread's priority a load would run ahead
    of ticks on its core. The worker of a deferred slot leaves it for SCHED_OTHER even when no
    worker_nice is asked; the starting thread keeps its policy."""
    import os
    import threading

    out: dict = {}

    def run():
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        except PermissionError:
            out["skip"] = True
            return
        try:
            out["seen"], out["nice"] = _thread_nice_during_load(True, None)
            out["mine"] = os.sched_getscheduler(0)
        finally:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if out.get("skip"):
        pytest.skip("SCHED_FIFO is not permitted here")
    assert out["mine"] == os.SCHED_FIFO, out
    assert out["seen"]["policy"] == os.SCHED_OTHER and out["seen"]["nice"] == out["nice"], out


def test_a_trim_predicate_is_asked_before_each_load_and_trims_only_when_it_says_so():
    """``trim_before_load`` as a callable (the node: after a load in its own process only,
    runtime/loader.py ``last_inprocess``): asked as the worker takes each request, before the
    load; a trim only where it answered True."""
    from dynlearn_ros.runtime.memory import trim_available

    if not trim_available():
        pytest.skip("no malloc_trim in this C library")
    answers = [True, False, False, True]
    asked, loaded = [], []
    cfg = validate({"reference": "hold"}, CTX)
    analytic = build_analytic(cfg)

    def due():
        asked.append(len(loaded))
        return answers[len(asked) - 1]

    def load(kind, path):
        loaded.append(path)
        return analytic

    slot = ModelSlot(analytic, "analytic", "", load, lambda m: None, trim_before_load=due)
    try:
        for i, _ in enumerate(answers):
            slot.request("analytic", f"p{i}")
            deadline = time.monotonic() + 60.0
            while len(slot.poll()) == 0:
                assert time.monotonic() < deadline
                time.sleep(0.001)
        # asked once per request, each time before that request's load
        assert asked == [0, 1, 2, 3] and loaded == ["p0", "p1", "p2", "p3"]
        assert slot.trims == 2, slot.trims
    finally:
        slot.close()
