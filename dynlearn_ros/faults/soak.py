"""The soak run (bench, not CI): realtime bridge + computed_torque for minutes, with a new
reference trajectory every few seconds, the plant perturbed at random (payload changes through
``~/payload_kg``, bursts of bad joint states from a second publisher), and model swaps announced
on ``model_updates`` when a shipped model exists. Reported: crashes (exit codes, processes
alive), commands beyond the torque limits, memory (RSS of both nodes every 10 s: first, last,
slope over the second half, and per 5-minute window with a fit after the warm-up:
:mod:`dynlearn_ros.faults.rss_trend`).

``dynlearn-ros bench soak --minutes M --json PATH`` runs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import numpy as np

from dynlearn_ros.core.robots import robot_spec
from dynlearn_ros.faults.rss_trend import linear_slope, rss_trend
from dynlearn_ros.procs import NodeProcess, ros_domain
from dynlearn_ros.runtime.memory import arena_residency

ROBOT = "iiwa"
SHIPPED_MODEL = "svdkl_iiwa_sim"


def _random_trajectory(rng, spec, msg_cls, point_cls):
    """Three points within 0.4 rad of home (inside the limits), 1-2 s apart."""
    msg = msg_cls()
    msg.joint_names = list(spec.joint_names)
    t = 0.0
    for _ in range(3):
        t += rng.uniform(1.0, 2.0)
        q = np.clip(spec.home + rng.uniform(-0.4, 0.4, spec.n), spec.lower + 0.1, spec.upper - 0.1)
        p = point_cls(positions=q.tolist())
        ns = int(t * 1e9)
        p.time_from_start.sec, p.time_from_start.nanosec = divmod(ns, 1_000_000_000)
        msg.points.append(p)
    return msg


EVENT_KINDS = ("trajectory", "payload", "bad_states", "model")


def _heaptrack_prefix(name: str, heaptrack: tuple[str, ...], workdir: Path) -> list[str]:
    return ["heaptrack", "-o", str(workdir / f"{name}.heaptrack")] if name in heaptrack else []


def _graph_nodes(node, exclude: tuple[str, ...]) -> list[str]:
    """Every node on the driver's graph ("/ns/name") but ``exclude`` (bare names)."""
    return sorted(f"{ns.rstrip('/')}/{n}" for n, ns in node.get_node_names_and_namespaces() if n not in exclude)


def foreign_nodes(node, executor, wait_s: float = 5.0) -> list[str]:
    """The nodes of other processes already on the soak's freshly claimed domain (spinning
    ``executor`` for ``wait_s``: participants on localhost discover each other within ~1 s; the
    controller of the 24-minute soak saw the other run's publisher 1.5 s after its start).
    A claimed domain is empty unless something runs on it outside the claim (nodes orphaned
    by a killed run, a user's nodes on that ROS_DOMAIN_ID)."""
    end = time.monotonic() + wait_s
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)
    return _graph_nodes(node, (node.get_name(),))


def state_publishers(node, topic: str = "/joint_states") -> list[str]:
    """The nodes publishing ``topic`` as the driver's graph shows them ("/ns/name", one per publisher)."""
    from dynlearn_ros.nodes.params import publisher_nodes

    return publisher_nodes(node, topic)


def _python_of(pid: int, wrapped: bool, timeout_s: float = 20.0):
    """The node's Python process: ``pid`` itself, or (under the heaptrack script) its child."""
    import psutil

    p = psutil.Process(pid)
    end = time.monotonic() + timeout_s
    while wrapped and time.monotonic() < end:
        kids = [c for c in p.children(recursive=True) if "python" in c.name()]
        if kids:
            return kids[0]
        time.sleep(0.05)
    return p


