"""Online-learning benchmark (issue 10, section 5): seconds per learner cycle, and control ticks
late or missed while new versions are swapped in, against a no-swap stretch of the same run.

1. Samples: an in-process lockstep run of the scenario's plant (``config/scenario_vgain.yaml``,
   pick-and-place, joint friction) with a payload the shipped model never saw, under the
   scheduled SVDKL controller, differenced as the trainer does.
2. Cycles: the samples fed to :class:`~dynlearn_ros.learning.online.OnlineLearner` in chunks of
   ``chunk`` (one trainer period at 1 kHz), a cycle after each: fit, held-out evaluation, export
   (composed graph, golden, validation, atomic publish); then, for each accepted version, what
   the controller side adds: load + validation + golden replay (``load_inverse_model``), the
   slot's check and the tuning build, and the swap itself (``swap_model``).
3. Ticks: a wall-clock 1 kHz loop (controller tick + plant step) with the real
   :class:`~dynlearn_ros.runtime.slot.ModelSlot`: every ``swap_every_s`` the next accepted version
   is requested, loaded in the slot's worker thread and swapped in between two ticks, as in the
   computed_torque node. Each tick is scheduled at the next 1 ms slot after the previous tick
   ended (a loop that fell behind re-anchors instead of counting every later tick late); a tick
   is over budget when its own compute time exceeds the period. Counted separately inside swap
   windows (from the request to 5 ms after the swap) and outside: the figure is the difference
   the swaps make, on a shared machine whose load sets both.
4. The realized-error sigma's cost: the median controller tick with it off and on.

The machine is shared: before each cycle a fixed probe (``PROBE_RUNS`` batch-1 evaluations of the
shipped model, the controller's own per-tick work) is timed, and each cycle is also reported as a
ratio to it, so runs under different loads can be compared (the same load slows both).

Training itself runs in the trainer's own process in the graph; here it is measured alone (2).
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dynlearn_ros.core.assembly import build_analytic, build_controller, build_tuning, builtin_reference
from dynlearn_ros.core.config import robot_context, validate
from dynlearn_ros.learning.online import OnlineConfig, OnlineLearner, StateDifferencer
from dynlearn_ros.paths import resolve_model_dir
from dynlearn_ros.runtime import shared_graph
from dynlearn_ros.runtime.loader import LOADER_PRIORITY, ProcessLoader
from dynlearn_ros.runtime.onnx_step import OnnxStep
from dynlearn_ros.runtime.registry import load_inverse_model
from dynlearn_ros.runtime.shared_graph import ParamStep
from dynlearn_ros.runtime.slot import (
    CONTROL_SWITCH_INTERVAL_S,
    PLANT_FIT_FACTOR,
    PLANT_FIT_ROWS,
    WORKER_NICE,
    ModelSlot,
    check_model,
    check_plant_fit,
)
from dynlearn_ros.scenarios.vgain import controller_params
from dynlearn_ros.scenarios.vgain_config import load_config
from dynlearn_ros.sim.plant import SimPlant


def _setup(payload_kg: float):
    cfg = load_config(None)
    p = {**controller_params(cfg, "c"), "reference": "pick_place", "residual_window_s": 0.1}
    config = validate(p, robot_context(cfg.robot))
    analytic = build_analytic(config)
    spec = cfg.spec
    model = load_inverse_model("svdkl", resolve_model_dir(config.model_dir), spec.joint_names)
    ctl = build_controller(config, model, analytic, builtin_reference(config, spec.home))
    plant = SimPlant(cfg.robot, dt=config.control_period_s, friction_viscous=cfg.friction_viscous,
                     friction_coulomb=cfg.friction_coulomb, coulomb_velocity_eps=cfg.coulomb_velocity_eps,
                     payload_kg=payload_kg)
    plant.reset(spec.home, np.zeros(spec.n))
    return cfg, config, spec, ctl, plant


def collect(payload_kg: float, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Lockstep samples (x (m, 3n), tau (m, n)) of ``seconds`` sim time under the shipped model."""
    cfg, config, spec, ctl, plant = _setup(payload_kg)
    n, dt = spec.n, config.control_period_s
    diff, xs, ys = StateDifferencer(n), [], []
    q, qd = np.zeros(n), np.zeros(n)
    try:
        for k in range(int(round(seconds / dt))):
            plant.state_into(q, qd)
            if k:
                s = diff.push(q, qd, k * dt, ctl.tau)
                if s is not None:
                    xs.append(s[0])
                    ys.append(s[1])
            ctl.step(q, qd, k * dt, 0.0)
            plant.step(ctl.tau)
    finally:
        plant.close()
    return np.asarray(xs), np.asarray(ys)


