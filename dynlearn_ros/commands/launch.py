"""``dynlearn-ros launch GRAPH [name:=value ...] [--duration S]``: start a launch graph without
launch_ros, each node its own process with standard ``--ros-args``.

The graph comes from :mod:`dynlearn_ros.launch_graph`, the same definition
``launch/<graph>.launch.py`` uses. The run stops ``--duration`` wall seconds after every node has logged its configuration
(process start-up and imports take a few seconds and do not count), when a required node exits
(every node of the graphs is required: the sim_bridge exits after ``sim_duration_s``, a node whose
start-up fails exits 2), or on Ctrl-C; the other nodes get SIGINT and write their summaries. The
exit code is 0 when every node exited 0, else 1, and each failed node's last log lines are
printed. A ``summary_dir`` that cannot be created is refused before any node starts. The run folder ``runs/<timestamp>-<graph>/`` holds each node's log, the
nodes' JSON and ``summary.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

from dynlearn_ros.bags.completeness import bag_summary, completeness_line
from dynlearn_ros.launch_graph import GRAPHS, NodeSpec, exit_reason, prepare_summary_dir, resolve_args
from dynlearn_ros.launch_ik import IK_DEMO_ARGS, ik_demo
from dynlearn_ros.nodes.runner import StopFlag
from dynlearn_ros.procs import ros_args

GRAPHS = {**GRAPHS, "ik_demo": (IK_DEMO_ARGS, ik_demo)}

STARTUP_LIMIT_S = 60.0  # --duration starts counting by then even if a node never logged


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("graph", choices=sorted(GRAPHS), help="launch graph to start")
    parser.add_argument("launch_args", nargs="*", metavar="name:=value",
                        help="launch arguments (see --show-args)")
    parser.add_argument("--duration", type=float, default=0.0,
                        help="stop this many wall-clock seconds after every node has started (logged its "
                        "configuration); 0: run until a node exits or Ctrl-C")
    parser.add_argument("--runs-root", type=Path, default=Path("runs"),
                        help="parent of the run folder (default: ./runs)")
    parser.add_argument("--show-args", action="store_true", help="list the graph's arguments and exit")
    parser.add_argument("--quiet", action="store_true", help="do not echo node output to the console")


def node_command(spec: NodeSpec) -> list[str]:
    """``python -m module --ros-args ...`` equivalent to launch_ros's Node(spec)."""
    files = [p for p in spec.parameters if not isinstance(p, dict)]
    params = {k: v for p in spec.parameters if isinstance(p, dict) for k, v in p.items()}
    return [*spec.prefix, sys.executable, "-m", spec.module,
            *ros_args(params, spec.remappings, spec.name, spec.namespace, files)]


def _pump(proc: subprocess.Popen, log, prefix: str, echo: bool, configured: threading.Event) -> None:
    for raw in iter(proc.stdout.readline, b""):
        if not configured.is_set() and b"[INFO]" in raw:
            configured.set()  # a node logs its configuration once its parameters are validated
        log.write(raw)
        log.flush()
        if echo:
            sys.stdout.write(f"[{prefix}] {raw.decode(errors='replace')}")
            sys.stdout.flush()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def summarize(graph: str, args: dict, run_dir: Path, exit_codes: dict, wall_s: float) -> dict:
    # the nodes write their summaries to the summary_dir argument (the run folder by default)
    src = Path(args["summary_dir"]).expanduser() if args.get("summary_dir") else run_dir
    ctl = _load(src / "computed_torque.json")
    bridge = _load(src / "sim_bridge.json")
    recorder = _load(src / "recorder.json")
    counters = dict(ctl.get("counters", {}))
    for key in ("clamps", "timeouts", "rejected_commands", "deadline_misses"):
        if key in bridge:
            counters[f"bridge_{key}"] = bridge[key]
    return {
        "graph": graph,
        "args": args,
        "robot": args.get("robot"),
        "duration_s": ctl.get("sim_time_s"),
        "wall_s": wall_s,
        "joint_names": ctl.get("joint_names"),
        "joint_rmse_rad": ctl.get("joint_rmse_rad"),
        "joint_max_abs_err_rad": ctl.get("joint_max_abs_err_rad"),
        "mean_kp": ctl.get("mean_kp"),
        "mean_std": ctl.get("mean_std"),
        "model_kind": ctl.get("model_kind"),
        "safety_counters": counters,
        "controller_tick_us": ctl.get("controller_tick_us"),
        "round_trip_us": bridge.get("round_trip_us"),
        "bag": bag_summary(recorder, bridge, ctl),
        "predictor": _predictor_figures(_load(src / "predictor.json")),
        "exit_codes": exit_codes,
        "run_dir": str(run_dir),
    }


def _predictor_figures(pred: dict) -> dict | None:
    """The predictor's figures for the run summary (None when it did not run)."""
    if not pred:
        return None
    keys = ("model_dir", "model_version", "published", "online_score", "state_us", "rollout_us", "stale_episodes",
            "recoveries", "rejected")
    out = {k: pred.get(k) for k in keys}
    out["states_observed"] = (pred.get("stream") or {}).get("observed")
    return out