def rss_anon_mb(pid: int) -> float | None:
    """The process's anonymous resident memory (``RssAnon`` of /proc/PID/status, MB = 1e6 bytes):
    its heaps, arenas and stacks. Unlike the whole RSS it does not move when the kernel evicts or
    re-reads the clean file pages of the process's libraries (a memory pressure elsewhere on the
    machine dropped the soak bridge's RSS by 68 MB in one minute, all of it file pages), so a leak
    shows in it and page-cache traffic does not. None where /proc has no such line."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        return None
    return None


def _end_started_nodes(workdir: Path, timeout_s: float = 10.0) -> None:
    """SIGINT to every child process of this one started for ``workdir`` (the nodes' parameters
    name files in it), SIGKILL to those still running ``timeout_s`` later. The soak's last
    cleanup: a signal can land inside ``NodeProcess``'s start, after its process was spawned and
    before the soak holds it (a SIGINT right after the controller's spawn left both nodes running)."""
    import signal

    import psutil

    kids = []
    for p in psutil.Process().children(recursive=True):
        try:
            if any(str(workdir) in a for a in p.cmdline()):
                kids.append(p)
        except psutil.Error:   # gone or a zombie: nothing to end
            pass
    for p in kids:
        try:
            p.send_signal(signal.SIGINT)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(kids, timeout=timeout_s)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=5.0)


def _interrupt(proc, timeout_s: float = 60.0) -> None:
    """SIGINT to ``proc`` (a psutil.Process) and wait for its exit (the heaptrack data flush)."""
    import signal

    import psutil

    try:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=timeout_s)
    except (psutil.NoSuchProcess, psutil.TimeoutExpired):
        pass