def _stats(v: list[float]) -> dict:
    a = np.asarray(v, dtype=float)
    if a.size == 0:
        return {"n": 0}
    return {"n": int(a.size), "median": float(np.median(a)), "p90": float(np.percentile(a, 90)),
            "max": float(a.max())}


#: batch-1 runs of the shipped model timed before each cycle (the load probe)
PROBE_RUNS = 200


def bench_cycles(x: np.ndarray, y: np.ndarray, chunk: int, out: Path,
                 learner_cfg: OnlineConfig | None = None) -> tuple[dict, list[str]]:
    """Per-cycle seconds of the learner and of the controller side of each accepted version,
    and the load probe before each (seconds for :data:`PROBE_RUNS` runs)."""
    cfg_run = _setup(0.0)
    config, spec, ctl = cfg_run[1], cfg_run[2], cfg_run[3]
    cfg_run[4].close()
    learner = OnlineLearner(resolve_model_dir(config.model_dir), out, learner_cfg or OnlineConfig())
    probe = learner.base_step
    rows, dirs = [], []
    for start in range(0, len(x), chunk):
        for xi, yi in zip(x[start:start + chunk], y[start:start + chunk], strict=True):
            learner.add(xi, yi)
        tp = time.perf_counter()
        for _ in range(PROBE_RUNS):
            probe.run()
        probe_s = time.perf_counter() - tp
        res = learner.cycle()
        if res is None:
            continue
        row = {"version": res.version, "accepted": res.accepted, "samples": res.samples, **res.seconds,
               "probe": probe_s}
        if res.accepted:
            t0 = time.perf_counter()
            model = load_inverse_model("svdkl", res.path, spec.joint_names, urdf=str(spec.urdf_path))
            t1 = time.perf_counter()
            check_model(model, spec.joint_names, spec.home)
            tuning = build_tuning(config, model)
            t2 = time.perf_counter()
            ctl.swap_model(model, tuning)
            t3 = time.perf_counter()
            row.update(load_validate=t1 - t0, check_prepare=t2 - t1, swap=t3 - t2)
            row["cycle_total"] = row["total"] + t3 - t0
            row["cycle_over_probe"] = row["cycle_total"] / probe_s
            dirs.append(res.path)
        rows.append(row)
    acc_all = [r for r in rows if r["accepted"]]
    acc = acc_all[1:]   # the first cycle also pays one-time imports (scipy, the features' constants)
    summary = {k: _stats([r[k] for r in acc]) for k in ("fit", "evaluate", "export", "load_validate",
                                                         "check_prepare", "swap", "cycle_total", "probe",
                                                         "cycle_over_probe")}
    return {"cycles": rows, "accepted": len(acc_all), "rejected": len(rows) - len(acc_all), "seconds": summary,
            "base_dir": str(learner.base_dir)}, dirs


