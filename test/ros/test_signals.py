"""Shutdown through run_node (issue 12 item 2, issue 13 item 8): any number of SIGINT / SIGTERM,
in quick succession, during start-up or while spinning, ends every node cleanly - exit code 0,
no 'terminate called' (the abort of a KeyboardInterrupt inside rclpy's shutdown), no Python
traceback - and the summary / stats JSON is written. The crash was seen in about one launch of
three, so every case runs three times (the three processes at once: more load, more races)."""

from __future__ import annotations

import json
import signal
import time

import pytest

pytestmark = pytest.mark.ros

READY = {"computed_torque": "robot=iiwa", "sim_bridge": "publishing"}
SUMMARY_PARAM = {"computed_torque": "summary_path", "sim_bridge": "stats_path"}
CASES = {
    "two_sigint": [signal.SIGINT, signal.SIGINT],
    "three_sigint": [signal.SIGINT, signal.SIGINT, signal.SIGINT],
    "sigterm": [signal.SIGTERM],
    "sigint_then_sigterm": [signal.SIGINT, signal.SIGTERM, signal.SIGINT],
}
REPEATS = 3


def _assert_clean(proc, summary):
    try:
        rc = proc.wait(timeout=20.0)
    except Exception as exc:  # noqa: BLE001 - report the log with the failure
        raise AssertionError(f"did not exit after the signals\n{proc.output()}") from exc
    out = proc.output()
    assert rc == 0, f"exit {rc}\n{out}"
    assert "terminate called" not in out and "Traceback" not in out, out
    assert json.loads(summary.read_text()), out


@pytest.mark.parametrize("node", ["computed_torque", "sim_bridge"])
@pytest.mark.parametrize("case", list(CASES))
def test_signals_while_spinning_end_cleanly(start_node, tmp_path, node, case):
    procs = []
    for i in range(REPEATS):
        summary = tmp_path / f"{node}-{case}-{i}.json"
        procs.append((start_node(node, {SUMMARY_PARAM[node]: str(summary)}), summary))
    for proc, _ in procs:
        assert proc.wait_for_output(READY[node], 60.0), proc.output()
    time.sleep(0.2)
    for sig in CASES[case]:   # in quick succession, to every process
        for proc, _ in procs:
            proc.proc.send_signal(sig)
        time.sleep(0.005)
    for proc, summary in procs:
        _assert_clean(proc, summary)


@pytest.mark.parametrize("node", ["computed_torque", "sim_bridge"])
@pytest.mark.parametrize("delay_s", [0.2, 0.6])
def test_a_signal_during_start_up_ends_the_process(start_node, tmp_path, node, delay_s):
    """0.2 s: still importing; 0.6 s: configuring (issue 13 item 8: this signal used to be lost)."""
    procs = []
    for i in range(REPEATS):
        summary = tmp_path / f"{node}-early-{i}.json"
        procs.append((start_node(node, {SUMMARY_PARAM[node]: str(summary)}), summary))
    t0 = time.monotonic()
    time.sleep(max(0.0, delay_s - (time.monotonic() - t0)))
    for proc, _ in procs:
        proc.proc.send_signal(signal.SIGINT)
    # the node is built even after an early signal (its configuration names the summary), so it
    # prints its ready line before it stops; the 20 s to exit count from there: the imports of a
    # cold start took 22 s here beside two busy helpers (load 10-14), which says nothing about
    # the signal. A process that exits first ends the wait at once (wait_for_output sees it).
    for proc, _ in procs:
        proc.wait_for_output(READY[node], 120.0)
    for proc, summary in procs:
        _assert_clean(proc, summary)


@pytest.mark.parametrize("node", ["computed_torque", "sim_bridge"])
def test_a_storm_of_signals_until_the_process_ends_is_clean(start_node, tmp_path, node):
    """A SIGINT every 10 ms until the process has gone: one of them lands while the interpreter
    finalizes, where Python has put back the default action for the signals it handled (exit -2;
    seen once in CI). The node must ignore them by then."""
    procs = []
    for i in range(REPEATS):
        summary = tmp_path / f"{node}-storm-{i}.json"
        procs.append((start_node(node, {SUMMARY_PARAM[node]: str(summary)}), summary))
    for proc, _ in procs:
        assert proc.wait_for_output(READY[node], 60.0), proc.output()
    end = time.monotonic() + 20.0
    while time.monotonic() < end and any(p.poll() is None for p, _ in procs):
        for proc, _ in procs:
            if proc.poll() is None:
                try:
                    proc.proc.send_signal(signal.SIGINT)
                except ProcessLookupError:
                    pass
        time.sleep(0.01)
    for proc, summary in procs:
        _assert_clean(proc, summary)
