"""The bridge's memory growth without ROS: a latency ring summarized once a second (docs/safety.md,
"Memory, eighth session").

    PYTHONPATH=<tree> .venv/bin/python scripts/percentile_rss.py [--mode copy|recorder]
        [--per-s 500] [--seconds 1200] [--every 120]

Plays the sim bridge's round-trip statistics at simulated speed: each simulated second adds
``--per-s`` samples (the bridge adds one per state answered by a command: ~300-550 per second
in the soaks, 1 kHz times the share of deadlines met) to a :class:`LatencyRecorder` of the
bridge's capacity (2^20) and summarizes it once, as the bridge's 1 Hz /diagnostics does.

``--mode``:
  copy      the summary as it was up to session 7: ``np.percentile`` over the kept samples, which
            copies them (8 bytes each) into a fresh array every call;
  recorder  (default) :meth:`LatencyRecorder.summary_us` as shipped: the copy goes into a scratch
            buffer committed at construction.

Prints the anonymous RSS (/proc/self/status RssAnon, MB = 1e6 bytes, as the soak) every ``--every`` simulated
seconds and at the end its least-squares slope after ``--warmup-s`` in MB per simulated minute, beside
8 bytes x ``--per-s`` x 60 (what one copy of the kept samples per summary adds per minute).
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from dynlearn_ros.faults.rss_trend import linear_slope
from dynlearn_ros.faults.soak import rss_anon_mb
from dynlearn_ros.sim.stats import LatencyRecorder


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("copy", "recorder"), default="recorder")
    ap.add_argument("--per-s", type=int, default=500, help="samples per simulated second")
    ap.add_argument("--seconds", type=int, default=1200, help="simulated seconds (the ring holds 2^20 samples)")
    ap.add_argument("--every", type=int, default=120, help="print every this many simulated seconds")
    ap.add_argument("--warmup-s", type=int, default=60, help="the slope is fitted after this many simulated seconds")
    a = ap.parse_args(argv)
    rec = LatencyRecorder()
    rng = np.random.default_rng(0)
    chunk = rng.integers(300_000, 5_000_000, a.per_s)  # ns, the soak's round-trip range
    t_min = np.arange(1, a.seconds + 1) / 60.0
    mb = np.empty(a.seconds)  # preallocated: lists growing here would show in the RSS measured
    print(f"mode {a.mode}: anonymous RSS {rss_anon_mb(os.getpid()):.2f} MB after the ring's allocation")
    for s in range(1, a.seconds + 1):
        for v in chunk:
            rec.add(int(v))
        if a.mode == "copy":
            np.percentile(rec._buf[: min(rec.count, rec._buf.shape[0])], [50.0, 99.0])
        else:
            rec.summary_us()
        mb[s - 1] = rss_anon_mb(os.getpid())
        if s % a.every == 0:
            print(f"{s:6d} s  {rec.count:8d} samples  anonymous RSS {mb[s - 1]:.2f} MB")
    w = slice(a.warmup_s, None)
    b, se = linear_slope(t_min[w], mb[w])
    print(f"slope after {a.warmup_s} s {b:+.4f} +- {se:.4f} MB/min; one copy per summary would add {8 * a.per_s * 60 / 1e6:.3f} MB/min")


if __name__ == "__main__":
    main()