#: the tick loop's arms: (thread switch interval s, the slot worker's nice value or None = the
#: priority of the thread that starts it, shared sessions, where a version is loaded: "process"
#: (runtime/loader.py) or "thread", the loader's priority for its loads (runtime/loader.py
#: LOADER_PRIORITIES), whether the request carries the plant check's samples to the loader).
#: Every arm runs the node's slot: its check (five predictions at home and the plant check on the
#: loop's recent steps, unless the loader ran it) and its ``trim_before_load`` (after a load in
#: this process only).
#: "node": as the computed_torque node runs since session 12 (``model_loader`` process, the
#: loader at LOADER_PRIORITY, the plant check in the loader, runtime/slot.py
#: CONTROL_SWITCH_INTERVAL_S); "process_nice0" / "process_nice19" / "process_idle": "node" with
#: the loader's loads at the controller's priority (session 11's) / at nice 19 / under SCHED_IDLE
#: (session 12's runs measured "node" with the loads at idle, the default then); "plant_in_worker": "node" with the
#: plant check in the slot's worker thread (session 11's node); "thread": the whole load in the
#: slot's worker thread (``model_loader`` thread, as sessions 9-10); "before": "thread" at
#: Python's 5 ms; "nice": "thread" with the worker at WORKER_NICE (measured, not taken: slot.py);
#: "per_version": "before" with a session per version (before session 8); "node_switch50us":
#: "node" at a 0.05 ms switch interval (session 12's trial of a shorter GIL hand-off)
TICK_ARMS = {"node": (CONTROL_SWITCH_INTERVAL_S, None, True, "process", LOADER_PRIORITY, True),
             "node_switch50us": (5e-5, None, True, "process", LOADER_PRIORITY, True),
             "process_nice0": (CONTROL_SWITCH_INTERVAL_S, None, True, "process", "normal", True),
             "process_nice19": (CONTROL_SWITCH_INTERVAL_S, None, True, "process", "nice19", True),
             "process_idle": (CONTROL_SWITCH_INTERVAL_S, None, True, "process", "idle", True),
             "plant_in_worker": (CONTROL_SWITCH_INTERVAL_S, None, True, "process", LOADER_PRIORITY, False),
             "thread": (CONTROL_SWITCH_INTERVAL_S, None, True, "thread", LOADER_PRIORITY, False),
             "before": (0.005, None, True, "thread", LOADER_PRIORITY, False),
             "nice": (CONTROL_SWITCH_INTERVAL_S, WORKER_NICE, True, "thread", LOADER_PRIORITY, False),
             "per_version": (0.005, None, False, "thread", LOADER_PRIORITY, False)}


def bench_ticks(dirs: list[str], payload_kg: float, seconds: float, swap_every_s: float,
                switch_interval_s: float = 0.005, shared: bool = True, worker_nice: int | None = None,
                loader: str = "thread", priority: str = LOADER_PRIORITY, plant_to_loader: bool = True) -> dict:
    """Wall-clock 1 kHz loop with slot swaps every ``swap_every_s``; lateness in and out of swaps.

    The slot runs deferred, as in the node: after each tick (after the plant step, which stands
    for the time the node waits for the next state) ``slot.after_tick`` may warm the ready
    candidate or release a model a swap let go; a slot skipped because that work (or anything
    else) ran past it is counted against the tick before it (``slots_skipped``). The loop runs
    with the interpreter's thread switch interval ``switch_interval_s`` (restored afterwards; the
    node's is runtime/slot.py CONTROL_SWITCH_INTERVAL_S, 0.2 ms, Python's default 5 ms; session 9
    measured the loading window 1.4-1.5x as often over budget as the no-swap stretch at 5 ms, at it
    with 0.2 ms).

    ``shared``: the online versions run on their structure's one session
    (runtime/shared_graph.py, the default of every reader); False: a session per version (built in
    the worker, released by ``after_tick``), as before session 8. The worker's stages (load,
    check, prepare) and the ticking thread's ``after_tick`` pieces are timed in wall and thread
    CPU time ("worker_stages", "after_tick_cpu_us"). ``worker_nice``: the slot worker's nice value
    (:data:`~dynlearn_ros.runtime.slot.WORKER_NICE` in the node), None: the loop's own priority.
    ``loader``: "process", each version is loaded and checked in a loader process and the worker
    binds its arrays (runtime/loader.py, the node's default since session 11; the loader is
    started and has loaded ``dirs[0]`` once before the loop, as the node's starts before its first
    tick; "loader" in the result: its counters and its own CPU per load), its loads at
    ``priority`` (runtime/loader.py LOADER_PRIORITIES), the plant check's samples sent with each
    request if ``plant_to_loader`` (the loader checks a hand-over's fit, as in the node);
    "thread", all of the load in the worker thread. The slot's check is the node's: five
    predictions at home, then the plant check (runtime/slot.py check_plant_fit, on the loop's
    recent steps) unless the loader ran it; the slot trims the heap before a load that follows
    one in this process (``trim_before_load``), as the node's does.

    Per part, "placebo": the same part's ticks shifted by 100, 120, ..., 900 ms (into the no-swap
    stretch between two swaps, the windows last < 100 ms), i.e. windows of the same lengths and
    the same clustering that no swap touches: their over-budget counts against the same
    expectation are the noise a part's count is judged against (:func:`summarize_rounds`)."""
    with (contextlib.nullcontext() if shared else shared_graph.per_version_sessions()):
        return _bench_ticks(dirs, payload_kg, seconds, swap_every_s, switch_interval_s, worker_nice,
                            loader, priority, plant_to_loader) | {"shared": shared, "loader_kind": loader,
                                                                  "loader_priority": priority,
                                                                  "plant_to_loader": plant_to_loader}


