"""Control-loop benchmark: sim_bridge (realtime, 1 kHz) <-> computed_torque over DDS.

One *run* measures, one after the other on the same machine:

1. ``realtime``: ``sim_bridge`` with ``stepping:=realtime`` for ``seconds`` of sim time and the
   ``computed_torque`` node, each its own process on a claimed ROS_DOMAIN_ID. Round trip (us) =
   bridge publishes joint_states k -> bridge receives the first command after it (the bridge's
   own ``round_trip_us``); a tick whose command has not arrived by the next 1 ms deadline is a
   deadline miss. ``controller_tick_us`` = the controller's callback duration (its summary).
2. ``lockstep`` (baseline): the same pair with ``stepping:=lockstep`` for the same sim time: the
   same DDS path and controller work with no wall-clock pacing (the bridge publishes the next
   state as soon as the command arrives), so ratio realtime/lockstep isolates the cost of
   sleeping between ticks and being woken late on a loaded machine.
3. ``rclpy_echo`` (baseline): the middleware's floor: a ping process runs the bridge's realtime
   loop without the plant and an echo process answers every JointState with a preallocated
   Float64MultiArray, with the controller's executor, the same message types and QoS, and no
   work (:mod:`dynlearn_ros.nodes.bench_echo`). ratio realtime/rclpy_echo of the deadline
   misses is the package's own share (goal: <= 1.5).
4. ``pipe_echo`` (baseline): a 1 kHz absolute-deadline loop that writes 8 bytes to a child
   Python process over a pipe and waits (``select``) for the echo: the operating system's
   wake-up and scheduling latency right now, with no DDS and no ROS. ratio realtime/pipe_echo is
   the part of the round trip DDS + rclpy + the controller add on top of the machine's noise.

CPU percent (100 = one core) of both nodes is sampled from outside with psutil every 0.1 s over
the bridge's stepping window (start-up excluded); the bridge's self-reported figure is kept too.

No rclpy import here: nodes are subprocesses and their JSON files are read back.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import yaml

from dynlearn_ros.benchmarks.wakeup import (  # noqa: F401  (LoopBenchError, pipe_echo: re-exported, callers import them from here)
    RATE_HZ,
    STARTUP_TIMEOUT_S,
    STOP_TIMEOUT_S,
    LoopBenchError,
    pipe_echo,
    rt_prefix,
)
from dynlearn_ros.procs import NodeProcess, claim_domain_id

#: goals from the project issue (section 6)
GOAL_ROUND_TRIP_P99_US = 1000.0
GOAL_DEADLINE_MISS_RATIO = 0.001
#: goals from issue 12: misses at most 1.5x the bare rclpy echo's of the same run; controller
#: tick p99 with the analytic model / with a learned one (us)
GOAL_MISS_RATIO_TO_RCLPY_ECHO = 1.5
GOAL_TICK_P99_US = {"analytic": 150.0, "learned": 250.0}
BASELINES = ("rclpy_echo", "lockstep", "pipe_echo")
EXECUTORS = ("events", "single")
SAMPLE_PERIOD_S = 0.1
LOG_TAIL_LINES = 25


@dataclass
class LoopBenchConfig:
    """seconds: sim seconds per measured phase (1 kHz -> 1000 ticks per second);
    robot: iiwa | panda; executor: controller executor (events | single);
    repeat: runs whose medians are reported; controller_params: extra ``-p`` overrides;
    rt_priority: 0 = normal scheduling, 1..99 = SCHED_FIFO (needs CAP_SYS_NICE or an rtprio limit)."""

    seconds: float = 30.0
    robot: str = "iiwa"
    executor: str = "events"
    repeat: int = 1
    controller_params: dict[str, str] = field(default_factory=dict)
    baselines: tuple[str, ...] = BASELINES
    rt_priority: int = 0


# ---------------------------------------------------------------------------- processes
def _cpu_seconds(pid: int) -> float | None:
    import psutil

    try:
        t = psutil.Process(pid).cpu_times()
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return None
    return t.user + t.system


def window_cpu_percent(samples: Sequence[tuple[float, float | None]], t_start: float, t_end: float) -> float | None:
    """CPU percent (100 = one core) between the first and last sample inside [t_start, t_end].

    samples: (monotonic time s, cumulative CPU s or None when unreadable). None if fewer than two
    usable samples fall in the window."""
    inside = [(t, c) for t, c in samples if t_start <= t <= t_end and c is not None]
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return None
    (t0, c0), (t1, c1) = inside[0], inside[-1]
    return 100.0 * (c1 - c0) / (t1 - t0)


def _read_json(path: Path, what: str, procs: Iterable[NodeProcess]) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise LoopBenchError(f"{what} wrote no readable JSON at {path} ({exc})\n"
                             + "\n".join(p.describe() for p in procs)) from exc


def run_pair(stepping: str, cfg: LoopBenchConfig, env: dict[str, str], workdir: Path, tag: str) -> dict:
    """Bridge (``stepping``) + controller for ``cfg.seconds`` of sim time; returns
    {"bridge": stats JSON, "controller": summary JSON, "cpu_percent": {...}, "wall_s": s}.

    Raises LoopBenchError (with the log tails) when a node exits early or with an error, hangs,
    or leaves no JSON."""
    bridge_json = workdir / f"{tag}_bridge.json"
    ctl_json = workdir / f"{tag}_controller.json"
    ctl_env = dict(env)
    ctl_env["DYNLEARN_EXECUTOR"] = cfg.executor
    # --controller-param values are YAML text as on a ros2 command line (typed here, formatted back)
    extra = {k: yaml.safe_load(v) for k, v in cfg.controller_params.items()}
    ctl_params = {"robot": cfg.robot, "summary_path": str(ctl_json), **extra}
    bridge_params = {"robot": cfg.robot, "stepping": stepping, "rate_hz": float(RATE_HZ),
                     "duration_s": float(cfg.seconds), "stats_path": str(bridge_json)}
    # lockstep needs no pacing but may run slower than real time on a loaded machine
    run_limit_s = STARTUP_TIMEOUT_S + cfg.seconds * (2.0 if stepping == "realtime" else 10.0)
    prefix = rt_prefix(cfg.rt_priority)
    ctl = NodeProcess("computed_torque", ctl_params, ctl_env, workdir / f"{tag}_computed_torque.log", prefix=prefix)
    bridge = NodeProcess("sim_bridge", bridge_params, env, workdir / f"{tag}_sim_bridge.log", prefix=prefix)
    procs = (bridge, ctl)
    samples_b: list[tuple[float, float | None]] = []
    samples_c: list[tuple[float, float | None]] = []
    t0 = time.monotonic()
    t_last_alive = t0
    try:
        while True:
            now = time.monotonic()
            rc_b = bridge.poll()
            if rc_b is not None:
                break
            t_last_alive = now
            samples_b.append((now, _cpu_seconds(bridge.pid)))
            samples_c.append((now, _cpu_seconds(ctl.pid)))
            if ctl.poll() is not None:
                raise LoopBenchError(f"{tag}: computed_torque exited (code {ctl.poll()}) while the bridge was "
                                     "running\n" + "\n".join(p.describe() for p in procs))
            if now - t0 > run_limit_s:
                raise LoopBenchError(f"{tag}: sim_bridge still running after {run_limit_s:.0f} s "
                                     f"({cfg.seconds:g} s of sim time expected)\n"
                                     + "\n".join(p.describe() for p in procs))
            time.sleep(SAMPLE_PERIOD_S)
        wall = time.monotonic() - t0
        if rc_b != 0:
            raise LoopBenchError(f"{tag}: sim_bridge exited with code {rc_b}\n"
                                 + "\n".join(p.describe() for p in procs))
    finally:
        rc_c = ctl.stop(timeout=STOP_TIMEOUT_S)
        killed = ctl.killed
        bridge.stop(timeout=STOP_TIMEOUT_S)
    if killed or rc_c != 0:
        raise LoopBenchError(f"{tag}: computed_torque did not stop cleanly on SIGINT (exit {rc_c}, "
                             f"killed={killed})\n" + ctl.describe())
    bstats = _read_json(bridge_json, f"{tag}: sim_bridge", procs)
    csum = _read_json(ctl_json, f"{tag}: computed_torque", procs)
    loop_s = bstats.get("loop_wall_time_s") or 0.0
    # stepping window: it ended at most one sample period before the exit was seen
    w_start = t_last_alive - loop_s + 2 * SAMPLE_PERIOD_S
    cpu = {"sim_bridge": window_cpu_percent(samples_b, w_start, t_last_alive),
           "computed_torque": window_cpu_percent(samples_c, w_start, t_last_alive),
           "sim_bridge_self_reported": bstats.get("cpu_percent")}
    return {"bridge": bstats, "controller": csum, "cpu_percent": cpu, "wall_s": wall}


def run_rclpy_echo(cfg: LoopBenchConfig, env: dict[str, str], workdir: Path, tag: str) -> dict:
    """The bare rclpy echo pair (:mod:`dynlearn_ros.nodes.bench_echo`) for ``cfg.seconds``;
    returns the ping's statistics (round_trip_us, deadline_miss_ratio, ticks). The echo runs with
    the controller's executor, the ping with the bridge's (events); both under ``rt_priority``."""
    out = workdir / f"{tag}_ping.json"
    echo_out = workdir / f"{tag}_echo.json"
    module = "dynlearn_ros.nodes.bench_echo"
    prefix = rt_prefix(cfg.rt_priority)
    echo = NodeProcess(module, {"role": "echo", "out": str(echo_out)}, dict(env, DYNLEARN_EXECUTOR=cfg.executor),
                       workdir / f"{tag}_echo.log", name="rclpy_echo", prefix=prefix)
    ping = NodeProcess(module, {"role": "ping", "seconds": float(cfg.seconds), "out": str(out)},
                       dict(env, DYNLEARN_EXECUTOR="events"), workdir / f"{tag}_ping.log", name="rclpy_ping",
                       prefix=prefix)
    procs = (ping, echo)
    samples_p: list[tuple[float, float | None]] = []
    samples_e: list[tuple[float, float | None]] = []
    try:
        t0 = time.monotonic()
        while ping.poll() is None:
            now = time.monotonic()
            samples_p.append((now, _cpu_seconds(ping.pid)))
            samples_e.append((now, _cpu_seconds(echo.pid)))
            if now - t0 > STARTUP_TIMEOUT_S + 2.0 * cfg.seconds:
                raise LoopBenchError(f"{tag}: rclpy ping still running\n" + "\n".join(p.describe() for p in procs))
            time.sleep(SAMPLE_PERIOD_S)
        t_end = time.monotonic()
        rc = ping.poll()
        if rc != 0:
            raise LoopBenchError(f"{tag}: rclpy ping exited with code {rc}\n" + "\n".join(p.describe() for p in procs))
    finally:
        echo.stop(timeout=STOP_TIMEOUT_S)
        ping.stop(timeout=STOP_TIMEOUT_S)
    stats = _read_json(out, f"{tag}: rclpy ping", procs)
    w_start = t_end - (stats.get("loop_wall_time_s") or 0.0) + 2 * SAMPLE_PERIOD_S
    stats["cpu_percent"] = {"ping": window_cpu_percent(samples_p, w_start, t_end),
                            "echo": window_cpu_percent(samples_e, w_start, t_end)}
    # the echo's callback (its publish: an empty tick), written when it stopped; optional
    try:
        stats["echo_callback_us"] = json.loads(echo_out.read_text())["callback_us"]
    except (OSError, ValueError, KeyError):
        stats["echo_callback_us"] = None
    return stats


# ---------------------------------------------------------------------------- aggregation
def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def run_metrics(run: dict) -> dict[str, float | None]:
    """Flat headline figures of one run (keys are stable; used for the medians)."""
    rt = run["realtime"]
    b = rt["bridge"]
    m: dict[str, float | None] = {
        "round_trip_p50_us": b["round_trip_us"]["p50"], "round_trip_p99_us": b["round_trip_us"]["p99"],
        "round_trip_max_us": b["round_trip_us"]["max"], "round_trip_n": b["round_trip_us"]["n"],
        "deadline_miss_ratio": b["deadline_miss_ratio"], "ticks": b["ticks"],
        "controller_tick_p50_us": rt["controller"]["controller_tick_us"]["p50"],
        "controller_tick_p99_us": rt["controller"]["controller_tick_us"]["p99"],
        "controller_tick_n": rt["controller"]["controller_tick_us"]["n"],
        "controller_publish_p50_us": (rt["controller"].get("controller_publish_us") or {}).get("p50"),
        "controller_publish_p99_us": (rt["controller"].get("controller_publish_us") or {}).get("p99"),
        "cpu_percent_sim_bridge": rt["cpu_percent"]["sim_bridge"],
        "cpu_percent_computed_torque": rt["cpu_percent"]["computed_torque"],
    }
    # the tick's stages before the publish (nodes/computed_torque.py STAGES), when the summary has them
    for stage, pct in (rt["controller"].get("controller_stage_us") or {}).items():
        m[f"controller_stage_{stage}_p50_us"], m[f"controller_stage_{stage}_p99_us"] = pct["p50"], pct["p99"]
    if "lockstep" in run:
        lb = run["lockstep"]["bridge"]
        loop_s = lb.get("loop_wall_time_s")
        m.update({"lockstep_round_trip_p50_us": lb["round_trip_us"]["p50"],
                  "lockstep_round_trip_p99_us": lb["round_trip_us"]["p99"],
                  "lockstep_ticks_per_s": lb["ticks"] / loop_s if loop_s else None,
                  "ratio_p50_realtime_to_lockstep": _ratio(m["round_trip_p50_us"], lb["round_trip_us"]["p50"]),
                  "ratio_p99_realtime_to_lockstep": _ratio(m["round_trip_p99_us"], lb["round_trip_us"]["p99"])})
    if "rclpy_echo" in run:
        re_ = run["rclpy_echo"]
        m.update({"rclpy_echo_round_trip_p50_us": re_["round_trip_us"]["p50"],
                  "rclpy_echo_round_trip_p99_us": re_["round_trip_us"]["p99"],
                  "rclpy_echo_deadline_miss_ratio": re_["deadline_miss_ratio"],
                  "rclpy_echo_cpu_percent_echo": (re_.get("cpu_percent") or {}).get("echo"),
                  # the echo's callback, an empty tick (its publish), against the controller's tick
                  "rclpy_echo_callback_p50_us": (re_.get("echo_callback_us") or {}).get("p50"),
                  "rclpy_echo_callback_p99_us": (re_.get("echo_callback_us") or {}).get("p99"),
                  "ratio_p50_realtime_to_rclpy_echo": _ratio(m["round_trip_p50_us"], re_["round_trip_us"]["p50"]),
                  "ratio_p99_realtime_to_rclpy_echo": _ratio(m["round_trip_p99_us"], re_["round_trip_us"]["p99"]),
                  # misses can be 0 in the echo: the ratio is then None, judged on the absolute count
                  "ratio_misses_realtime_to_rclpy_echo": _ratio(m["deadline_miss_ratio"], re_["deadline_miss_ratio"])})
    if "pipe_echo" in run:
        pe = run["pipe_echo"]
        m.update({"pipe_echo_round_trip_p50_us": pe["round_trip_us"]["p50"],
                  "pipe_echo_round_trip_p99_us": pe["round_trip_us"]["p99"],
                  "pipe_echo_deadline_miss_ratio": pe["deadline_miss_ratio"],
                  "pipe_echo_late_tick_ratio": pe["late_tick_ratio"],
                  "ratio_p50_realtime_to_pipe_echo": _ratio(m["round_trip_p50_us"], pe["round_trip_us"]["p50"]),
                  "ratio_p99_realtime_to_pipe_echo": _ratio(m["round_trip_p99_us"], pe["round_trip_us"]["p99"])})
    return m


def median_metrics(per_run: Sequence[dict[str, float | None]]) -> dict[str, float | None]:
    """Per key, the median over runs of the values that are not None (None if all are)."""
    out: dict[str, float | None] = {}
    for key in per_run[0]:
        vals = [r[key] for r in per_run if r.get(key) is not None]
        out[key] = float(np.median(vals)) if vals else None
    return out


def machine_facts() -> dict:
    """nproc, CPU affinity, niceness (inherited by the nodes), Python, platform, RMW, git commit."""
    facts = {"nproc": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)),
             "python": platform.python_version(), "platform": platform.platform(),
             "rmw_implementation": os.environ.get("RMW_IMPLEMENTATION", "default (rmw_fastrtps_cpp)"),
             "rmw_fastrtps_publication_mode": os.environ.get("RMW_FASTRTPS_PUBLICATION_MODE", "default (synchronous)"),
             "nice": os.nice(0), "git_commit": None, "git_dirty": None}
    repo = Path(__file__).resolve().parents[2]
    try:
        facts["git_commit"] = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                                             text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
        facts["git_dirty"] = bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return facts


def bench_loop(cfg: LoopBenchConfig, progress=print) -> dict:
    """Run ``cfg.repeat`` runs (realtime + baselines) and return the JSON-ready result.

    Headline keys (medians over runs): round_trip_us {p50, p99, max, n}, deadline_miss_ratio,
    controller_tick_us {p50, p99, n}, cpu_percent {sim_bridge, computed_torque} (100 = a core),
    baseline {lockstep, pipe_echo}, ratios, goals, meets_goals; per-run details under "runs".
    Raises LoopBenchError when a node fails."""
    import psutil

    if cfg.executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {cfg.executor!r}")
    if cfg.seconds <= 0 or cfg.repeat < 1:
        raise ValueError("seconds must be > 0 and repeat >= 1")
    facts = machine_facts()
    facts["loadavg_before"] = list(os.getloadavg())
    psutil.cpu_percent(interval=None)  # start the system-wide utilisation interval
    t_start = time.monotonic()
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="dynlearn_bench_loop_") as tmpd, claim_domain_id() as claim:
        work = Path(tmpd)
        (work / "ros_log").mkdir()
        env = claim.env(work / "ros_log")
        for i in range(cfg.repeat):
            run: dict = {}
            progress(f"run {i + 1}/{cfg.repeat}: realtime {cfg.seconds:g} s (domain {claim.domain})")
            run["realtime"] = run_pair("realtime", cfg, env, work, f"run{i}_realtime")
            if "rclpy_echo" in cfg.baselines:
                progress(f"run {i + 1}/{cfg.repeat}: bare rclpy echo baseline {cfg.seconds:g} s")
                run["rclpy_echo"] = run_rclpy_echo(cfg, env, work, f"run{i}_rclpy_echo")
            if "lockstep" in cfg.baselines:
                progress(f"run {i + 1}/{cfg.repeat}: lockstep baseline {cfg.seconds:g} s of sim time")
                run["lockstep"] = run_pair("lockstep", cfg, env, work, f"run{i}_lockstep")
            if "pipe_echo" in cfg.baselines:
                progress(f"run {i + 1}/{cfg.repeat}: pipe echo baseline {cfg.seconds:g} s")
                run["pipe_echo"] = pipe_echo(cfg.seconds, rt_priority=cfg.rt_priority)
            run["metrics"] = run_metrics(run)
            runs.append(run)
    facts["loadavg_after"] = list(os.getloadavg())
    facts["system_cpu_percent_during"] = psutil.cpu_percent(interval=None)
    facts["bench_wall_s"] = time.monotonic() - t_start
    med = median_metrics([r["metrics"] for r in runs])
    learned = yaml.safe_load(cfg.controller_params.get("model_kind", "analytic")) != "analytic"
    tick_goal = GOAL_TICK_P99_US["learned" if learned else "analytic"]
    result = {
        "benchmark": "loop",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {"seconds": cfg.seconds, "robot": cfg.robot, "rate_hz": RATE_HZ, "repeat": cfg.repeat,
                   "controller_executor": cfg.executor,
                   "bridge_executor": "events (sim_bridge.py always uses the EventsExecutor)",
                   "controller_params": cfg.controller_params, "baselines": list(cfg.baselines),
                   "rt_priority": cfg.rt_priority,
                   "scheduling": f"SCHED_FIFO {cfg.rt_priority} (chrt -f)" if cfg.rt_priority else "normal (SCHED_OTHER)"},
        "machine": facts,
        "aggregate": "median over runs" if cfg.repeat > 1 else "single run",
        "round_trip_us": {"p50": med["round_trip_p50_us"], "p99": med["round_trip_p99_us"],
                          "max": med["round_trip_max_us"], "n": med["round_trip_n"]},
        "deadline_miss_ratio": med["deadline_miss_ratio"],
        "ticks": med["ticks"],
        "controller_tick_us": {"p50": med["controller_tick_p50_us"], "p99": med["controller_tick_p99_us"],
                               "n": med["controller_tick_n"],
                               "publish_p50": med["controller_publish_p50_us"],
                               "publish_p99": med["controller_publish_p99_us"],
                               "stages": _stages(med)},
        "cpu_percent": {"sim_bridge": med["cpu_percent_sim_bridge"],
                        "computed_torque": med["cpu_percent_computed_torque"]},
        "baseline": {},
        "ratios": {k: v for k, v in med.items() if k.startswith("ratio_")},
        "goals": {"round_trip_p99_us_max": GOAL_ROUND_TRIP_P99_US,
                  "deadline_miss_ratio_max": GOAL_DEADLINE_MISS_RATIO,
                  "controller_tick_p99_us_max": tick_goal,
                  "deadline_misses_max_ratio_to_rclpy_echo": GOAL_MISS_RATIO_TO_RCLPY_ECHO},
        "meets_goals": {
            "controller_tick_p99": med["controller_tick_p99_us"] is not None
            and med["controller_tick_p99_us"] <= tick_goal,
            "misses_vs_rclpy_echo": _misses_vs_echo(med),
            "round_trip_p99": med["round_trip_p99_us"] is not None and med["round_trip_p99_us"] <= GOAL_ROUND_TRIP_P99_US,
            "deadline_miss_ratio": med["deadline_miss_ratio"] is not None
            and med["deadline_miss_ratio"] <= GOAL_DEADLINE_MISS_RATIO},
        "medians": med,
        "runs": runs,
    }
    if "lockstep" in cfg.baselines:
        result["baseline"]["lockstep"] = {"round_trip_us": {"p50": med["lockstep_round_trip_p50_us"],
                                                            "p99": med["lockstep_round_trip_p99_us"]},
                                          "ticks_per_s": med["lockstep_ticks_per_s"]}
    if "rclpy_echo" in cfg.baselines:
        result["baseline"]["rclpy_echo"] = {"round_trip_us": {"p50": med["rclpy_echo_round_trip_p50_us"],
                                                              "p99": med["rclpy_echo_round_trip_p99_us"]},
                                            "deadline_miss_ratio": med["rclpy_echo_deadline_miss_ratio"],
                                            "cpu_percent_echo": med["rclpy_echo_cpu_percent_echo"],
                                            "callback_us": {"p50": med["rclpy_echo_callback_p50_us"],
                                                            "p99": med["rclpy_echo_callback_p99_us"]}}
    if "pipe_echo" in cfg.baselines:
        result["baseline"]["pipe_echo"] = {"round_trip_us": {"p50": med["pipe_echo_round_trip_p50_us"],
                                                             "p99": med["pipe_echo_round_trip_p99_us"]},
                                           "deadline_miss_ratio": med["pipe_echo_deadline_miss_ratio"],
                                           "late_tick_ratio": med["pipe_echo_late_tick_ratio"]}
    return result


def _stages(med: dict) -> dict[str, dict[str, float | None]]:
    """{stage: {p50, p99}} us of the tick's stages from the medians' controller_stage_* keys."""
    out: dict[str, dict[str, float | None]] = {}
    for key, value in med.items():
        if key.startswith("controller_stage_") and key.endswith("_us"):
            stage, pct = key[len("controller_stage_"):-len("_us")].rsplit("_", 1)
            out.setdefault(stage, {})[pct] = value
    return out


def _misses_vs_echo(med: dict) -> bool | None:
    """Deadline misses <= 1.5x the bare rclpy echo's (None without that baseline). An echo with
    no miss at all: met only if the pair had none either."""
    echo = med.get("rclpy_echo_deadline_miss_ratio")
    own = med.get("deadline_miss_ratio")
    if echo is None or own is None:
        return None
    return own <= GOAL_MISS_RATIO_TO_RCLPY_ECHO * echo


def _f(v: float | None, fmt: str = ".0f") -> str:
    return "n/a" if v is None else format(v, fmt)


def format_summary(result: dict) -> str:
    """A few human-readable lines of the headline figures of :func:`bench_loop`'s result."""
    c, m, rt = result["config"], result["machine"], result["round_trip_us"]
    ok = result["meets_goals"]
    med = result["medians"]
    lines = [
        f"bench loop: {c['robot']}, {c['seconds']:g} s at {c['rate_hz']:g} Hz, realtime bridge <-> computed_torque "
        f"(controller executor {c['controller_executor']}, {c['scheduling']}), {result['aggregate']} of {c['repeat']}",
        f"  round trip      p50 {_f(rt['p50'])} us  p99 {_f(rt['p99'])} us  max {_f(rt['max'])} us  "
        f"n {_f(rt['n'])}   goal p99 <= {GOAL_ROUND_TRIP_P99_US:.0f} us: {'met' if ok['round_trip_p99'] else 'MISSED'}",
        f"  deadline misses {_f(100 * result['deadline_miss_ratio'] if result['deadline_miss_ratio'] is not None else None, '.2f')} %"
        f"   goal <= {100 * GOAL_DEADLINE_MISS_RATIO:.1f} %: {'met' if ok['deadline_miss_ratio'] else 'MISSED'}",
        f"  controller tick p50 {_f(result['controller_tick_us']['p50'])} us  p99 {_f(result['controller_tick_us']['p99'])} us"
        f" (its command publish p50 {_f(result['controller_tick_us'].get('publish_p50'))} "
        f"p99 {_f(result['controller_tick_us'].get('publish_p99'))} us)"
        f"   goal p99 <= {result['goals']['controller_tick_p99_us_max']:.0f} us: "
        f"{'met' if ok['controller_tick_p99'] else 'MISSED'}",
        "  tick stages p50 / p99 us: " + ", ".join(
            f"{k} {_f(v.get('p50'), '.1f')} / {_f(v.get('p99'), '.1f')}"
            for k, v in result["controller_tick_us"].get("stages", {}).items()),
        f"  cpu (100 = one core): sim_bridge {_f(result['cpu_percent']['sim_bridge'])} %  "
        f"computed_torque {_f(result['cpu_percent']['computed_torque'])} %",
    ]
    if "lockstep" in result["baseline"]:
        lb = result["baseline"]["lockstep"]
        lines.append(f"  baseline lockstep round trip p50 {_f(lb['round_trip_us']['p50'])} us  p99 "
                     f"{_f(lb['round_trip_us']['p99'])} us ({_f(lb['ticks_per_s'])} ticks/s); realtime/lockstep "
                     f"p50 x{_f(med['ratio_p50_realtime_to_lockstep'], '.2f')}  p99 "
                     f"x{_f(med['ratio_p99_realtime_to_lockstep'], '.2f')}")
    if "rclpy_echo" in result["baseline"]:
        re_ = result["baseline"]["rclpy_echo"]
        miss = re_["deadline_miss_ratio"]
        lines.append(f"  baseline bare rclpy echo round trip p50 {_f(re_['round_trip_us']['p50'])} us  p99 "
                     f"{_f(re_['round_trip_us']['p99'])} us, misses {_f(None if miss is None else 100 * miss, '.2f')} %, "
                     f"echo cpu {_f(re_.get('cpu_percent_echo'))} %, "
                     f"echo callback (an empty tick) p50 {_f((re_.get('callback_us') or {}).get('p50'))} "
                     f"p99 {_f((re_.get('callback_us') or {}).get('p99'))} us; "
                     f"realtime/echo misses x{_f(med.get('ratio_misses_realtime_to_rclpy_echo'), '.2f')} "
                     f"(goal <= {GOAL_MISS_RATIO_TO_RCLPY_ECHO:g}: "
                     f"{ {True: 'met', False: 'MISSED', None: 'n/a'}[ok['misses_vs_rclpy_echo']] })")
    if "pipe_echo" in result["baseline"]:
        pe = result["baseline"]["pipe_echo"]
        lines.append(f"  baseline pipe echo round trip p50 {_f(pe['round_trip_us']['p50'])} us  p99 "
                     f"{_f(pe['round_trip_us']['p99'])} us, misses {_f(100 * pe['deadline_miss_ratio'], '.2f')} % "
                     f"(late wake-ups {_f(100 * pe['late_tick_ratio'], '.2f')} %); "
                     f"realtime/pipe p50 x{_f(med['ratio_p50_realtime_to_pipe_echo'], '.1f')}  p99 "
                     f"x{_f(med['ratio_p99_realtime_to_pipe_echo'], '.1f')}")
    la, lb_ = m["loadavg_before"], m["loadavg_after"]
    lines.append(f"  machine: {m['nproc']} cpus, load average before {la[0]:.2f} after {lb_[0]:.2f}, system cpu "
                 f"{_f(m['system_cpu_percent_during'])} %, python {m['python']}, commit {str(m['git_commit'])[:10]}")
    return "\n".join(lines)