def predictor_summary_lines(p: dict) -> list[str]:
    """The predictor's figures (:func:`_predictor_figures`) as the launch's closing text: what it
    published and observed, its online score per horizon (q RMSE mrad, 95 % band coverage) and
    its per-state / per-rollout cost (p50 / p99 us)."""
    def cost(d: dict | None) -> str:
        d = d or {}
        if d.get("p50") is None:
            return "-"
        return f"{d['p50']:.0f} / {d['p99']:.0f} us"

    lines = [f"  predictor: model {p.get('model_dir')} (version {p.get('model_version')}), "
             f"{p.get('published')} predictions published, {p.get('states_observed')} states observed, "
             f"rejected {p.get('rejected') or {}}, stale episodes {p.get('stale_episodes')}"]
    score = p.get("online_score") or {}
    if score:
        lines.append("    online score (q): " + ", ".join(
            f"{h} {1e3 * v['rmse_q_rad']:.2f} mrad cov {v['coverage95_q']:.2f}" for h, v in score.items()
            if "rmse_q_rad" in v))
    lines.append(f"    cost per state {cost(p.get('state_us'))}, per rollout {cost(p.get('rollout_us'))} (p50 / p99)")
    return lines


def run(ns: argparse.Namespace) -> int:
    decls, factory = GRAPHS[ns.graph]
    if ns.show_args:
        lines = []
        for a in decls:
            choices = f" (one of {', '.join(a.choices)})" if a.choices else ""
            lines.append(f"  {a.name}:={a.default!r}\n      {a.description}{choices}")
        try:
            print("\n".join(lines))
        except BrokenPipeError:  # e.g. piped into head
            pass
        return 0
    given = {}
    for item in ns.launch_args:
        if ":=" not in item:
            raise SystemExit(f"launch argument '{item}' must be name:=value")
        k, v = item.split(":=", 1)
        given[k] = v
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = (ns.runs_root / f"{stamp}-{ns.graph}").resolve()
    suffix = 1
    while run_dir.exists():
        run_dir = (ns.runs_root / f"{stamp}-{ns.graph}-{suffix}").resolve()
        suffix += 1
    given.setdefault("summary_dir", str(run_dir))
    try:
        args = resolve_args(decls, given)
        specs = factory(args)
        if args.get("summary_dir") != str(run_dir):
            prepare_summary_dir(args.get("summary_dir", ""))
    except (ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"dynlearn-ros launch {ns.graph}: {exc}") from exc
    run_dir.mkdir(parents=True)
    print(f"run folder: {run_dir}")

    procs: dict[str, tuple[subprocess.Popen, Path]] = {}
    required = {spec.name for spec in specs if spec.required}
    reported: set[str] = set()
    stop = StopFlag()   # not a threading.Event: a second Ctrl-C inside the first handler's set() deadlocked
    handlers = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    t0 = time.monotonic()
    ready: list[threading.Event] = []
    try:
        for spec in specs:
            log_path = run_dir / f"{spec.name}.log"
            cmd = node_command(spec)
            (run_dir / f"{spec.name}.cmd").write_text(" ".join(cmd) + "\n")
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)
            log = open(log_path, "wb")  # noqa: SIM115 - closed by the pump thread's end
            configured = threading.Event()
            threading.Thread(target=_pump, args=(proc, log, spec.name, not ns.quiet, configured),
                             daemon=True).start()
            procs[spec.name] = (proc, log_path)
            ready.append(configured)
        reason = "interrupted"
        t_ready = None
        while not stop.wait(0.01):  # poll fast: a node exiting stops the others within ~10 ms
            exited = [name for name, (p, _) in procs.items() if p.poll() is not None and name not in reported]
            for name in exited:
                reported.add(name)
                code = procs[name][0].returncode
                if name not in required:
                    print(f"node {name} exited (code {code}); not required, the launch goes on")
            ends = [name for name in exited if name in required]
            if ends:
                reason = "; ".join(exit_reason(name, procs[name][0].returncode) for name in ends)
                break
            now = time.monotonic()
            if t_ready is None and (all(e.is_set() for e in ready) or now - t0 > STARTUP_LIMIT_S):
                t_ready = now
            if ns.duration and t_ready is not None and now - t_ready >= ns.duration:
                reason = f"--duration {ns.duration:g} s reached"
                break
        print(f"stopping ({reason})")
    finally:
        for p, _ in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 15.0
        for p, _ in procs.values():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for s, h in handlers.items():
            signal.signal(s, h)
    wall_s = time.monotonic() - t0
    exit_codes = {name: p.returncode for name, (p, _) in procs.items()}
    summary = summarize(ns.graph, args, run_dir, exit_codes, wall_s)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    failed = {n: c for n, c in exit_codes.items() if c != 0}
    for name in failed:
        print(f"node {name} exited with code {failed[name]}; last lines of its log:\n"
              f"{_tail(procs[name][1])}", file=sys.stderr)
    _print_summary(summary)
    return 1 if failed else 0


def _print_summary(s: dict) -> None:
    print(f"\n{s['graph']}: robot={s['robot']} model={s['model_kind']} sim time={s['duration_s']} s "
          f"wall={s['wall_s']:.1f} s")
    if s.get("joint_rmse_rad"):
        names = s.get("joint_names") or [str(i) for i in range(len(s["joint_rmse_rad"]))]
        print(f"  {'joint':<18}{'rmse (mrad)':>12}{'max (mrad)':>12}{'mean K_P':>12}")
        for i, name in enumerate(names):
            print(f"  {name:<18}{1e3 * s['joint_rmse_rad'][i]:>12.3f}"
                  f"{1e3 * s['joint_max_abs_err_rad'][i]:>12.3f}{s['mean_kp'][i]:>12.2f}")
    print(f"  safety counters: {s['safety_counters']}")
    if s.get("predictor"):
        print("\n".join(predictor_summary_lines(s["predictor"])))
    if s.get("bag"):
        print(f"  bag: {s['bag']['path']} (messages per topic: {s['bag']['messages']})")
        print(completeness_line(s["bag"]))
    print(f"  summary: {s['run_dir']}/summary.json")