#: placebo shifts of a part's ticks (ms, with a swap every 1 s): :func:`bench_ticks`
PLACEBO_SHIFTS_MS = tuple(range(100, 901, 20))


def _bench_ticks(dirs: list[str], payload_kg: float, seconds: float, swap_every_s: float,
                 switch_interval_s: float, worker_nice: int | None, loader: str = "thread",
                 priority: str = LOADER_PRIORITY, plant_to_loader: bool = True) -> dict:
    cfg, config, spec, ctl, plant = _setup(payload_kg)
    urdf = str(spec.urdf_path)
    dt = config.control_period_s
    client = None
    plant_checks = {"worker": 0, "loader": 0}

    def samples():
        """The node's plant check inputs (computed_torque ``_plant_samples``)."""
        snap = ctl.residual.snapshot(PLANT_FIT_ROWS)
        return None if snap is None else (snap, ctl.schedule.sigma_n, dt, PLANT_FIT_FACTOR)

    if loader == "process":
        client = ProcessLoader(spec.joint_names, urdf, priority=priority)
        if dirs:
            client.load("svdkl", dirs[0])   # its start-up and first structure, before the loop

        def load_fn(k, p):
            return client.load(k, p, samples() if plant_to_loader else None)
    else:
        def load_fn(k, p):
            return load_inverse_model(k, p, spec.joint_names, urdf)

    def check_fn(m):
        """The node's check (computed_torque ``check``)."""
        check_model(m, spec.joint_names, spec.home)
        if client is not None and client.plant_checked(m):
            plant_checks["loader"] += 1
            return
        snap = ctl.residual.snapshot(PLANT_FIT_ROWS)
        check_plant_fit(m, snap, ctl.schedule.sigma_n, dt)
        plant_checks["worker"] += 1
    switch_before = sys.getswitchinterval()
    sys.setswitchinterval(switch_interval_s)
    n = spec.n
    # the worker's stages: (wall s, thread CPU s) per call, a refused load or check included
    stages: dict[str, list[tuple[float, float]]] = {"load": [], "check": [], "prepare": []}
    # when the worker finished each version (its prepare returned; the candidate is ready right
    # after), and when each tick's after_tick looked for a ready candidate (perf_counter s)
    finished_at: list[float] = []
    after_at: list[float] = []
    slot = ModelSlot(ctl.model, "svdkl", config.model_dir,
                     lambda k, p: _clocked(stages["load"], load_fn, k, p),
                     lambda m: _clocked(stages["check"], check_fn, m),
                     prepare=lambda m: _clocked(stages["prepare"], build_tuning, config, m, ends=finished_at), deferred=True,
                     worker_nice=worker_nice,
                     trim_before_load=lambda: client is None or client.last_inprocess)   # the node's _trim_due
    q, qd = np.zeros(n), np.zeros(n)
    late, missed, in_window, compute, swap_tick, loading, skipped, after = [], [], [], [], [], [], [], []
    after_s: dict[str, list[float]] = {"released": [], "warmed": []}
    after_cpu: dict[str, list[float]] = {"released": [], "warmed": []}
    window_until, requested_at, swaps, nreq = -1.0, None, 0, 0
    steps = int(round(seconds / dt))
    slot_t = time.perf_counter()
    try:
        for k in range(steps):
            while time.perf_counter() < slot_t:
                pass
            start = time.perf_counter()
            if k and k % int(round(swap_every_s / dt)) == 0 and dirs:
                slot.request("svdkl", dirs[nreq % len(dirs)])
                nreq += 1
                requested_at = start
                window_until = float("inf")
            cand = slot.take_ready()
            swap_tick.append(cand is not None)
            # the worker thread is loading / checking a requested version (request -> ready)
            loading.append(requested_at is not None and window_until == float("inf") and cand is None)
            if cand is not None:
                slot.activated(cand, ctl.swap_model(cand.model, cand.prepared))
                swaps += 1
                window_until = start + 0.005
            plant.state_into(q, qd)
            ctl.step(q, qd, k * dt, 0.0)
            end = time.perf_counter()      # the controller's share: swap + tick (the plant is not timed)
            plant.step(ctl.tau)
            ta, tc = time.perf_counter(), time.thread_time()
            after_at.append(ta)
            did = slot.after_tick(ctl.query)   # the deferred swap work, after the "command"
            if did:
                after_s[did].append(time.perf_counter() - ta)
                after_cpu[did].append(time.thread_time() - tc)
            after.append(did)
            late.append(start - slot_t)
            missed.append(end - start > dt)
            slot_t += dt
            now = time.perf_counter()
            skip = 0
            if now > slot_t:     # behind (plant step included): the next slot after now
                skip = int(np.ceil((now - slot_t) / dt))
                slot_t += skip * dt
            skipped.append(skip)
            compute.append(end - start)
            in_window.append(requested_at is not None and start <= window_until)
            if start > window_until:
                requested_at = None
    finally:
        slot.close()
        plant.close()
        sys.setswitchinterval(switch_before)
        if client is not None:
            client.close()
    loader_rec = None if client is None else {**client.counters(),
                                              "loader_cpu_ms": _stats([1e3 * c for c in client.loader_cpu_s[1:]])}
    late_a, missed_a, win = np.asarray(late), np.asarray(missed), np.asarray(in_window)
    skipped_a, after_a = np.asarray(skipped), np.asarray(after)
    at_swap = np.asarray(swap_tick)
    after_swap = np.zeros_like(at_swap)      # the tick after each swap (the new model's first full tick)
    after_swap[1:] = at_swap[:-1]
    comp = np.asarray(compute)

    p0 = float(missed_a[~win].mean()) if (~win).any() else 0.0
    period = int(round(swap_every_s / dt))

    def placebo(mask):
        """(over budget, expected) of the part's ticks shifted into the no-swap stretch, per shift;
        shifted ticks that land in a swap window (a window longer than the shift) are left out."""
        out = []
        for s_ms in PLACEBO_SHIFTS_MS:
            sh = int(round(s_ms * 1e-3 / dt)) % max(period, 1)
            pm = np.roll(mask, sh) & ~win
            out.append((int(missed_a[pm].sum()), float(pm.sum()) * p0))
        return out

    after_t = np.asarray(after_at)

    def placebo_in_time(events):
        """(over budget, expected) per shift of the ticks that an event at each time of ``events``
        + the shift would fall in: the first tick whose after_tick looks at or after it, as the
        tick the worker finishes in is the first whose after_tick finds the candidate ready."""
        out = []
        for s_ms in PLACEBO_SHIFTS_MS:
            idx = np.searchsorted(after_t, np.asarray(events) + s_ms * 1e-3, side="left")
            idx = idx[idx < len(after_t)]
            idx = idx[~win[idx]]
            out.append((int(missed_a[idx].sum()), float(len(idx)) * p0))
        return out

    def part(mask, placebo_of=None):
        m = int(mask.sum())
        return {"ticks": m, "expected_over_budget": m * p0,
                "placebo": placebo(mask) if placebo_of is None else placebo_in_time(placebo_of), "late_gt_0.1ms": int((late_a[mask] > 1e-4).sum()),
                "over_budget": int(missed_a[mask].sum()),
                "over_budget_fraction": float(missed_a[mask].mean()) if m else 0.0,
                "slots_skipped": int(skipped_a[mask].sum()),
                "ticks_followed_by_a_skip_fraction": float((skipped_a[mask] > 0).mean()) if m else 0.0,
                "compute_us_p50": 1e6 * float(np.median(comp[mask])) if m else 0.0,
                "compute_us_p99": 1e6 * float(np.percentile(comp[mask], 99)) if m else 0.0}

    return {"seconds": seconds, "swap_every_s": swap_every_s, "switch_interval_s": switch_interval_s,
            "worker_nice": worker_nice, "worker_priority": slot.worker_priority, "loader": loader_rec,
            "swaps": swaps, "requests": nreq, "plant_checks": plant_checks,
            "heap_trims": slot.trims, "heap_trim_max_ms": slot.trim_max_ms,
            "refused": slot.refused, "during_swaps": part(win), "no_swap": part(~win),
            # the swap window split: the worker loading (same process: CPU and the GIL) and the
            # swap itself (the tick that swaps the reference, and the one after it)
            "loading": part(np.asarray(loading)), "swap_tick": part(at_swap), "tick_after_swap": part(after_swap),
            # the ticks whose after_tick warmed a candidate / released a model (their skips: the
            # deferred work ran past the next slot)
            # the tick the worker finishes in is chosen by a moment in time, so a long tick (the
            # load's, or any preemption) is the likelier to hold it: its placebos are moments, not
            # tick indices (placebo_in_time)
            "warm_tick": part(after_a == "warmed", placebo_of=finished_at), "release_tick": part(after_a == "released"),
            "worker_finished_in_warm_tick": int(np.isin(np.searchsorted(after_t, np.asarray(finished_at), side="left"),
                                                        np.flatnonzero(after_a == "warmed")).sum()),
            "after_tick_us": {k: _stats([1e6 * x for x in v]) for k, v in after_s.items()},
            "after_tick_cpu_us": {k: _stats([1e6 * x for x in v]) for k, v in after_cpu.items()},
            # the worker thread's stages per swap: wall and thread CPU (ms)
            "worker_stages": {st: {"wall_ms": _stats([1e3 * w for w, _ in v]), "cpu_ms": _stats([1e3 * c for _, c in v])}
                              for st, v in stages.items()}}


