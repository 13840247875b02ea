"""computed_torque's run-time parameters through the real parameter services (as `ros2 param set`
calls them), the controller in its own process (issue 12 item 1, issue 13 item 9).

The test node plays the driver: it publishes joint states at home (each one is a tick) and reads
~/status. Gains in fixed mode make K_P visible exactly: K_P = k_max on every joint.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from fakes import TestPeer

from dynlearn_ros.core.robots import robot_spec
from dynlearn_ros.core.status import split_status
from dynlearn_ros.paths import models_dir

pytestmark = pytest.mark.ros

SPEC = robot_spec("iiwa")
N = SPEC.n
START = {"k_min": [50.0], "k_max": [100.0], "zeta": [1.0], "gain_mode": "fixed", "reference": "hold",
         "status_decimation": 1, "stale_timeout_ms": 5000.0}


class Peer(TestPeer):
    """The driver (states at home, each one a tick), a reader of ~/status and a parameter
    client of /computed_torque."""

    def __init__(self):
        from rcl_interfaces.srv import GetParameters, SetParameters

        super().__init__("param_peer")
        self.joint_state_publisher(10)
        self.record_status()
        self.set_cli = self.node.create_client(SetParameters, "/computed_torque/set_parameters")
        self.get_cli = self.node.create_client(GetParameters, "/computed_torque/get_parameters")
        self.k = 0

    def tick(self, count=5):
        """Publish ``count`` states at home (1 ms apart in stamp time), each after the row of the
        one before (lockstep, as the bridge runs): a state the controller's sensor-data queue
        dropped on a loaded machine would read as a command held 2 periods and switch on the
        late law, which lowers the wrist's K_D (seen in CI: K_D 0.65 at joint 7 after k_max 80)."""
        for _ in range(count):
            target = len(self.rows) + 1
            self.k += 1
            self.pub.publish(self.joint_state(SPEC.joint_names, SPEC.home, stamp_ns=self.k * 1_000_000))
            assert self.spin_until(lambda target=target: len(self.rows) >= target, 5.0), f"no status row for state {self.k}"
        return split_status(np.array(self.rows[-1]), N)

    def set(self, **values):
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        req = SetParameters.Request(parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()])
        fut = self.set_cli.call_async(req)
        assert self.spin_until(fut.done, 10.0), "set_parameters did not answer"
        return fut.result().results

    def get(self, name):
        from rcl_interfaces.srv import GetParameters
        from rclpy.parameter import parameter_value_to_python

        fut = self.get_cli.call_async(GetParameters.Request(names=[name]))
        assert self.spin_until(fut.done, 10.0)
        return parameter_value_to_python(fut.result().values[0])


@pytest.fixture
def peer(ros_context):
    p = Peer()
    yield p
    p.close()


def _ready(peer, ctl):
    assert peer.spin_until(lambda: peer.pub.get_subscription_count() > 0 and peer.set_cli.service_is_ready()
                           and peer.node.count_publishers("/computed_torque/status") > 0, 20.0), ctl.output()


