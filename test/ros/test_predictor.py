"""The predictor node in a real graph: sim_bridge (lockstep, 1 ms steps, a payload and friction)
<-> computed_torque (analytic, pick-and-place reference) and the predictor (shipped forward
model), each its own process; this test process listens and injects.

One graph, in order: predictions have the documented shapes, names and stamps; the bridge is
paused (SIGSTOP): the node flags the states stale in ~/status and /diagnostics and keeps
predicting past the last state, then recovers when the bridge resumes; an inverse model announced
on model_updates is ignored, a forward model (a copy of the shipped one with model_version 2) is
loaded, checked and swapped in; a NaN state and a state with unknown joints are refused and
counted, and the node goes on.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time

import numpy as np
import pytest

from dynlearn_ros.core.robots import robot_spec
from dynlearn_ros.launch_graph import LOCKSTEP_STALE_TIMEOUT_MS
from dynlearn_ros.paths import models_dir

pytestmark = [pytest.mark.ros, pytest.mark.sim]

SPEC = robot_spec("iiwa")
N = SPEC.n
H = 20
STEP_MS = 2.0    # every 2nd model step: exercises the decimation
MODEL = models_dir() / "acrkn_iiwa_fwd"


@pytest.mark.skipif(not (MODEL / "model.onnx").is_file(), reason="models/acrkn_iiwa_fwd not shipped")
def test_predictor_streams_flags_stale_recovers_and_swaps(ros_context, start_node, tmp_path):
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray, String
    from trajectory_msgs.msg import JointTrajectory

    from dynlearn_ros.nodes import qos
    from dynlearn_ros.nodes.predictor import STATUS_FIELDS

    summary = tmp_path / "predictor.json"
    pred = start_node("predictor", {"model_dir": "acrkn_iiwa_fwd", "horizon": H, "step_dt_ms": STEP_MS,
                                    "publish_rate_hz": 20.0, "stale_timeout_ms": 120.0, "max_gap_ms": 400.0,
                                    "summary_path": str(summary)})
    start_node("computed_torque", {"robot": "iiwa", "reference": "pick_place",
                                   "stale_timeout_ms": LOCKSTEP_STALE_TIMEOUT_MS})
    bridge = start_node("sim_bridge", {"robot": "iiwa", "stepping": "lockstep", "payload_kg": 3.0,
                                       "friction_viscous": [0.3], "friction_coulomb": [0.05]})
    node = rclpy.create_node("predictor_peer")
    preds: list[JointTrajectory] = []
    stds: list[Float64MultiArray] = []
    status: list[np.ndarray] = []
    diags: list = []
    last_state = [0.0]
    node.create_subscription(JointTrajectory, "/predictor/prediction", preds.append, qos.PREDICTIONS)
    node.create_subscription(Float64MultiArray, "/predictor/prediction_std", stds.append, qos.PREDICTIONS)
    node.create_subscription(Float64MultiArray, "/predictor/status", lambda m: status.append(np.array(m.data)),
                             qos.STATUS)
    node.create_subscription(DiagnosticArray, "/diagnostics",
                             lambda m: diags.extend(s for s in m.status if "forward prediction" in s.name), 10)
    node.create_subscription(JointState, "/joint_states",
                             lambda m: last_state.__setitem__(0, m.header.stamp.sec + 1e-9 * m.header.stamp.nanosec),
                             qos.SENSOR_DATA)
    updates = node.create_publisher(String, "/model_updates", qos.MODEL_UPDATES)
    ex = rclpy.executors.SingleThreadedExecutor()
    ex.add_node(node)
    field = {name: i for i, name in enumerate(STATUS_FIELDS)}

    def spin_until(pred_fn, timeout):
        end = time.monotonic() + timeout
        while not pred_fn():
            if time.monotonic() > end:
                return False
            ex.spin_once(timeout_sec=0.01)
        return True

    stopped = False
    try:
        # last_state: the stamp comparison below needs a state this process has seen itself (its
        # best-effort reader may match the bridge after the predictor's reliable one does)
        assert spin_until(lambda: len(preds) >= 3 and len(stds) >= 3 and status and last_state[0] > 0.0, 90.0), \
            pred.output() + bridge.output()

        # -- shapes, names, stamps ---------------------------------------------------------------
        msg, std = preds[-1], stds[-1]
        assert list(msg.joint_names) == list(SPEC.joint_names)
        assert len(msg.points) == H
        for k, pt in enumerate(msg.points, start=1):
            assert len(pt.positions) == N and len(pt.velocities) == N
            t = pt.time_from_start.sec + 1e-9 * pt.time_from_start.nanosec
            assert t == pytest.approx(k * STEP_MS * 1e-3, abs=1e-9)
            assert np.all(np.isfinite(pt.positions)) and np.all(np.isfinite(pt.velocities))
        stamp = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
        # the horizon starts at a state the bridge published: on its 1 ms grid, within a second of
        # the latest state this process has seen (its own subscription may lag or lead a little)
        assert abs(stamp - last_state[0]) < 1.0
        assert abs(stamp * 1e3 - round(stamp * 1e3)) < 1e-6
        # 40 ms ahead of an arm moving at <= 1.5 rad/s: the predicted positions stay within 0.2 rad
        # of the first point (0.06 rad is the most it can move; a diverging model drifts far more)
        assert np.max(np.abs(np.array(msg.points[-1].positions) - np.array(msg.points[0].positions))) < 0.2
        assert [d.size for d in std.layout.dim] == [H, 2, N]
        assert [d.label.split(":")[0] for d in std.layout.dim] == ["step", "field", "joint"]
        sd = np.array(std.data).reshape(H, 2, N)
        assert np.all(sd >= 0) and np.all(np.diff(sd[:, 0], axis=0) >= -1e-12)   # accumulated: non-decreasing
        def stamp_of(p):
            return p.header.stamp.sec + 1e-9 * p.header.stamp.nanosec

        # each forecast starts at the latest state: stamps never go back and move on with the plant
        # (a lockstep plant on a loaded machine may not step between two publications)
        first = stamp_of(preds[0])
        assert spin_until(lambda: stamp_of(preds[-1]) > first, 30.0), [stamp_of(p) for p in preds]
        stamps = [stamp_of(p) for p in preds]
        assert all(b >= a for a, b in zip(stamps, stamps[1:], strict=False)), stamps
        assert spin_until(lambda: status[-1][field["stale"]] == 0.0, 20.0)   # a loaded machine may pause the plant

        # -- stale: the bridge paused --------------------------------------------------------------
        n_preds = len(preds)
        os.kill(bridge.pid, signal.SIGSTOP)
        stopped = True
        assert spin_until(lambda: status and status[-1][field["stale"]] == 1.0, 10.0), pred.output()
        # still predicting while stale: horizons that start well after the last state (> 100 ms;
        # stale is flagged after 120 ms without a state, predictions stop after max_gap 400 ms)
        assert spin_until(lambda: any(p.header.stamp.sec + 1e-9 * p.header.stamp.nanosec > last_state[0] + 0.1
                                      for p in preds[n_preds:]), 10.0), pred.output()
        assert spin_until(lambda: any("STALE" in d.message for d in diags), 5.0), [d.message for d in diags]
        os.kill(bridge.pid, signal.SIGCONT)
        stopped = False
        assert spin_until(lambda: status[-1][field["stale"]] == 0.0, 20.0), pred.output()
        diags.clear()
        assert spin_until(lambda: any(kv.key == "recoveries" and int(kv.value) >= 1 for d in diags for kv in d.values),
                          5.0)

        # -- hot swap ------------------------------------------------------------------------------
        updates.publish(String(data="svdkl_iiwa_sim"))      # an inverse model: not for the predictor
        v2 = tmp_path / "fwd_v2"
        shutil.copytree(MODEL, v2)
        meta = json.loads((v2 / "metadata.json").read_text())
        meta["model_version"] = 2
        (v2 / "metadata.json").write_text(json.dumps(meta, indent=1))
        # model_updates keeps the last announcement only (depth 1: the newest model is what counts),
        # so v2 is announced once the predictor has handled this one (its log line), not after a
        # fixed sleep: 0.3 s was not enough once in CI (ignored_model_updates 0, the inverse
        # announcement replaced unread by v2's)
        assert spin_until(lambda: "is a inverse model, not for the predictor: ignored" in pred.output(), 30.0), \
            pred.output()
        updates.publish(String(data=str(v2)))
        assert spin_until(lambda: status[-1][field["model_version"]] == 2.0, 60.0), pred.output()
        n_preds = len(preds)
        assert spin_until(lambda: len(preds) >= n_preds + 3, 20.0)
        assert all(np.all(np.isfinite(p.points[-1].positions)) for p in preds[n_preds:])
        # the stamps never went back over the whole stream, the stale period included: its horizons
        # started past the last state by the wall time since it, and the lockstep plant resumed
        # from where it stood (its later horizons are withheld until they pass, withheld_behind)
        stamps = [stamp_of(p) for p in preds]
        assert all(b >= a for a, b in zip(stamps, stamps[1:], strict=False)), stamps
        # -- parameters: a sized one refused with its reason, a rate applied ----------------------
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        client = node.create_client(SetParameters, "/predictor/set_parameters")
        assert client.wait_for_service(timeout_sec=20.0)

        def set_param(name, value):
            fut = client.call_async(SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()]))
            assert spin_until(fut.done, 20.0)
            return fut.result().results[0]

        res = set_param("horizon", 5)
        assert not res.successful and "read-only" in res.reason and "sized once" in res.reason
        res = set_param("publish_rate_hz", -1.0)
        assert not res.successful and "publish_rate_hz" in res.reason
        assert set_param("publish_rate_hz", 20.0).successful
        n_preds = len(preds)
        assert spin_until(lambda: len(preds) > n_preds + 2, 20.0)

        # -- bad input: refused, counted, the node goes on ----------------------------------------
        # last: while two publish on joint_states the controller refuses to control (issue 13) and
        # the lockstep plant waits for it, so the graph may not resume after this
        bad = node.create_publisher(JointState, "/joint_states", qos.STATE_STREAM)
        assert spin_until(lambda: bad.get_subscription_count() >= 2, 20.0)
        rejected0 = status[-1][field["states_rejected"]]
        bad.publish(JointState(name=list(SPEC.joint_names), position=[float("nan")] * N, velocity=[0.0] * N,
                               effort=[0.0] * N))
        bad.publish(JointState(name=["elbow"], position=[0.0], velocity=[0.0], effort=[0.0]))
        assert spin_until(lambda: status[-1][field["states_rejected"]] >= rejected0 + 2, 20.0), pred.output()
        node.destroy_publisher(bad)
        n_status = len(status)
        assert spin_until(lambda: len(status) > n_status + 2, 20.0)   # it goes on publishing
        assert pred.poll() is None

    finally:
        if stopped:
            os.kill(bridge.pid, signal.SIGCONT)
        ex.remove_node(node)
        node.destroy_node()
    assert pred.stop() == 0
    s = json.loads(summary.read_text())
    assert s["rejected"].get("non_finite_state", 0) >= 1 and s["rejected"].get("unknown_names", 0) >= 1
    assert s["withheld_behind"] >= 0
    assert s["stale_episodes"] >= 1 and s["recoveries"] >= 1
    assert s["model_slot"]["model_swaps"] == 1 and s["model_version"] == 2
    assert s["ignored_model_updates"] == 1
    # forecasts of 20 points x 2 ms are scored at the horizons they reach (1 and 10 ms)
    assert set(s["online_score"]) == {"1ms", "10ms"} and s["online_score"]["1ms"]["n"] > 0


def test_predictor_refuses_a_step_the_model_cannot_make(start_node):
    """step_dt_ms not a whole multiple of the model's dt: start-up refused (exit 2) with the reason."""
    pred = start_node("predictor", {"model_dir": "acrkn_iiwa_fwd", "step_dt_ms": 1.5})
    assert pred.wait(timeout=90.0) == 2
    assert "not a whole multiple" in pred.output()
