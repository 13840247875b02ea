"""bench soak's options for finding a grower (--events, --change-s, --mem-every-s, --heaptrack,
--trace): bad values are refused before any node starts, with one line and exit 2 (docs/safety.md,
the CLI's rule)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dynlearn_ros.faults.soak import EVENT_KINDS, run_soak


def test_unknown_event_kind_is_refused_before_anything_starts(tmp_path):
    with pytest.raises(ValueError, match="unknown soak events"):
        run_soak(0.01, tmp_path, events_kinds=("trajectory", "meteor"))
    assert not (tmp_path / "ros_log").exists()   # no domain claimed, no node started
    assert set(EVENT_KINDS) == {"trajectory", "payload", "bad_states", "model"}


def test_heaptrack_of_an_unknown_node_is_refused_before_anything_starts(tmp_path):
    with pytest.raises(ValueError, match="heaptrack"):
        run_soak(0.01, tmp_path, heaptrack=("bridge", "planner"))
    assert not (tmp_path / "ros_log").exists()


@pytest.mark.parametrize("args", [["--events", "model,meteor"], ["--change-s", "0"], ["--mem-every-s", "-1"],
                                  ["--heaptrack", "planner"], ["--heaptrack", "bridge"],   # no --workdir
                                  ["--trace"]])   # no --workdir
def test_bench_soak_bad_option_is_one_line_exit_2(args):
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, "-m", "dynlearn_ros.cli", "bench", "soak", "--minutes", "0.01", *args],
                       capture_output=True, text=True, cwd=root, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr


def _soak_nodes(workdir: Path) -> list:
    """Node processes started for the soak in ``workdir`` (their parameters name its files)."""
    import psutil

    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(str(workdir) in a for a in (p.info["cmdline"] or [])) and "dynlearn_ros.nodes." in " ".join(
                    p.info["cmdline"]):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


@pytest.mark.ros
@pytest.mark.parametrize("delay_s", [0.0, 1.5])
def test_a_signal_during_the_soak_start_leaves_no_node_running(tmp_path, delay_s):
    """SIGINT once the controller is spawned (0 s: while the bridge and the driver node are being
    started, where it once left both nodes running, orphaned; 1.5 s: a later moment of the
    start or of the run): the command ends and every node it started ends with it."""
    import signal
    import time

    import psutil

    root = Path(__file__).resolve().parents[2]
    work = tmp_path / "soak"
    cli = subprocess.Popen([sys.executable, "-m", "dynlearn_ros.cli", "bench", "soak", "--minutes", "1",
                            "--events", ",", "--workdir", str(work)], cwd=root,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 120.0      # imports on a loaded machine: tens of seconds
        while not (work / "controller.log").exists() and cli.poll() is None and time.monotonic() < end:
            time.sleep(0.01)
        assert (work / "controller.log").exists(), "the soak never started its controller"
        time.sleep(delay_s)
        cli.send_signal(signal.SIGINT)
        cli.wait(timeout=60)     # NodeProcess.stop: 10 s per node before SIGKILL, then the domain
    finally:
        if cli.poll() is None:
            cli.kill()
    # the command has returned, so its cleanup ran: a node still alive now is an orphan (waited
    # for briefly only because a SIGKILLed child can take a moment to be reaped)
    left = _soak_nodes(work)
    gone, alive = psutil.wait_procs(left, timeout=5.0)
    for p in alive:
        p.kill()
    assert not alive, [" ".join(p.cmdline()[:4]) for p in alive]
