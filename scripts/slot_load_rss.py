"""Does the controller's model swap grow the process, and does ``malloc_trim`` bound it?
(docs/safety.md, "Memory, seventh session".)

    PYTHONPATH=<tree> .venv/bin/python scripts/slot_load_rss.py [N] [--trim MODE] [--json PATH]
    MALLOC_ARENA_MAX=2 PYTHONPATH=<tree> .venv/bin/python scripts/slot_load_rss.py ...

Swaps ``--model-dir`` (default models/svdkl_iiwa_sim, the soak's model) in N times (default
600; the 24-minute soak loaded 597) the way the computed_torque node does since the deferred
slot: :class:`ModelSlot` with ``deferred=True``; its worker thread loads (``load_inverse_model``
with the iiwa URDF) and checks (``check_model`` at home, 1 ms) each request; this script's main
thread plays the ticking thread at ~1 kHz: each tick predicts with the active model, takes a
ready candidate and activates it (the replaced model becomes the rollback target, the one before
it is queued for release), then calls ``after_tick`` - which warms the ready candidate or
releases a retired model (its onnxruntime session destroyed in the ticking thread, as in the
node). The next request goes out once the swap's release is done.

``--trim`` (glibc ``malloc_trim(0)``, :mod:`dynlearn_ros.runtime.memory`):
  none      (default) never;
  release   in the ticking thread right after ``after_tick`` released a model;
  worker    in the worker thread before each load (the loader wraps it): after the previous
            swap's release, off the ticking thread.
Prints RSS and anonymous RSS (MB = 2^20 bytes; the anonymous part, /proc/self/status RssAnon, is the
one the slope is fitted to: the whole RSS also moves when the kernel evicts the libraries' file
pages under memory pressure elsewhere) and threads every ``--every`` loads; at the end the
least-squares slope of the anonymous RSS over loads ``--warmup``..N in kB per load with its
standard error (from the residuals), and the trim durations (median, max, ms). No ROS: Fast
DDS's threads are not in this process.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import psutil

from dynlearn_ros.core.inverse_model import InverseQuery
from dynlearn_ros.core.robots import robot_spec
from dynlearn_ros.faults.soak import rss_anon_mb
from dynlearn_ros.paths import resolve_model_dir
from dynlearn_ros.runtime.memory import trim_heap
from dynlearn_ros.runtime.registry import load_inverse_model
from dynlearn_ros.runtime.slot import ModelSlot, check_model

TICK_S = 1e-3


def slope_kb_per_load(loads: np.ndarray, rss_mb: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of RSS over loads, in kB per load, and its standard error (kB per load)
    from the residuals (``loads``, ``rss_mb``: (m,), m >= 3)."""
    x = loads.astype(float) - loads.mean()
    b = float(x @ (rss_mb - rss_mb.mean()) / (x @ x))
    resid = rss_mb - rss_mb.mean() - b * x
    se = float(np.sqrt(resid @ resid / (len(x) - 2) / (x @ x)))
    return b * 1024.0, se * 1024.0


