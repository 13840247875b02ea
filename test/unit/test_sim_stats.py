"""LatencyRecorder: percentiles over the kept samples, max and count over all of them."""

from __future__ import annotations

import numpy as np
import pytest

from dynlearn_ros.sim.stats import LatencyRecorder


def test_summary_matches_numpy_percentiles():
    rng = np.random.default_rng(0)
    samples = rng.integers(100_000, 900_000, 1000)
    rec = LatencyRecorder(capacity=4096)
    assert rec.summary_us() == {"p50": None, "p99": None, "max": None, "n": 0}
    for s in samples:
        rec.add(int(s))
    out = rec.summary_us()
    assert out["n"] == 1000
    assert out["p50"] == pytest.approx(np.percentile(samples, 50) / 1e3, rel=1e-12)
    assert out["p99"] == pytest.approx(np.percentile(samples, 99) / 1e3, rel=1e-12)
    assert out["max"] == samples.max() / 1e3


def test_ring_keeps_latest_and_global_max():
    rec = LatencyRecorder(capacity=10)
    rec.add(10**9)  # an early outlier, overwritten in the ring but kept as max
    for _ in range(20):
        rec.add(1000)
    out = rec.summary_us()
    assert out["n"] == 21 and out["p99"] == 1.0 and out["max"] == 1e6
    with pytest.raises(ValueError):
        LatencyRecorder(capacity=0)


def test_summary_leaves_the_ring_order_alone():
    """The percentiles sort a copy: the ring still overwrites its oldest samples afterwards. Ten
    samples 10..1 us, a summary, nine more of 0: the ring keeps the newest (1 us and nine 0s), so
    its p99 is below 1 us; a sort done in the ring itself (ascending) would have left 10 us in it
    and a p99 of ~9 us."""
    rec = LatencyRecorder(capacity=10)
    for v in range(10, 0, -1):
        rec.add(v * 1000)
    assert rec.summary_us()["p50"] == pytest.approx(5.5)
    for _ in range(9):
        rec.add(0)
    out = rec.summary_us()
    assert out["p99"] < 1.0 and out["max"] == 10.0


def test_summary_allocates_nothing_that_grows_with_the_samples():
    """The bridge calls summary_us every second (/diagnostics) while the ring fills (2^20 round
    trips, ~35 min): np.percentile's own copy of the kept samples grew its heap by 8 bytes per
    sample (~0.2 MB/min, docs/safety.md "Memory, eighth session"). numpy reports its buffers to
    tracemalloc, so the peak during a summary is measured directly. Bound: one copy of 2^16 kept
    samples is 512 kB; the sort in the scratch buffer leaves np.percentile's fixed work (a few
    small arrays, ~5 kB), so 64 kB is far from both."""
    import tracemalloc

    rec = LatencyRecorder(capacity=1 << 17)
    rng = np.random.default_rng(1)
    for s in rng.integers(100_000, 900_000, 1 << 16):
        rec.add(int(s))
    rec.summary_us()  # numpy's lazy imports and caches on the first call
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        rec.summary_us()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024, f"summary_us allocated {peak} bytes at its peak"