#: the parts of a tick loop compared with its no-swap stretch (bench_ticks' keys)
TICK_PARTS = ("during_swaps", "loading", "warm_tick", "swap_tick", "tick_after_swap", "release_tick")


def summarize_rounds(rounds: list[dict]) -> dict:
    """Per part of :data:`TICK_PARTS`, over the rounds (one tick loop each): the over-budget
    fraction and its ratio to the same round's no-swap fraction, the median compute and its ratio
    (median, min, max over rounds). A ratio of 1 is "no more over budget around swaps than
    elsewhere in the same minute".

    The verdict per part ("pooled"): its over-budget ticks summed over the rounds against the
    count the no-swap fraction predicts for as many ticks (sum over rounds of ticks x the round's
    no-swap fraction), "ratio"; the same for each placebo shift of the part (:func:`bench_ticks`),
    "placebo_p50" / "placebo_p95"; "p_value" the share of placebo shifts whose ratio is at least
    the part's; "within_noise": ratio <= placebo_p95. Why placebos and not a binomial test: over-budget
    ticks come in bursts (the load's), so the ticks of one window are not independent; windows of the
    same lengths that no swap touches, in the same loops, have exactly that clustering."""
    out = {"rounds": len(rounds),
           "no_swap_over_budget_fraction": _stats([r["no_swap"]["over_budget_fraction"] for r in rounds])}
    for part in TICK_PARTS:
        frac = [r[part]["over_budget_fraction"] for r in rounds if r[part]["ticks"]]
        ratio = [r[part]["over_budget_fraction"] / r["no_swap"]["over_budget_fraction"] for r in rounds
                 if r[part]["ticks"] and r["no_swap"]["over_budget_fraction"] > 0]
        p50 = [r[part]["compute_us_p50"] / r["no_swap"]["compute_us_p50"] for r in rounds
               if r[part]["ticks"] and r["no_swap"]["compute_us_p50"] > 0]
        out[part] = {"ticks": sum(r[part]["ticks"] for r in rounds),
                     "over_budget_fraction": _minmax(frac), "over_budget_ratio": _minmax(ratio),
                     "compute_p50_ratio": _minmax(p50), "pooled": _pooled(rounds, part)}
    return out


