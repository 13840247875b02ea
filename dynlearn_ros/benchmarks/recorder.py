"""Does recording slow the control loop? (``dynlearn-ros bench recorder``)

The same bridge <-> controller pair as ``bench loop`` (:func:`dynlearn_ros.benchmarks.loop.run_pair`,
each node its own process on a claimed ROS_DOMAIN_ID) runs ``pairs`` rounds of: without the
recorder, with it (``record:=true``'s node, default topics, MCAP, ``bag_time`` send), and with
``bag_time`` receive (EventsExecutor), every other round in reverse order (off, send, receive,
receive, send, off, ...), so a drift of the shared machine's load falls on every mode alike. Per run: the bridge's
round trip (joint_states k published -> its command received, us), deadline misses (realtime),
the controller's tick (us), lockstep ticks per wall second, and the recorder's CPU percent and
message counts with the share of the published states and commands recorded. The figures are the ratios of each mode's medians to those without the recorder.

No rclpy import here: nodes are subprocesses and their JSON files are read back.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from dynlearn_ros.bags.completeness import completeness, published_counts
from dynlearn_ros.benchmarks.loop import LoopBenchConfig, _cpu_seconds, _ratio, machine_facts, run_pair
from dynlearn_ros.benchmarks.wakeup import STARTUP_TIMEOUT_S, STOP_TIMEOUT_S, LoopBenchError, rt_prefix
from dynlearn_ros.procs import NodeProcess, claim_domain_id


@dataclass
class RecorderBenchConfig:
    """seconds: sim seconds per run; pairs: rounds of the modes; stepping: realtime | lockstep;
    modes: "off" and recorder bag_time values ("send", "receive"); rt_priority: 0 = normal
    scheduling, 1..99 = the bridge and the controller under SCHED_FIFO (``chrt -f``), as a real
    robot's loop runs; recorder_niceness: the recorder's ``niceness`` parameter (None: its default, 0);
    recorder_rt_priority: 0, or the recorder under SCHED_FIFO at this priority (below the loop's)."""

    seconds: float = 10.0
    pairs: int = 2
    stepping: str = "realtime"
    robot: str = "iiwa"
    modes: tuple[str, ...] = ("off", "send", "receive")
    rt_priority: int = 0
    recorder_niceness: int | None = None
    recorder_rt_priority: int = 0


def _metrics(run: dict, stepping: str) -> dict:
    b, c = run["bridge"], run["controller"]
    loop_s = b.get("loop_wall_time_s")
    return {"round_trip_p50_us": b["round_trip_us"]["p50"], "round_trip_p99_us": b["round_trip_us"]["p99"],
            "deadline_miss_ratio": b.get("deadline_miss_ratio") if stepping == "realtime" else None,
            "controller_tick_p50_us": c["controller_tick_us"]["p50"],
            "controller_tick_p99_us": c["controller_tick_us"]["p99"],
            "ticks_per_wall_s": b["ticks"] / loop_s if loop_s else None}


def _one(cfg: RecorderBenchConfig, mode: str, env: dict, workdir: Path, tag: str) -> dict:
    rec = None
    if mode != "off":
        params = {"bag_path": str(workdir / f"{tag}_bag"), "bag_time": mode,
                  "summary_path": str(workdir / f"{tag}_recorder.json")}
        if cfg.recorder_niceness is not None:
            params["niceness"] = int(cfg.recorder_niceness)
        rec = NodeProcess("recorder", params, env, workdir / f"{tag}_recorder.log",
                          prefix=rt_prefix(cfg.recorder_rt_priority))
        end = time.monotonic() + STARTUP_TIMEOUT_S
        while "into" not in rec.output():            # its start-up line: the bag is open
            if rec.poll() is not None or time.monotonic() > end:
                raise LoopBenchError(f"{tag}: recorder did not start\n{rec.describe()}")
            time.sleep(0.1)
    cpu0 = _cpu_seconds(rec.pid) if rec else None
    t0 = time.monotonic()
    try:
        run = run_pair(cfg.stepping, LoopBenchConfig(seconds=cfg.seconds, robot=cfg.robot, rt_priority=cfg.rt_priority),
                       env, workdir, tag)
    finally:
        if rec is not None:
            cpu1 = _cpu_seconds(rec.pid)
            wall = time.monotonic() - t0
            rc = rec.stop(timeout=STOP_TIMEOUT_S)
    out = {"mode": mode, **_metrics(run, cfg.stepping)}
    if rec is not None:
        try:
            summary = json.loads((workdir / f"{tag}_recorder.json").read_text())
        except (OSError, ValueError):       # killed at the stop (no summary): nothing it recorded is known
            summary = {"messages": {}, "dropped": None}
            out["recorder_no_summary"] = True
        out.update({"recorder_exit": rc, "recorder_cpu_percent": 100.0 * (cpu1 - cpu0) / wall
                    if cpu0 is not None and cpu1 is not None else None,
                    "recorded": summary["messages"], "recorder_dropped": summary["dropped"],
                    "completeness": completeness(summary["messages"], published_counts(run["bridge"], run["controller"]),
                                                 summary.get("repeated_stamps"))})
    return out


def bench_recorder(cfg: RecorderBenchConfig, progress=print) -> dict:
    """The runs and the with / without ratios of the medians (JSON-ready)."""
    import os

    order: list[str] = []
    for i in range(cfg.pairs):
        order += list(cfg.modes) if i % 2 == 0 else list(reversed(cfg.modes))
    runs = []
    with claim_domain_id() as claim, tempfile.TemporaryDirectory(prefix="dynlearn-bench-rec-") as tmp:
        env = claim.env(Path(tmp) / "ros_log", dict(os.environ))
        load0 = os.getloadavg()
        for k, mode in enumerate(order):
            tag = f"run{k}_{mode}"
            progress(f"{tag}: {cfg.seconds:g} s of sim time, {cfg.stepping}, recorder {mode}")
            runs.append(_one(cfg, mode, env, Path(tmp), tag))
        load1 = os.getloadavg()
    keys = [k for k in runs[0] if k.endswith(("_us", "_ratio", "_per_wall_s"))]
    med = {}
    for mode in cfg.modes:
        rows = [r for r in runs if r["mode"] == mode]
        med[mode] = {k: (float(np.median(v)) if (v := [r[k] for r in rows if r[k] is not None]) else None)
                     for k in keys}
    ratios = {mode: {k: _ratio(med[mode][k], med["off"][k]) for k in keys} for mode in cfg.modes if mode != "off"}
    return {"bench": "recorder", "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "config": {**cfg.__dict__, "modes": list(cfg.modes)},
            "machine": {**machine_facts(), "loadavg_before": load0, "loadavg_after": load1},
            "runs": runs, "median": med, "ratio_to_off": ratios}


def format_summary(result: dict) -> str:
    med, rat = result["median"], result["ratio_to_off"]
    modes = result["config"]["modes"]
    lines = [f"recorder modes {modes}, {result['config']['pairs']} rounds of {result['config']['seconds']:g} s "
             f"({result['config']['stepping']}, rt_priority {result['config'].get('rt_priority', 0)}, recorder "
             f"niceness {result['config'].get('recorder_niceness')}), "
             f"load {result['machine']['loadavg_before'][0]:.1f}",
             f"  {'metric':<26}" + "".join(f"{m:>12}" for m in modes)
             + "".join(f"{m + '/off':>14}" for m in rat)]

    def f(v):
        return "-" if v is None else f"{v:.4g}"

    for k in med["off"]:
        lines.append(f"  {k:<26}" + "".join(f"{f(med[m][k]):>12}" for m in modes)
                     + "".join(f"{f(rat[m][k]):>14}" for m in rat))
    for m in rat:
        cpu = [r["recorder_cpu_percent"] for r in result["runs"] if r["mode"] == m and r.get("recorder_cpu_percent")]
        if cpu:
            lines.append(f"  recorder ({m}) CPU {np.median(cpu):.0f} % of a core (median); messages per run: "
                         f"{[sum(r['recorded'].values()) for r in result['runs'] if r['mode'] == m]}")
        shares = [{k: v["share"] for k, v in r["completeness"].items()} for r in result["runs"]
                  if r["mode"] == m and r.get("completeness")]
        if shares:
            lines.append(f"  recorder ({m}) recorded / published per run: "
                         + "; ".join(", ".join(f"{k} {v:.3f}" for k, v in sh.items() if v is not None) for sh in shares))
    return "\n".join(lines)