def run(n: int, model_dir: str, kind: str, trim: str, every: int, warmup: int) -> dict:
    """Swap ``n`` times; returns the RSS series, the slope and the trim durations."""
    spec = robot_spec("iiwa")
    path = str(resolve_model_dir(model_dir))
    urdf = str(spec.urdf_path)
    trims: list[float] = []

    def load(k: str, p: str):
        if trim == "worker":
            d = trim_heap()
            if d is not None:
                trims.append(d)
        return load_inverse_model(k, p, spec.joint_names, urdf=urdf)

    def check(m) -> None:
        check_model(m, spec.joint_names, spec.home, TICK_S)

    slot = ModelSlot(load_inverse_model(kind, path, spec.joint_names, urdf=urdf), kind, path, load, check,
                     deferred=True)
    query = InverseQuery(len(spec.joint_names), dt=TICK_S)
    for arr in (query.q, query.q_des, query.q_des_next):
        arr[:] = spec.home
    mean, std = np.zeros(query.n), np.zeros(query.n)
    proc = psutil.Process()
    pid = os.getpid()

    def sample(i: int) -> tuple[int, float, float]:
        return i, proc.memory_info().rss / 2**20, (rss_anon_mb(pid) or 0.0) * 1e6 / 2**20

    series: list[tuple[int, float, float]] = [sample(0)]
    t0 = time.monotonic()
    print(f"loads 0 rss_mb {series[0][1]:.1f} anon_mb {series[0][2]:.2f} threads {proc.num_threads()} trim {trim} "
          f"MALLOC_ARENA_MAX={os.environ.get('MALLOC_ARENA_MAX', '-')}", flush=True)
    ticks = 0
    for i in range(1, n + 1):
        swaps, released = slot.swaps, slot.released
        slot.request(kind, path)
        # tick until this request is swapped in and the model it pushed out is released
        while slot.swaps == swaps or (i >= 2 and slot.released == released):
            tick_start = time.perf_counter()
            cand = slot.take_ready()
            if cand is not None:
                prev = slot.active.model
                cand.model.reset()
                slot.activated(cand, prev)
            slot.note_tick(bool(slot.active.model.predict(query, mean, std)))
            slot.active.model.commit(mean)
            if slot.after_tick(query) == "released" and trim == "release":
                d = trim_heap()
                if d is not None:
                    trims.append(d)
            refused = [e for e in slot.poll() if not e.ok]
            if refused:
                raise SystemExit(f"refused: {refused[0].reason}")
            ticks += 1
            time.sleep(max(0.0, TICK_S - (time.perf_counter() - tick_start)))
        if i % every == 0:
            series.append(sample(i))
            print(f"loads {i} rss_mb {series[-1][1]:.1f} anon_mb {series[-1][2]:.2f} threads {proc.num_threads()} "
                  f"t {time.monotonic() - t0:.0f} s ticks {ticks}", flush=True)
    slot.close()
    arr = np.array(series)
    keep = arr[:, 0] >= warmup
    b, se = slope_kb_per_load(arr[keep, 0], arr[keep, 2])
    out = {"n": n, "trim": trim, "malloc_arena_max": os.environ.get("MALLOC_ARENA_MAX"), "model_dir": path,
           "series": series, "slope_kb_per_load": b, "slope_se_kb": se, "warmup_loads": warmup,
           "released": slot.released, "swaps": slot.swaps, "seconds": time.monotonic() - t0,
           "trim_ms_median": float(np.median(trims) * 1e3) if trims else None,
           "trim_ms_max": float(np.max(trims) * 1e3) if trims else None, "trims": len(trims)}
    print(f"anonymous RSS slope over loads {warmup}-{n}: {b:+.2f} +- {se:.2f} kB/load; anonymous RSS "
          f"{series[0][2]:.2f} -> {series[-1][2]:.2f} MB (RSS {series[0][1]:.1f} -> {series[-1][1]:.1f}); "
          f"{slot.swaps} swaps, {slot.released} released"
          + (f"; trim {out['trim_ms_median']:.2f} ms median, {out['trim_ms_max']:.2f} ms max "
             f"({len(trims)})" if trims else ""), flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("n", nargs="?", type=int, default=600, help="swaps (default 600)")
    p.add_argument("--model-dir", default="svdkl_iiwa_sim")
    p.add_argument("--kind", default="svdkl")
    p.add_argument("--trim", choices=("none", "release", "worker"), default="none")
    p.add_argument("--every", type=int, default=25, help="RSS sample every so many loads")
    p.add_argument("--warmup", type=int, default=50, help="loads left out of the slope")
    p.add_argument("--json", help="write the series and figures here")
    a = p.parse_args()
    out = run(a.n, a.model_dir, a.kind, a.trim, a.every, a.warmup)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