def _pooled(rounds: list[dict], part: str) -> dict:
    """:func:`summarize_rounds`' verdict of one part over the rounds."""
    rs = [r[part] for r in rounds if "placebo" in r[part]]
    obs, exp = sum(p["over_budget"] for p in rs), sum(p["expected_over_budget"] for p in rs)
    if not rs or exp <= 0:
        return {"n": 0}
    shifts = len(rs[0]["placebo"])
    pl = []
    for i in range(shifts):
        o, e = sum(p["placebo"][i][0] for p in rs), sum(p["placebo"][i][1] for p in rs)
        if e > 0:
            pl.append(o / e)
    ratio = obs / exp
    pl_a = np.asarray(pl)
    p95 = float(np.percentile(pl_a, 95)) if pl else float("nan")
    return {"over_budget": obs, "expected": exp, "ratio": ratio, "placebo_n": len(pl),
            "placebo_p50": float(np.median(pl_a)) if pl else float("nan"), "placebo_p95": p95,
            "p_value": float((pl_a >= ratio).mean()) if pl else float("nan"),
            "within_noise": bool(pl) and ratio <= p95}


def _minmax(v: list[float]) -> dict:
    if not v:
        return {"n": 0}
    return {"n": len(v), "median": float(np.median(v)), "min": float(min(v)), "max": float(max(v))}