def run_soak(minutes: float, workdir: Path, seed: int = 0, change_s: float = 3.0, model_plant: bool = False,
             events_kinds: tuple[str, ...] = EVENT_KINDS, mem_every_s: float = 10.0,
             heaptrack: tuple[str, ...] = (), burst_node: bool = False, trace: bool = False) -> dict:
    """Run the soak for ``minutes`` (logs and summaries in ``workdir``); returns the figures.

    ``model_plant`` False: the plant is the bare URDF arm with payload changes of 0-3 kg (the
    shipped SVDKL model, trained with 5 kg and joint friction, is then a model of another plant:
    its swaps test the swap machinery, and its feed-forward error trips following-error faults).
    True: the plant the shipped model was trained for (config/scenario_vgain.yaml: 5 kg and
    its friction), payload changes within 5 +- 1.5 kg.

    ``change_s``: seconds between events (3 in the bench; 0.3 makes ten times as many in the
    same minutes, to find what grows); ``events_kinds``: which of :data:`EVENT_KINDS` to send
    (a trajectory every change, then one of the others drawn at random as before; a kind left
    out is skipped, so each kept kind comes as often as in the full soak); ``mem_every_s``: the
    RSS sampling period (s); ``heaptrack``: nodes ("controller", "bridge") to run under
    ``heaptrack -o <workdir>/<node>.heaptrack`` (native allocation stacks; RSS is then read from
    the node's Python process, and that process is sent SIGINT at the end, not the wrapper);
    ``burst_node``: False (default, since the ninth session) only a publisher, created on one node
    kept for the whole run and destroyed after its burst; True: a new node per bad-state burst (its
    publisher, rosout and parameter services all appear on the graph and go again; each new DDS
    participant leaves ~8 kB in every process of the domain, docs/safety.md); ``trace``: the bridge writes
    its per-step trace (``trace_path``: velocities, brakes, held commands) to
    ``<workdir>/bridge-trace.npz`` (about 70 bytes per step: 4 MB per minute)."""
    unknown = set(events_kinds) - set(EVENT_KINDS)
    if set(heaptrack) - {"controller", "bridge"}:
        raise ValueError(f"heaptrack: choose from controller, bridge; got {sorted(heaptrack)}")
    if unknown:
        raise ValueError(f"unknown soak events {sorted(unknown)}; choose from {list(EVENT_KINDS)}")
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64, Float64MultiArray, String
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    from dynlearn_ros.nodes import qos
    from dynlearn_ros.paths import resolve_model_dir

    spec = robot_spec(ROBOT)
    lim = spec.torque_limits
    rng = np.random.default_rng(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    model = resolve_model_dir(SHIPPED_MODEL)
    have_model = (model / "model.onnx").is_file()
    # ``started``: a signal or an error before the run's own try/finally (a SIGINT during the
    # nodes' or the driver's start-up left nodes running, orphaned) still ends every node started
    with ros_domain(workdir / "ros_log") as env, contextlib.ExitStack() as started:
        started.callback(_end_started_nodes, workdir)   # runs last: whatever the stops below missed
        rclpy.init()
        started.callback(rclpy.try_shutdown)
        node = rclpy.create_node("soak_driver")
        executor = rclpy.executors.SingleThreadedExecutor()
        executor.add_node(node)
        foreign = foreign_nodes(node, executor)
        if foreign:   # the soak's controller would refuse to control for the whole run (two publishers)
            raise RuntimeError(
                f"ROS_DOMAIN_ID {env['ROS_DOMAIN_ID']} (claimed for this soak) already has nodes of another process: "
                f"{', '.join(foreign)}; likely left running by a killed run (find them with `pgrep -af "
                "dynlearn_ros.nodes`) and end them, then run the soak again")
        summary = workdir / "controller.json"
        stats = workdir / "bridge.json"
        ctl = NodeProcess("computed_torque", {"robot": ROBOT, "summary_path": str(summary),
                                              "reference": "hold"}, env, workdir / "controller.log",
                          prefix=_heaptrack_prefix("controller", heaptrack, workdir))
        started.callback(ctl.stop)
        plant: dict = {}
        payload_range = (0.0, 3.0)
        if model_plant:
            from dynlearn_ros.scenarios.vgain_config import load_config

            plant = {**load_config().bridge_params(), "stepping": "realtime"}
            payload_range = (plant["payload_kg"] - 1.5, plant["payload_kg"] + 1.5)
        if trace:
            plant["trace_path"] = str(workdir / "bridge-trace.npz")
        br = NodeProcess("sim_bridge", {"robot": ROBOT, **plant, "stepping": "realtime", "stats_path": str(stats)},
                         env, workdir / "bridge.log",
                         prefix=_heaptrack_prefix("bridge", heaptrack, workdir))
        started.callback(br.stop)
        counts = {"commands": 0, "beyond_limits": 0, "non_finite": 0, "max_over_limit": 0.0}

        def on_cmd(m):
            tau = np.asarray(m.data)
            counts["commands"] += 1
            if not np.isfinite(tau).all():
                counts["non_finite"] += 1
                return
            r = float(np.max(np.abs(tau) / lim))
            counts["max_over_limit"] = max(counts["max_over_limit"], r)
            counts["beyond_limits"] += int(r > 1.0 + 1e-9)

        node.create_subscription(Float64MultiArray, "effort_controller/commands", on_cmd,
                                 QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
        traj_pub = node.create_publisher(JointTrajectory, "reference_trajectory", qos.COMMANDS)
        payload_pub = node.create_publisher(Float64, "/sim_bridge/payload_kg", 10)
        model_pub = node.create_publisher(String, qos.MODEL_UPDATES_TOPIC, qos.MODEL_UPDATES)
        procs = {"controller": _python_of(ctl.pid, "controller" in heaptrack),
                 "bridge": _python_of(br.pid, "bridge" in heaptrack)}
        mem: dict[str, list[tuple[float, float]]] = {k: [] for k in procs}
        anon: dict[str, list[tuple[float, float]]] = {k: [] for k in procs}
        # the controller's C heap from its /diagnostics (runtime/memory.py heap_stats): live blocks
        # and what the allocator keeps free, sampled with the RSS (a leak raises the first)
        heap_now: dict[str, float] = {}
        heap: dict[str, list[tuple[float, float]]] = {"in_use": [], "free": []}
        # each node's malloc arenas as the kernel sees them (runtime/memory.py arena_residency, read
        # from /proc/PID/smaps here, nothing in the node): the main arena's [heap], the thread
        # arenas' sum and the largest one (resident MB), and how many arenas
        arenas: dict[str, list[tuple[float, float]]] = {}

        def on_diag(m):
            for st in m.status:
                if st.name.endswith("computed torque"):
                    vals = {kv.key: kv.value for kv in st.values}
                    for k in heap:
                        if f"heap_{k}_mb" in vals:
                            heap_now[k] = float(vals[f"heap_{k}_mb"])

        node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
        events = {"trajectories": 0, "payload_changes": 0, "bad_state_bursts": 0, "model_announcements": 0}
        # when each perturbing event was sent (s since t0), for rss_trend's per-event attribution
        event_times: dict[str, list[float]] = {"payload": [], "bad_states": [], "model": []}
        t0 = time.monotonic()
        end = t0 + 60.0 * minutes
        next_change, next_mem = t0 + 10.0, t0
        bad_node = None
        # joint_states publishers at each memory sample taken >= 2 s after the last burst (a burst's
        # publisher is expected; any other second one would make the controller refuse to control)
        last_burst = -np.inf
        publishers = {"samples": 0, "max": 0, "extra_seen": []}
        try:
            while time.monotonic() < end:
                executor.spin_once(timeout_sec=0.01)
                now = time.monotonic()
                if ctl.poll() is not None or br.poll() is not None:
                    break
                if now >= next_mem:
                    for k, p in procs.items():
                        mem[k].append((now - t0, p.memory_info().rss / 1e6))
                        a = rss_anon_mb(p.pid)
                        if a is not None:
                            anon[k].append((now - t0, a))
                        r = arena_residency(p.pid)
                        if r is not None:
                            for part, v in (("main heap", r["heap_mb"]), ("thread arenas", sum(r["arena_mb"])),
                                            ("largest thread arena", max(r["arena_mb"], default=0.0)),
                                            ("arenas (count)", float(r["arenas"]))):
                                arenas.setdefault(f"{k} {part}", []).append((now - t0, v))
                    for k, v in heap_now.items():
                        heap[k].append((now - t0, v))
                    if now - last_burst >= 2.0 and now - t0 >= 5.0:   # after the bridge's discovery
                        pubs = state_publishers(node)
                        publishers["samples"] += 1
                        publishers["max"] = max(publishers["max"], len(pubs))
                        if len(pubs) > 1 and pubs not in publishers["extra_seen"]:
                            publishers["extra_seen"].append(pubs)
                    next_mem = now + mem_every_s
                if now >= next_change:
                    next_change = now + change_s
                    traj = _random_trajectory(rng, spec, JointTrajectory, JointTrajectoryPoint)
                    if "trajectory" in events_kinds:
                        traj_pub.publish(traj)
                        events["trajectories"] += 1
                    pick = rng.uniform()   # drawn in every case: the same seed, the same sequence
                    if pick < 0.3 and "payload" in events_kinds:
                        payload_pub.publish(Float64(data=float(rng.uniform(*payload_range))))
                        events["payload_changes"] += 1
                        event_times["payload"].append(round(now - t0, 2))
                    elif 0.3 <= pick < 0.5 and "bad_states" in events_kinds:
                        # a burst of bad states from a second publisher (20 ms): must be refused
                        # (the publisher is removed after the burst: while it exists the
                        # controller refuses to control, by design)
                        if bad_node is None:
                            bad_node = rclpy.create_node("soak_bad_states")
                        bad_pub = bad_node.create_publisher(JointState, "joint_states", 10)
                        msg = JointState()
                        msg.name = list(spec.joint_names)
                        msg.position = (spec.home + 1e3).tolist()
                        msg.velocity = [0.0] * spec.n
                        for _ in range(20):
                            bad_pub.publish(msg)
                            time.sleep(0.001)
                        bad_node.destroy_publisher(bad_pub)
                        if burst_node:
                            bad_node.destroy_node()
                            bad_node = None
                        events["bad_state_bursts"] += 1
                        event_times["bad_states"].append(round(now - t0, 2))
                        last_burst = time.monotonic()
                    elif 0.5 <= pick < 0.65 and have_model and "model" in events_kinds:
                        model_pub.publish(String(data=str(model)))
                        events["model_announcements"] += 1
                        event_times["model"].append(round(now - t0, 2))
        finally:
            alive = {"controller": ctl.poll() is None, "bridge": br.poll() is None}
            for k in heaptrack:   # SIGINT to the Python process itself: heaptrack then writes its file
                _interrupt(procs[k])
            rc = {"controller": ctl.stop(), "bridge": br.stop()}
            if bad_node is not None:
                bad_node.destroy_node()
            node.destroy_node()
            rclpy.try_shutdown()
    ctl_summary = json.loads(summary.read_text()) if summary.is_file() else {}
    br_stats = json.loads(stats.read_text()) if stats.is_file() else {}

    def slope(series):   # MB per minute over the second half (after warm-up)
        if len(series) < 4:
            return None
        s = np.array(series[len(series) // 2:])
        return float(np.polyfit(s[:, 0] / 60.0, s[:, 1], 1)[0])

    def series_summary(series):
        """first, last, the windows and the fit after the warm-up (faults/rss_trend.py), the samples"""
        return {"first": series[0][1] if series else None, "last": series[-1][1] if series else None,
                "trend": rss_trend(series), "series_s_mb": [[round(t, 1), round(x, 3)] for t, x in series]}

    def slope_spread(series):
        """Standard error of the second-half slope (MB/min, from the fit's residuals) and the
        slopes of its two quarters: a flat RSS has a slope within ~2 standard errors of 0 and
        quarter slopes of both signs or both near 0; a leak has both quarters positive."""
        s = np.array(series[len(series) // 2:])
        if len(s) < 6:
            return None
        x = s[:, 0] / 60.0
        h = len(s) // 2   # >= 3 samples per quarter
        quarters = [linear_slope(x[a:b], s[a:b, 1])[0] for a, b in ((0, h), (h, len(s)))]
        return {"stderr_mb_per_min": linear_slope(x, s[:, 1])[1], "quarter_slopes_mb_per_min": quarters}

    out = {
        "minutes": (time.monotonic() - t0) / 60.0, "minutes_planned": minutes, "model_plant": model_plant,
        "change_s": change_s, "event_kinds": list(events_kinds), "burst_node": burst_node,
        # glibc malloc tunables the nodes inherited (MALLOC_ARENA_MAX etc.; see docs/safety.md, soak)
        "malloc_env": {k: v for k, v in sorted(os.environ.items()) if k.startswith(("MALLOC_", "GLIBC_TUNABLES"))},
        "crashes": sum(not a for a in alive.values()) + sum(int(r not in (0, None)) for r in rc.values()),
        "alive_at_end": alive, "exit_codes": rc, **counts, "events": events,
        "joint_states_publishers": publishers, "event_times_s": event_times,
        "memory_mb": {k: {**series_summary(v), "max": max(x for _, x in v) if v else None,
                          "slope_mb_per_min_second_half": slope(v), "slope_spread": slope_spread(v)}
                      for k, v in mem.items()},
        # the anonymous part of the RSS (rss_anon_mb): the series the memory verdict reads
        "memory_anon_mb": {k: series_summary(v) for k, v in anon.items()},
        # the controller's C allocator (glibc mallinfo2, from its /diagnostics): live and kept-free MB
        "controller_heap_mb": {k: series_summary(v) for k, v in heap.items() if v},
        # each node's malloc arenas, resident MB (and their count), from its smaps
        "arenas_mb": {k: series_summary(v) for k, v in arenas.items()},
        "controller_counters": ctl_summary.get("counters", {}), "model_slot": ctl_summary.get("model_slot"),
        "bridge": {k: br_stats.get(k) for k in ("ticks", "deadline_miss_ratio", "command_losses", "brake_steps",
                                                 "stalls", "clamps", "max_abs_qd", "max_abs_qd_per_joint",
                                                 "velocity_stops", "velocity_stops_per_joint")},
    }
    return out