def test_parameters_applied_between_ticks_or_refused_with_the_reason(peer, start_node, tmp_path):
    summary = tmp_path / "summary.json"
    ctl = start_node("computed_torque", {**START, "summary_path": str(summary)})
    _ready(peer, ctl)
    assert peer.spin_until(lambda: bool(peer.tick(1)["kp"].size) and np.allclose(peer.tick(1)["kp"], 100.0), 10.0)

    # applied: visible in ~/status within a few ticks (fixed mode: K_P = k_max, K_D = zeta sqrt(K_P))
    (res,) = peer.set(k_max=[80.0])
    assert res.successful, res.reason
    st = peer.tick(3)
    np.testing.assert_allclose(st["kp"][0], 80.0)
    np.testing.assert_allclose(st["kd"][0], np.sqrt(80.0))
    assert peer.get("k_max") == [80.0]

    # refused: the reason names the parameter; the status and the parameter keep the old value
    refusals = [
        ({"k_min": [0.0], "k_max": [0.0]}, "k_max"),
        ({"gain_mode": "bogus"}, "gain_mode"),
        ({"k_max": [100.0, 200.0]}, "expected 1 or 7 values"),
        ({"k_max": [10.0]}, "k_min must be <= k_max"),
        ({"model_kind": "foo"}, "model_kind"),
        ({"torque_limits": [1000.0]}, "torque_limits"),
        ({"payload_margin_kg": 30.0}, "cannot hold it"),   # 30 kg x 9.02 N*m/kg > A2's 176 N*m
        ({"robot": "panda"}, "read-only at run time (restart needed)"),
        ({"control_period_s": 0.002}, "read-only at run time (restart needed)"),
        ({"model_loader": "thread"}, "read-only at run time (restart needed)"),
        ({"model_kind": "svdkl", "model_dir": "no_such_model"}, "no_such_model"),
    ]
    for values, text in refusals:
        results = peer.set(**values) if len(values) == 1 else [_atomic(peer, values)]
        assert not results[0].successful and text in results[0].reason, (values, results[0].reason)
        st = peer.tick(2)
        np.testing.assert_allclose(st["kp"][0], 80.0)
    assert peer.get("k_max") == [80.0] and peer.get("gain_mode") == "fixed"
    assert peer.get("model_kind") == "analytic" and peer.get("robot") == "iiwa"

    # a whole gain set at once, and back to the schedule: K_P at the analytic std (10 = sigma_f)
    res = _atomic(peer, {"gain_mode": "scheduled", "k_min": [20.0], "k_max": [60.0]})
    assert res.successful, res.reason
    st = peer.tick(3)
    np.testing.assert_allclose(st["kp"], 20.0 + (1.0 - np.exp(-3.0)) * 40.0, rtol=1e-12)
    assert ctl.stop() == 0
    out = ctl.output()
    assert "parameter k_max: [100.0] -> [80.0]" in out and "parameter change refused" in out
    assert json.loads(summary.read_text())["counters"]["ticks"] >= 20


def _atomic(peer, values):
    """Several parameters in one atomic request (as a parameter file or a GUI sends them)."""
    from rcl_interfaces.srv import SetParametersAtomically
    from rclpy.parameter import Parameter

    cli = peer.node.create_client(SetParametersAtomically, "/computed_torque/set_parameters_atomically")
    assert peer.spin_until(cli.service_is_ready, 10.0)
    fut = cli.call_async(SetParametersAtomically.Request(
        parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()]))
    assert peer.spin_until(fut.done, 10.0)
    peer.node.destroy_client(cli)
    return fut.result().result


def test_model_parameters_load_through_the_slot(peer, start_node, tmp_path):
    """model_kind / model_dir: accepted when the directory holds a model, loaded off the tick,
    swapped in (~/status model_swaps); a model that fails its checks is refused with a log line,
    the running model stays and the parameters name it again."""
    corrupt = tmp_path / "corrupt"
    shutil.copytree(models_dir() / "svdkl_iiwa_sim", corrupt)
    (corrupt / "model.onnx").write_bytes(b"\0" * 64)
    summary = tmp_path / "summary.json"
    ctl = start_node("computed_torque", {**START, "gain_mode": "scheduled", "summary_path": str(summary)})
    _ready(peer, ctl)
    peer.tick(2)
    res = _atomic(peer, {"model_kind": "svdkl", "model_dir": "svdkl_iiwa_sim"})
    assert res.successful, res.reason
    assert peer.spin_until(lambda: peer.tick(1)["model_swaps"] == 1, 30.0), ctl.output()
    (res,) = peer.set(model_dir=str(corrupt))
    assert res.successful, res.reason   # the files exist; the load then fails in the worker
    assert peer.spin_until(lambda: "refused" in ctl.output() and peer.get("model_dir") == "svdkl_iiwa_sim", 30.0), \
        ctl.output()
    st = peer.tick(3)
    assert st["model_swaps"] == 1 and st["mode"] == 0.0
    assert ctl.stop() == 0
    s = json.loads(summary.read_text())
    assert s["model_kind"] == "svdkl" and s["model_slot"]["model_refused"] == 1
    assert s["model_slot"]["model_swaps"] == 1 and s["counters"]["model_fallback"] == 0