def _clocked(into: list, fn, *args, ends: list | None = None):
    """fn(*args), appending (wall s, thread CPU s) to ``into`` (also when it raises) and, given
    ``ends``, the perf_counter time it returned at to ``ends``."""
    w, c = time.perf_counter(), time.thread_time()
    try:
        return fn(*args)
    finally:
        into.append((time.perf_counter() - w, time.thread_time() - c))
        if ends is not None:
            ends.append(time.perf_counter())


def swap_breakdown(dirs: list[str], reps: int = 6) -> dict:
    """A swap's pieces timed alone, off the tick loop (wall and thread CPU, ms; medians over
    ``reps`` loads alternating over ``dirs``), with shared sessions and with a session per version:
    parse + scan of the file, the step (session build, or the cached session and a binding),
    the whole load (``load_inverse_model``: metadata, step, golden replay, warm-up), the check,
    and the release of the version loaded before (its last reference dropped)."""
    from dynlearn_ros.runtime.validate import scan_initializers

    cfg = load_config(None)
    spec = cfg.spec
    out = {}
    for arm in ("shared", "per_version"):
        rec: dict[str, list[tuple[float, float]]] = {k: [] for k in ("parse_scan", "step", "load", "check", "release")}
        with (contextlib.nullcontext() if arm == "shared" else shared_graph.per_version_sessions()):
            shared_graph.clear_cache()
            prev = load_inverse_model("svdkl", dirs[0], spec.joint_names, urdf=str(spec.urdf_path))
            for i in range(reps):
                d = Path(dirs[(i + 1) % len(dirs)]) / "model.onnx"
                proto = _clocked(rec["parse_scan"], scan_initializers, d)
                step = _clocked(rec["step"], ParamStep, proto) if arm == "shared" else _clocked(rec["step"], OnnxStep, d)
                del step, proto
                model = _clocked(rec["load"], load_inverse_model, "svdkl", d.parent, spec.joint_names, str(spec.urdf_path))
                _clocked(rec["check"], check_model, model, spec.joint_names, spec.home)
                _clocked(rec["release"], prev.__dict__.clear)   # the predictor's last references
                prev = model
        out[arm] = {k: {"wall_ms": 1e3 * float(np.median([w for w, _ in v])),
                        "cpu_ms": 1e3 * float(np.median([c for _, c in v]))} for k, v in rec.items()}
    shared_graph.clear_cache()
    return out


def bench_residual_cost(ticks: int = 3000, repeats: int = 2) -> dict:
    """Median controller tick (us) of the scheduled SVDKL controller with the realized-error sigma
    off and on (lockstep, 5 kg), alternating ``repeats`` times (the same load for both)."""
    cfg = load_config(None)
    spec = cfg.spec
    out: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(repeats):
        for key, window in (("off", 0.0), ("on", 0.1)):
            p = {**controller_params(cfg, "c"), "reference": "pick_place", "residual_window_s": window}
            config = validate(p, robot_context(cfg.robot))
            analytic = build_analytic(config)
            model = load_inverse_model("svdkl", resolve_model_dir(config.model_dir), spec.joint_names)
            ctl = build_controller(config, model, analytic, builtin_reference(config, spec.home))
            plant = SimPlant(cfg.robot, dt=config.control_period_s, payload_kg=cfg.payload_kg)
            plant.reset(spec.home, np.zeros(spec.n))
            q, qd, ts = np.zeros(spec.n), np.zeros(spec.n), []
            try:
                for k in range(ticks):
                    plant.state_into(q, qd)
                    t0 = time.perf_counter()
                    ctl.step(q, qd, k * config.control_period_s, 0.0)
                    ts.append(time.perf_counter() - t0)
                    plant.step(ctl.tau)
            finally:
                plant.close()
            out[key].append(1e6 * float(np.median(ts)))
    return {"ticks": ticks, "median_tick_us": out}


