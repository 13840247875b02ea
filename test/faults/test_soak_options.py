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



def test_a_short_soak_records_the_controller_s_c_heap_beside_its_rss(tmp_path):
    """A real soak (both nodes, events every 3 s, memory every 2 s, 24 s): the controller's C
    heap figures come from its /diagnostics (glibc's mallinfo2: live blocks and what the
    allocator keeps free), sampled with the RSS, for telling a leak from an arena's reuse in the
    soak's memory verdict. No crash, no command beyond the limits."""
    from dynlearn_ros.runtime.memory import heap_stats

    out = run_soak(0.4, tmp_path, mem_every_s=2.0)
    assert out["crashes"] == 0 and out["beyond_limits"] == 0 and out["non_finite"] == 0, out
    anon = out["memory_anon_mb"]["controller"]["series_s_mb"]
    assert len(anon) >= 5, anon
    if heap_stats() is None:
        pytest.skip("the C library has no mallinfo2: no heap figures to record")
    heap = out["controller_heap_mb"]
    in_use, free = heap["in_use"]["series_s_mb"], heap["free"]["series_s_mb"]
    # from the first /diagnostics on (~1 s after the node's start on a quiet machine, 10 s at load
    # average 20) every memory sample carries the figures
    assert in_use, ("no /diagnostics heap figures in the whole soak", anon)
    assert len(in_use) == sum(t >= in_use[0][0] for t, _ in anon) and len(free) == len(in_use), (in_use, anon)
    # live C blocks of a node with rclpy, numpy, Pinocchio and onnxruntime loaded: MBs (not compared
    # with the RSS: a large block glibc maps counts whole as in use while its untouched pages are
    # not resident)
    assert all(x > 1.0 for _, x in in_use) and all(x >= 0.0 for _, x in free), (in_use, free)
    # each node's malloc arenas from its smaps (runtime/memory.py arena_residency), every sample;
    # once the node runs (its first /diagnostics: the interpreter starting has one arena) the main
    # arena and at least one thread arena (the middleware's threads allocate), their resident MB;
    # and the controller's slot trims before each model load that follows a load in its own
    # process (each swap but a rollback and each refusal came from a request the worker took;
    # the soak's shipped models are no online versions, so the loader process hands none over
    # and every one of them loads in the controller's process: all but the first then trim;
    # runtime/slot.py trim_before_load, nodes/computed_torque.py _trim_due)
    running = in_use[0][0]
    for node in ("controller", "bridge"):
        count = out["arenas_mb"][f"{node} arenas (count)"]["series_s_mb"]
        heap_mb = out["arenas_mb"][f"{node} main heap"]["series_s_mb"]
        assert len(count) == len(heap_mb) == len(anon), (count, anon)
        assert all(x >= 2 for t, x in count if t >= running), count
        assert all(x > 1.0 for t, x in heap_mb if t >= running), heap_mb
    slot = out["model_slot"]
    loads = slot["model_swaps"] - slot["model_rollbacks"] + slot["model_refused"]
    assert loads - 1 <= slot["model_heap_trims"] <= loads, slot
