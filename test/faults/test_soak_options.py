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

