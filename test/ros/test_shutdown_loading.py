"""SIGINT while the controller loads an announced model (issue 12 point 2; the 20-minute soak's
controller needed SIGKILL at the end, its log ending with a model announcement it was loading).

The model loads in the slot's worker thread. Before the fix the node waited 2 s for it and then
let the interpreter finalize with the thread still inside the load: a thread inside onnxruntime
while the interpreter tears down aborts the process ('terminate called without an active
exception', 5 of 8 tries in a plain script) or hangs it. Now the worker stops at its next stage,
and a load that outlives the wait ends the process without finalization, after the summary.

Event-driven: each step waits for the node's own log line, never for a fixed time, except the
SIGINT delays, which only choose where in the load the signal lands (any landing must be clean)."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

pytestmark = pytest.mark.ros

#: the bound on shutdown asserted here. What a user sees: ``ros2 launch`` sends SIGTERM 5 s after
#: its SIGINT and SIGKILL 5 s later, so a node that is not gone 10 s after SIGINT dies without its
#: summary. The node's own budget is SLOT_JOIN_S (2 s) + the executor's shutdown (<= 1 s) + writing
#: the summary and destroying the node (< 1 s on a quiet machine): ~4 s. The real-load case runs
#: five controllers that build onnxruntime sessions at once on 2 cores; under a loaded CI machine
#: that alone took > 2 s (session 7: one miss of a 7 s bound). So the bound is the SIGKILL
#: deadline less 1 s for this test's own polling and process start-up noise: a node over it would
#: have lost its summary under ``ros2 launch``.
SHUTDOWN_BOUND_S = 9.0


def _announce(ros_context, path: str):
    """Publish ``path`` on model_updates (reliable, transient-local: a controller that starts
    later still gets it); returns the test-side node to destroy."""
    import rclpy
    from std_msgs.msg import String

    from dynlearn_ros.nodes import qos

    node = rclpy.create_node(f"announcer_{os.getpid()}_{time.monotonic_ns()}", context=ros_context)
    pub = node.create_publisher(String, qos.MODEL_UPDATES_TOPIC, qos.MODEL_UPDATES)
    pub.publish(String(data=path))
    return node


def _assert_clean_within(proc, summary, bound_s, signalled_at=None):
    """``signalled_at``: the monotonic time the SIGINT was sent (default: now), so the bound
    counts from the signal even when other processes were waited for first."""
    t0 = time.monotonic() if signalled_at is None else signalled_at
    try:
        rc = proc.wait(timeout=30.0)
    except Exception as exc:  # noqa: BLE001 - report the log with the failure
        raise AssertionError(f"did not exit within 30 s of SIGINT\n{proc.output()}") from exc
    took = time.monotonic() - t0
    out = proc.output()
    assert rc == 0, f"exit {rc}\n{out}"
    assert "terminate called" not in out and "Traceback" not in out, out
    assert json.loads(summary.read_text())["node"] == "/computed_torque", out
    assert took <= bound_s, f"shutdown took {took:.1f} s (bound {bound_s} s)\n{out}"
    return took


def test_sigint_while_a_model_load_is_stuck_ends_bounded(start_node, ros_context, tmp_path):
    """The announced directory's metadata.json is a FIFO nobody writes: the loader blocks in
    open() for ever (a stalled disk). SIGINT must still end the node in bounded time, exit 0,
    summary written, the stuck load named in the log."""
    model = tmp_path / "stuck_model"
    model.mkdir()
    (model / "model.onnx").write_bytes(b"")
    os.mkfifo(model / "metadata.json")
    summary = tmp_path / "summary.json"
    proc = start_node("computed_torque", {"summary_path": str(summary)})
    assert proc.wait_for_output("robot=iiwa", 60.0, poll_s=0.005), proc.output()
    node = _announce(ros_context, str(model))
    try:
        assert proc.wait_for_output("model announced", 30.0, poll_s=0.005), proc.output()
        proc.proc.send_signal(signal.SIGINT)
        _assert_clean_within(proc, summary, SHUTDOWN_BOUND_S)
        assert "a model load was still running" in proc.output(), proc.output()
    finally:
        node.destroy_node()


@pytest.mark.parametrize("delays_s", [(0.0, 0.03, 0.1, 0.25, 0.5)])
def test_sigint_during_a_real_model_load_is_clean(start_node, ros_context, tmp_path, delays_s):
    """Five controllers load the shipped SVDKL model (0.2-1 s each, onnxruntime); each gets
    SIGINT at another moment after the announcement: before, inside and after the session build.
    Every one must exit 0 within the bound with its summary, no abort, no traceback."""
    from dynlearn_ros.paths import resolve_model_dir

    model = resolve_model_dir("svdkl_iiwa_sim")
    if not (model / "model.onnx").is_file():
        pytest.skip(f"shipped model missing: {model}")
    procs = []
    for i in range(len(delays_s)):
        summary = tmp_path / f"summary-{i}.json"
        procs.append((start_node("computed_torque", {"summary_path": str(summary)}), summary))
    for proc, _ in procs:
        assert proc.wait_for_output("robot=iiwa", 60.0, poll_s=0.005), proc.output()
    node = _announce(ros_context, str(model))
    try:
        sent = []
        for (proc, _), delay in zip(procs, delays_s, strict=True):
            assert proc.wait_for_output("model announced", 30.0, poll_s=0.005), proc.output()
            time.sleep(delay)
            proc.proc.send_signal(signal.SIGINT)
            sent.append(time.monotonic())
        for (proc, summary), t_sig in zip(procs, sent, strict=True):
            _assert_clean_within(proc, summary, SHUTDOWN_BOUND_S, signalled_at=t_sig)
    finally:
        node.destroy_node()
