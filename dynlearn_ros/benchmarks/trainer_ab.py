"""Trainer A/B (issue 10, section 1): does the controller's timing depend on a trainer training
beside it? ``dynlearn-ros bench online --trainer-ab``.

One run, interleaved stretches: ``repeat`` x (a stretch *without*, a stretch *with*). Each
stretch is the realtime pair of ``bench loop`` (:func:`dynlearn_ros.benchmarks.loop.run_pair`:
``sim_bridge`` realtime 1 kHz + ``computed_torque`` with the learned SVDKL model, each its own
process) for ``seconds`` of sim time. One ``trainer`` node (``dynlearn_ros.nodes.trainer``, its
own process, its default parameters, the same model as the controller) runs through the whole
run on ROS domain A. A *with* stretch runs the pair on domain A: the trainer receives its
joint_states and trains (a cycle every ``cycle_period_s`` 0.5 s once 100 new samples are in);
a *without* stretch runs it on domain B: the same trainer process is alive but receives nothing
and stays idle. The trainer's start-up (imports, base model) is done before the first stretch.

The trainer's ``model_updates`` is remapped to a topic nobody subscribes: the controller never
swaps a version here, so the figure is training's CPU sharing alone (the swap's own cost is the
rest of ``bench online``).

Niceness: as ``launch_graph`` starts the graph, the trainer gets no prefix and no niceness of
its own; every node inherits the launcher's (here: the bench's; recorded per process). With
``--rt-priority`` the bridge and controller run SCHED_FIFO as ``rt_priority:=P`` gives them, and
the trainer stays SCHED_OTHER, as in the launch.

Per stretch: controller tick p50 / p99 (us, the controller's callback), the bridge's deadline
misses (a command not arrived by the next 1 ms deadline), its late commands (``timeouts`` +
``command_losses``: commands that never came in time for the bridge's timeout), the round-trip
p99, and the trainer's CPU percent over the stretch (100 = one core; its proof of training).
Per arm: the medians over its stretches, and with / without ratios of those medians.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from dynlearn_ros.benchmarks.loop import (
    STARTUP_TIMEOUT_S,
    STOP_TIMEOUT_S,
    LoopBenchConfig,
    LoopBenchError,
    _cpu_seconds,
    machine_facts,
    run_pair,
)
from dynlearn_ros.procs import NodeProcess, claim_domain_id

ARMS = ("without", "with")
#: per-stretch keys aggregated per arm (medians) and compared with / without
KEYS = ("tick_p50_us", "tick_p99_us", "deadline_misses", "deadline_miss_ratio", "late_commands",
        "round_trip_p99_us", "trainer_cpu_percent", "cpu_percent_computed_torque")
#: the trainer's start-up log line (nodes/trainer.py): the learner is built, the node spins next
TRAINER_READY = "learning "
#: where the trainer's accepted versions are announced in this bench (nobody subscribes)
UNUSED_UPDATES_TOPIC = "trainer_ab_model_updates_unused"


def stretch_metrics(pair: dict, trainer_cpu_s: float | None, stretch_wall_s: float) -> dict[str, float | None]:
    """Flat figures of one stretch from :func:`run_pair`'s result ``pair`` and the trainer's CPU
    seconds over it (``trainer_cpu_s``, None if unreadable) in ``stretch_wall_s`` wall seconds."""
    b, c = pair["bridge"], pair["controller"]
    tick = c["controller_tick_us"]
    return {"ticks": b["ticks"], "tick_p50_us": tick["p50"], "tick_p99_us": tick["p99"],
            "deadline_misses": b["deadline_misses"], "deadline_miss_ratio": b["deadline_miss_ratio"],
            "late_commands": b["timeouts"] + b["command_losses"],
            "round_trip_p99_us": b["round_trip_us"]["p99"],
            "trainer_cpu_percent": None if trainer_cpu_s is None or stretch_wall_s <= 0
            else 100.0 * trainer_cpu_s / stretch_wall_s,
            "cpu_percent_computed_torque": pair["cpu_percent"]["computed_torque"]}


def aggregate(stretches: Sequence[dict]) -> dict:
    """Per arm the median over its stretches of each of :data:`KEYS` (None values skipped; None
    if none), and ``ratio_with_to_without`` per key (None when a median is None or the without
    median is 0: a zero count is then judged on the absolute numbers).

    stretches: dicts with ``arm`` in :data:`ARMS` and the :data:`KEYS`."""
    med: dict[str, dict[str, float | None]] = {}
    for arm in ARMS:
        rows = [s for s in stretches if s["arm"] == arm]
        med[arm] = {"stretches": len(rows)}
        for key in KEYS:
            vals = [s[key] for s in rows if s.get(key) is not None]
            med[arm][key] = float(np.median(vals)) if vals else None
    ratio: dict[str, float | None] = {}
    for key in KEYS:
        a, b = med["with"][key], med["without"][key]
        ratio[key] = None if a is None or b is None or b == 0 else a / b
    return {"median": med, "ratio_with_to_without": ratio}


def _wait_ready(trainer: NodeProcess, timeout_s: float) -> None:
    """Until the trainer logged :data:`TRAINER_READY` (polled at 0.1 s); raises LoopBenchError
    when it exits or the timeout passes."""
    if trainer.wait_for_output(TRAINER_READY, timeout_s, poll_s=0.1):
        return
    if trainer.poll() is not None:
        raise LoopBenchError(f"trainer exited (code {trainer.poll()}) before it was ready\n" + trainer.describe())
    raise LoopBenchError(f"trainer not ready after {timeout_s:.0f} s\n" + trainer.describe())


def run_trainer_ab(seconds: float = 10.0, repeat: int = 3, model_dir: str = "svdkl_iiwa_sim",
                   rt_priority: int = 0, progress: Callable[[str], None] = print) -> dict:
    """``repeat`` x (without, with) stretches of ``seconds`` sim seconds each (see the module);
    returns the JSON-ready result: config, machine facts, per-stretch figures, :func:`aggregate`,
    the trainer's final summary (cycles, accepted) and the processes' niceness."""
    import psutil

    if seconds <= 0 or repeat < 1:
        raise ValueError("seconds must be > 0 and repeat >= 1")
    cfg = LoopBenchConfig(seconds=seconds, controller_params={"model_kind": "svdkl", "model_dir": model_dir},
                          rt_priority=rt_priority)
    facts = machine_facts()
    facts["loadavg_before"] = list(os.getloadavg())
    stretches: list[dict] = []
    nice: dict[str, int | None] = {}
    with (tempfile.TemporaryDirectory(prefix="dynlearn_trainer_ab_") as tmpd, claim_domain_id() as dom_a,
          claim_domain_id() as dom_b):
        work = Path(tmpd)
        (work / "ros_log").mkdir()
        env = {"with": dom_a.env(work / "ros_log"), "without": dom_b.env(work / "ros_log")}
        summary = work / "trainer.json"
        trainer = NodeProcess("trainer", {"model_kind": "svdkl", "model_dir": model_dir, "summary_path": str(summary)},
                              env["with"], work / "trainer.log", remaps={"model_updates": UNUSED_UPDATES_TOPIC})
        try:
            progress(f"trainer starting (domain {dom_a.domain}; without-stretches on domain {dom_b.domain})")
            _wait_ready(trainer, STARTUP_TIMEOUT_S + 60.0)
            # the pair's nodes are started without a niceness of their own: they inherit the bench's
            nice = {"bench_and_pair_nodes": os.nice(0), "trainer": psutil.Process(trainer.pid).nice()}
            for i in range(repeat):
                for arm in ARMS:
                    progress(f"stretch {i + 1}/{repeat} {arm} trainer: {seconds:g} s")
                    c0, t0 = _cpu_seconds(trainer.pid), time.monotonic()
                    pair = run_pair("realtime", cfg, env[arm], work, f"s{i}_{arm}")
                    c1, wall = _cpu_seconds(trainer.pid), time.monotonic() - t0
                    if trainer.poll() is not None:
                        raise LoopBenchError(f"trainer exited (code {trainer.poll()})\n" + trainer.describe())
                    m = stretch_metrics(pair, None if c0 is None or c1 is None else c1 - c0, wall)
                    stretches.append({"arm": arm, "index": i, "wall_s": wall, **m})
                    progress(f"  tick p50 {m['tick_p50_us']:.0f} p99 {m['tick_p99_us']:.0f} us, misses "
                             f"{m['deadline_misses']}, late {m['late_commands']}, trainer cpu "
                             f"{m['trainer_cpu_percent'] or 0:.0f} %")
        finally:
            rc = trainer.stop(timeout=STOP_TIMEOUT_S)
        if rc != 0:
            raise LoopBenchError(f"trainer did not stop cleanly (exit {rc})\n" + trainer.describe())
        trainer_summary = json.loads(summary.read_text()) if summary.exists() else None
    facts["loadavg_after"] = list(os.getloadavg())
    return {"benchmark": "online --trainer-ab", "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "config": {"seconds": seconds, "repeat": repeat, "model_dir": model_dir, "rt_priority": rt_priority,
                       "order": "per repeat: without, then with",
                       "trainer": "its own process, default parameters, model_updates remapped to "
                                  f"{UNUSED_UPDATES_TOPIC} (no swaps); no prefix / niceness of its own (as in "
                                  "launch_graph)"},
            "machine": facts, "niceness": nice, "stretches": stretches, **aggregate(stretches),
            "trainer_summary": None if trainer_summary is None else
            {k: trainer_summary.get(k) for k in ("samples_seen", "cycles", "accepted", "rejected", "model_version")}}


def format_summary(result: dict) -> str:
    """A few human-readable lines of :func:`run_trainer_ab`'s result."""
    med, r = result["median"], result["ratio_with_to_without"]

    def f(v, fmt=".0f"):
        return "n/a" if v is None else format(v, fmt)

    lines = [f"trainer A/B: {result['config']['repeat']} x ({result['config']['seconds']:g} s without, "
             f"{result['config']['seconds']:g} s with), medians per arm, ratio with/without"]
    for key in KEYS:
        lines.append(f"  {key:28s} without {f(med['without'][key], '.4g'):>8s}  with {f(med['with'][key], '.4g'):>8s}"
                     f"  x{f(r[key], '.2f')}")
    la, lb = result["machine"]["loadavg_before"], result["machine"]["loadavg_after"]
    lines.append(f"  load average before {la[0]:.2f} after {lb[0]:.2f}; trainer {result['trainer_summary']}")
    return "\n".join(lines)