def bench_model_cost(base_dir: str, version_dir: str, runs: int = 2000, repeats: int = 3) -> dict:
    """Median batch-1 run (us) of the shipped graph and of an online version (base + correction
    with the payload regressor), the latter in a session of its own and on the shared session with
    its parameters as inputs (runtime/shared_graph.py), alternating ``repeats`` times (the same
    load for all)."""
    from dynlearn_ros.runtime.validate import scan_initializers

    out: dict[str, list[float]] = {"shipped": [], "online_version": [], "online_version_shared": []}
    steps = {"shipped": OnnxStep(Path(base_dir) / "model.onnx"), "online_version": OnnxStep(Path(version_dir) / "model.onnx"),
             "online_version_shared": ParamStep(scan_initializers(Path(version_dir) / "model.onnx"))}
    for _ in range(repeats):
        for key, st in steps.items():
            ts = np.empty(runs)
            for i in range(runs):
                t0 = time.perf_counter()
                st.run()
                ts[i] = time.perf_counter() - t0
            out[key].append(1e6 * float(np.median(ts)))
    return {"runs": runs, "median_run_us": out}


def run_bench(payload_kg: float = 12.0, collect_s: float = 6.0, chunk: int = 500, tick_s: float = 10.0,
              swap_every_s: float = 1.0, learner_cfg: OnlineConfig | None = None,
              switch_interval_s: float | None = None, rounds: int = 1, arms: tuple[str, ...] = ("node",)) -> dict:
    """The whole bench (module docstring). Each of ``rounds`` runs one tick loop of ``tick_s`` per
    arm of :data:`TICK_ARMS`, in turn (the same minutes' load): "ticks_rounds" {arm: [bench_ticks
    ...]} and "ticks_summary" {arm: summarize_rounds(...)}, plus the swap's pieces timed alone
    ("swap_breakdown"). "ticks" is the first arm's first round (the figure of earlier sessions).
    ``switch_interval_s``: overrides every arm's switch interval."""
    unknown = [a for a in arms if a not in TICK_ARMS]
    if unknown or not arms:
        raise ValueError(f"unknown tick arms {unknown} (known: {', '.join(TICK_ARMS)})")
    learner_cfg = learner_cfg or OnlineConfig()
    x, y = collect(payload_kg, collect_s)
    with tempfile.TemporaryDirectory(prefix="bench-online-") as tmp:
        cycles, dirs = bench_cycles(x, y, chunk, Path(tmp), learner_cfg)
        pair = dirs[-2:] if len(dirs) >= 2 else dirs
        runs: dict[str, list[dict]] = {a: [] for a in arms}
        for _ in range(max(1, rounds)):
            for arm in arms:
                si, nice, shared, where, prio, plant_there = TICK_ARMS[arm]
                runs[arm].append(bench_ticks(pair, payload_kg, tick_s, swap_every_s,
                                             si if switch_interval_s is None else switch_interval_s,
                                             shared=shared, worker_nice=nice, loader=where, priority=prio,
                                             plant_to_loader=plant_there) | {"arm": arm})
        breakdown = swap_breakdown(pair) if pair else {}
        model_cost = bench_model_cost(cycles["base_dir"], dirs[-1]) if dirs else {}
    return {"payload_kg": payload_kg, "samples": len(x), "chunk": chunk, "probe_runs": PROBE_RUNS,
            "learner": dataclasses.asdict(learner_cfg), "cycles": cycles, "ticks": runs[arms[0]][0],
            "ticks_rounds": runs, "ticks_summary": {a: summarize_rounds(v) for a, v in runs.items()},
            "swap_breakdown": breakdown, "model_cost": model_cost, "residual_sigma_cost": bench_residual_cost()}
