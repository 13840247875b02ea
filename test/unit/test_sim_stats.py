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
