"""Loop statistics of the sim bridge, kept without allocation per tick (no ROS imports)."""

from __future__ import annotations

import numpy as np


class LatencyRecorder:
    """Durations in integer nanoseconds into a preallocated buffer of ``capacity`` samples.

    Once full, further samples overwrite the oldest (a ring); :attr:`count` keeps the total and
    :attr:`max_ns` the maximum over all of them, the percentiles cover the samples kept."""

    def __init__(self, capacity: int = 1 << 20) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        # written once here: np.zeros maps untouched zero pages that the process's RSS takes on
        # one by one as samples arrive (+1 MB per 131 072 samples: the bridge's whole RSS slope
        # in the 20-minute soak, docs/safety.md); filled, the memory is all committed at start
        self._buf = np.empty(capacity, dtype=np.int64)
        self._buf.fill(0)
        # the percentiles partition a copy of the kept samples in here, not in a fresh array:
        # np.percentile's own copy (8 bytes per kept sample, every /diagnostics second) grew the
        # bridge's heap with the ring's fill, ~0.2 MB/min until 2^20 round trips
        # (docs/safety.md, "Memory, eighth session")
        self._scratch = np.empty(capacity, dtype=np.int64)
        self._scratch.fill(0)
        self.count = 0
        self.max_ns = 0

    def add(self, duration_ns: int) -> None:
        self._buf[self.count % self._buf.shape[0]] = duration_ns
        self.count += 1
        if duration_ns > self.max_ns:
            self.max_ns = duration_ns

    def summary_us(self) -> dict[str, float | int | None]:
        """{p50, p99, max} in microseconds (None when empty) and n, the number of samples.

        Allocates no memory that grows with the samples kept (the sort happens in a scratch
        buffer of ``capacity`` samples, committed at construction)."""
        m = min(self.count, self._buf.shape[0])
        if m == 0:
            return {"p50": None, "p99": None, "max": None, "n": 0}
        work = self._scratch[:m]
        np.copyto(work, self._buf[:m])
        p50, p99 = np.percentile(work, [50.0, 99.0], overwrite_input=True)  # partitions work in place
        return {"p50": float(p50) / 1e3, "p99": float(p99) / 1e3, "max": self.max_ns / 1e3, "n": int(self.count)}
