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
        self.count = 0
        self.max_ns = 0

    def add(self, duration_ns: int) -> None:
        self._buf[self.count % self._buf.shape[0]] = duration_ns
        self.count += 1
        if duration_ns > self.max_ns:
            self.max_ns = duration_ns

    def summary_us(self) -> dict[str, float | int | None]:
        """{p50, p99, max} in microseconds (None when empty) and n, the number of samples."""
        kept = self._buf[: min(self.count, self._buf.shape[0])]
        if kept.size == 0:
            return {"p50": None, "p99": None, "max": None, "n": 0}
        p50, p99 = np.percentile(kept, [50.0, 99.0])
        return {"p50": float(p50) / 1e3, "p99": float(p99) / 1e3, "max": self.max_ns / 1e3, "n": int(self.count)}
