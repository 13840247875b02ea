"""The machine's own wake-up and scheduling latency at 1 kHz, with no DDS and no ROS: the
``pipe_echo`` baseline of the control-loop benchmark (:mod:`dynlearn_ros.benchmarks.loop`).
"""

from __future__ import annotations

import os
import select
import struct
import subprocess
import sys
import time

import numpy as np

RATE_HZ = 1000.0
STARTUP_TIMEOUT_S = 90.0  # imports of pybullet / pinocchio on a loaded 2-core machine
STOP_TIMEOUT_S = 15.0


class LoopBenchError(RuntimeError):
    """A benchmark process (node or echo child) died, hung or wrote no output; the message
    carries what is known (log tails for nodes)."""


def rt_prefix(rt_priority: int) -> list[str]:
    """``chrt -f P`` (SCHED_FIFO) for P > 0, else nothing."""
    if not 0 <= rt_priority <= 99:
        raise ValueError(f"rt_priority must be in 0..99, got {rt_priority}")
    return ["chrt", "-f", str(rt_priority)] if rt_priority > 0 else []


_ECHO_CHILD = "import os\nwhile True:\n    b = os.read(0, 4096)\n    if not b:\n        break\n    os.write(1, b)\n"


def pipe_echo(seconds: float, rate_hz: float = RATE_HZ, rt_priority: int = 0) -> dict:
    """1 kHz absolute-deadline ping over a pipe to a child process that echoes 8 bytes.

    Returns {"round_trip_us": {p50, p99, max, n}, "deadline_misses", "deadline_miss_ratio",
    "ticks", "late_ticks", "late_tick_ratio"} with the same definitions as the bridge (send ->
    echo read; no echo before the next deadline = miss). A late tick is one sent more than a
    period after its scheduled time (the pacing loop itself woke too late); the tick after it
    is usually a miss whatever the peer does, as in the bridge, which steps overdue ticks at once.
    rt_priority > 0 runs both ends under SCHED_FIFO (restored afterwards for this process)."""
    child = subprocess.Popen(rt_prefix(rt_priority) + [sys.executable, "-c", _ECHO_CHILD], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, bufsize=0)
    old_policy = os.sched_getscheduler(0), os.sched_getparam(0)
    if rt_priority > 0:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(rt_priority))
    assert child.stdin is not None and child.stdout is not None
    wfd, rfd = child.stdin.fileno(), child.stdout.fileno()
    clock = time.perf_counter_ns
    pack = struct.Struct("<q")
    try:
        os.write(wfd, pack.pack(clock()))  # start-up: wait for the first echo
        r, _, _ = select.select([rfd], [], [], STARTUP_TIMEOUT_S)
        if not r or len(os.read(rfd, 4096)) == 0:
            raise LoopBenchError("pipe_echo: the echo child did not answer")
        n_ticks = int(round(seconds * rate_hz))
        period = int(round(1e9 / rate_hz))
        rts = np.zeros(n_ticks, dtype=np.int64)
        n_rt = 0
        misses = 0
        late = 0
        awaiting = False
        pending = b""
        next_tick = clock() + period

        def drain(timeout_ns: int) -> None:
            nonlocal n_rt, awaiting, pending
            r, _, _ = select.select([rfd], [], [], max(timeout_ns, 0) * 1e-9)
            if not r:
                return
            data = os.read(rfd, 4096)
            now = clock()
            if not data:
                raise LoopBenchError("pipe_echo: the echo child exited")
            pending += data
            while len(pending) >= 8:
                (ts,) = pack.unpack_from(pending)
                pending = pending[8:]
                if n_rt < rts.size:
                    rts[n_rt] = now - ts
                    n_rt += 1
                awaiting = False

        for _ in range(n_ticks):
            while (remaining := next_tick - clock()) > 0:
                drain(remaining)
            if awaiting:
                misses += 1
            t_send = clock()
            if t_send - next_tick > period:
                late += 1
            os.write(wfd, pack.pack(t_send))
            awaiting = True
            next_tick += period
            if clock() - next_tick > 100 * period:  # stalled: re-anchor, as the bridge does
                next_tick = clock() + period
        # collect every outstanding echo (several may be in flight after late ticks: `awaiting`
        # only tracks the newest ping, so it clears when an older echo lands); a loaded machine
        # may delay the child by tens of ms, so allow up to a second
        deadline = clock() + 1_000_000_000
        while n_rt < n_ticks and clock() < deadline:
            drain(deadline - clock())
    finally:
        if rt_priority > 0:
            os.sched_setscheduler(0, old_policy[0], old_policy[1])
        child.stdin.close()
        try:
            child.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        child.stdout.close()
    kept = rts[:n_rt] / 1e3
    rt = ({"p50": float(np.percentile(kept, 50)), "p99": float(np.percentile(kept, 99)),
           "max": float(kept.max()), "n": int(n_rt)} if n_rt else {"p50": None, "p99": None, "max": None, "n": 0})
    return {"round_trip_us": rt, "ticks": n_ticks, "deadline_misses": misses,
            "deadline_miss_ratio": misses / n_ticks if n_ticks else 0.0,
            "late_ticks": late, "late_tick_ratio": late / n_ticks if n_ticks else 0.0}
