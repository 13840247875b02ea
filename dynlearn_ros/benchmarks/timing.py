"""Per-call latency of a function, as the model benchmarks report it (no heavy imports)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def time_calls(fn: Callable[[], object], steps: int, warmup: int) -> dict:
    """Call ``fn`` ``warmup`` times untimed, then ``steps`` times, each timed alone with
    ``time.perf_counter_ns``; returns {p50_us, p99_us, mean_us (rounded to 10 ns), n}."""
    for _ in range(warmup):
        fn()
    samples = np.empty(steps, dtype=np.int64)
    pc = time.perf_counter_ns
    for i in range(steps):
        t0 = pc()
        fn()
        samples[i] = pc() - t0
    us = samples / 1e3
    return {"p50_us": round(float(np.percentile(us, 50)), 2), "p99_us": round(float(np.percentile(us, 99)), 2),
            "mean_us": round(float(us.mean()), 2), "n": int(us.size)}
