"""The trainer node in the real graph (issue 10): sim_bridge (lockstep, a payload the shipped
model never saw) <-> computed_torque (shipped SVDKL or ac-RKN, realized-error sigma on) and the
trainer (the same model kind) in its own process. The trainer must learn from joint_states, announce an accepted version on
model_updates, and the running controller must swap it in (its ~/status model_version rises above
the shipped model's); bad joint states sent to the trainer are skipped and counted, not fatal.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest
from online_graph import start_online_graph

from dynlearn_ros.core.robots import robot_spec
from dynlearn_ros.core.status import split_status, status_width
from dynlearn_ros.paths import models_dir
from dynlearn_ros.runtime.metadata import ModelMetadata

pytestmark = [pytest.mark.ros, pytest.mark.sim]

SPEC = robot_spec("iiwa")
N = SPEC.n


@pytest.mark.parametrize("kind,model_dir", [("svdkl", "svdkl_iiwa_sim"), ("acrkn", "acrkn_iiwa_sim")])
def test_trainer_announces_a_version_the_controller_swaps_in(ros_context, start_node, tmp_path, kind, model_dir):
    from sensor_msgs.msg import JointState

    base_version = ModelMetadata.read(models_dir() / model_dir).model_version
    g = start_online_graph(start_node, tmp_path, kind, model_dir, "trainer_peer")
    ctl, trainer, peer, metrics = g.ctl, g.trainer, g.peer, g.metrics
    ctl_json, tr_json, out = g.ctl_json, g.tr_json, g.out_dir
    node, rows, spin_until = peer.node, peer.rows, peer.spin_until
    bad = node.create_publisher(JointState, "joint_states", 10)

    width = status_width(N)
    try:
        assert spin_until(lambda: node.count_publishers("/computed_torque/status") > 0
                          and node.count_publishers("/trainer/metrics") > 0, 60.0), ctl.output() + trainer.output()
        # a malformed and a NaN state for the trainer (the controller rejects them too, and counts),
        # sent before the bridge starts and from a publisher that then leaves: the controller
        # refuses to control while two publishers share joint_states (issue 13, item 3)
        assert spin_until(lambda: bad.get_subscription_count() >= 2, 30.0)
        msg = JointState(name=list(SPEC.joint_names[:3]), position=[0.0] * 3, velocity=[0.0] * 3)
        bad.publish(msg)
        msg = JointState(name=list(SPEC.joint_names), position=[float("nan")] * N, velocity=[0.0] * N,
                         effort=[0.0] * N)
        bad.publish(msg)
        spin_until(lambda: False, 1.0)   # let them arrive
        node.destroy_publisher(bad)
        bridge = start_node("sim_bridge", {"robot": "iiwa", "stepping": "lockstep", "duration_s": 600.0,
                                           "payload_kg": 12.0})
        ok = spin_until(lambda: bool(rows) and rows[-1].size == width
                        and rows[-1][width - 2] > base_version, 240.0)
        assert ok, f"no new model version in the controller\n{trainer.output()[-3000:]}\n{ctl.output()[-2000:]}"
        spin_until(lambda: False, 0.5)
        assert bridge.stop() == 0
    finally:
        peer.close()
    assert trainer.stop() == 0
    assert ctl.stop() == 0
    tr = json.loads(tr_json.read_text())
    summary = json.loads(ctl_json.read_text())
    assert tr["accepted"] >= 1 and tr["samples_seen"] >= 300, tr
    # the trainer skipped and counted the bad states (either as rejected by the mapper or as NaN)
    assert sum(tr["rejected_states"].values()) + tr["states"]["nonfinite"] >= 1, tr
    slot = summary["model_slot"]
    # every announced version loads and validates (no refusal but the plant check's); the plant
    # check may refuse an early version whose realized error on the controller's last 0.3 s is
    # above 2x the running model's on a joint - it works as designed then (in process, the ac-RKN
    # schedule of docs/results_closed_loop.md: 14-17 of ~160 versions), and a later one is swapped in
    assert slot["model_swaps"] >= 1 and slot["model_refused"] == slot.get("model_refused_plant_fit", 0), slot
    assert Path(slot["model_dir"]).parent == out, slot
    assert metrics and metrics[-1]["accepted"] >= 1
    st = split_status(np.array([r for r in rows if r.size == width]), N)
    assert st["model_version"].max() > base_version


def _custom_urdf(tmp_path: Path) -> Path:
    """The packaged iiwa URDF with link 4 at 2.8 kg instead of 2.7 (a user's own calibration):
    RNEA differs at the probe states by ~0.1 kg x g x lever (> 1e-2 N*m), far above the 1e-6
    relative probe tolerance, so the two URDFs are told apart."""
    text = Path(SPEC.urdf_path).read_text()
    i = text.index('<link name="lbr_iiwa_link_4">')
    j = text.index('<mass value="2.7"/>', i)
    path = tmp_path / "my_iiwa.urdf"
    path.write_text(text[:j] + '<mass value="2.8"/>' + text[j + len('<mass value="2.7"/>'):])
    return path


def _packaged_urdf_version(tmp_path: Path) -> str:
    """A version on the analytic base fitted against the *packaged* URDF (RNEA + a viscous friction
    of 0.3 N*m*s/rad, 400 rows around the model's training inputs): what a trainer left without
    urdf_path exports."""
    from dynlearn_ros.learning.online import OnlineConfig, OnlineLearner
    from dynlearn_ros.paths import resolve_model_dir

    lr = OnlineLearner(resolve_model_dir("svdkl_iiwa_sim"), tmp_path / "packaged",
                       OnlineConfig(batch=100, holdout=100, base="analytic"))
    nz = lr.meta.normalization
    rng = np.random.default_rng(0)
    x = np.asarray(nz["x_mean"]) + 0.5 * rng.normal(size=(400, 3 * N)) * np.asarray(nz["x_std"])
    for xi, yi in zip(x, lr.analytic_predict(x) - 0.3 * x[:, N:2 * N], strict=True):
        lr.add(xi, yi)
    res = lr.cycle()
    assert res.accepted and res.base == "analytic", res
    return res.path


def test_trainer_urdf_path_is_the_controllers_and_a_mismatch_is_refused(ros_context, start_node, tmp_path):
    # controller and trainer both on a custom URDF: the trainer's versions on the analytic base
    # (base:=analytic, analytic_var:=correction) carry that URDF's probe, so the controller swaps them in; a version fitted
    # against the packaged URDF, announced next, is refused as a URDF mismatch while control continues
    # The trainer also reads the controller's K_P ceiling for the arm term of those versions' bounds
    # (nodes/trainer.py ControllerCeiling): the controller's own k_max (here not its default) raised
    # by its payload floor (15 kg here), not the trainer's idea of it, and again when it changes.
    from rcl_interfaces.msg import Parameter as ParamMsg
    from rcl_interfaces.msg import ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters
    from std_msgs.msg import String

    from dynlearn_ros.nodes import qos
    from dynlearn_ros.nodes.trainer import controller_ceiling

    urdf = _custom_urdf(tmp_path)
    base_version = ModelMetadata.read(models_dir() / "svdkl_iiwa_sim").model_version
    foreign = _packaged_urdf_version(tmp_path)
    default = controller_ceiling({"robot": "iiwa", "urdf_path": str(urdf)}, SPEC.joint_names)
    k_max = default * np.linspace(1.5, 0.8, N)
    ceiling = controller_ceiling({"robot": "iiwa", "urdf_path": str(urdf), "k_max": k_max.tolist(),
                                  "payload_margin_kg": 15.0}, SPEC.joint_names)
    assert np.any(ceiling > k_max * 1.01) and np.any(ceiling == k_max)      # the floor raises some joints only
    g = start_online_graph(start_node, tmp_path, "svdkl", "svdkl_iiwa_sim", "trainer_urdf_peer",
                           trainer_params={"urdf_path": str(urdf), "base": "analytic", "analytic_var": "correction"},
                           urdf_path=str(urdf), k_max=k_max.tolist(), payload_margin_kg=15.0)
    ctl, trainer, peer = g.ctl, g.trainer, g.peer
    rows, spin_until = peer.rows, peer.spin_until
    width = status_width(N)
    try:
        announce = peer.node.create_publisher(String, qos.MODEL_UPDATES_TOPIC, qos.MODEL_UPDATES)
        assert spin_until(lambda: peer.node.count_publishers("/computed_torque/status") > 0
                          and peer.node.count_publishers("/trainer/metrics") > 0
                          and announce.get_subscription_count() > 0, 60.0), ctl.output() + trainer.output()
        bridge = start_node("sim_bridge", {"robot": "iiwa", "stepping": "lockstep", "duration_s": 600.0,
                                           "payload_kg": 5.0})
        ok = spin_until(lambda: bool(rows) and rows[-1].size == width and rows[-1][width - 2] > base_version, 240.0)
        assert ok, f"no version swapped in\n{trainer.output()[-3000:]}\n{ctl.output()[-2000:]}"
        ok = spin_until(lambda: g.metrics and g.metrics[-1].get("k_max") is not None, 60.0)
        assert ok, trainer.output()[-3000:]
        np.testing.assert_allclose(g.metrics[-1]["k_max"], ceiling, rtol=1e-12)
        # a run-time change of the controller's k_max reaches the trainer (its /parameter_events)
        k_max2 = 2.0 * k_max
        ceiling2 = controller_ceiling({"robot": "iiwa", "urdf_path": str(urdf), "k_max": k_max2.tolist(),
                                       "payload_margin_kg": 15.0}, SPEC.joint_names)
        setp = peer.node.create_client(SetParameters, "/computed_torque/set_parameters")
        arr = ParameterValue(type=ParameterType.PARAMETER_DOUBLE_ARRAY, double_array_value=k_max2.tolist())
        r = peer.call(setp, SetParameters.Request(parameters=[ParamMsg(name="k_max", value=arr)]))
        assert r.results[0].successful, r.results[0].reason
        ok = spin_until(lambda: np.allclose(g.metrics[-1].get("k_max") or 0.0, ceiling2, rtol=1e-12), 60.0)
        assert ok, (g.metrics[-1].get("k_max"), ceiling2, trainer.output()[-3000:])
        announce.publish(String(data=foreign))
        assert spin_until(lambda: "URDF mismatch" in ctl.output(), 60.0), ctl.output()[-3000:]
        n_rows = len(rows)
        assert spin_until(lambda: len(rows) > n_rows + 50, 60.0), "control stopped after the refusal"
        assert bridge.stop() == 0
    finally:
        peer.close()
    assert trainer.stop() == 0
    assert ctl.stop() == 0
    slot = json.loads(g.ctl_json.read_text())["model_slot"]
    assert slot["model_swaps"] >= 1 and slot["model_refused"] >= 1, slot
    assert Path(slot["model_dir"]).parent == g.out_dir, slot      # a trainer's version runs, not the foreign one
    meta = ModelMetadata.read(Path(slot["model_dir"]))
    assert meta.base["kind"] == "analytic" and meta.base["urdf"] == str(urdf), meta.base
    # analytic_var:=correction reached the learner: the version schedules with this plant's bounds
    assert meta.sigma_bounds.source.startswith("online correction") and max(meta.sigma_bounds.sigma_n) == 0.0
    assert "E_fix" in meta.sigma_bounds.source                    # the arm term was on, with the controller's ceiling
    recorded = np.asarray(meta.metrics["online"]["config"]["k_max"])
    assert np.allclose(recorded, ceiling2, rtol=1e-12) or np.allclose(recorded, ceiling, rtol=1e-12), recorded
    line = next(ln for ln in ctl.output().splitlines() if "URDF mismatch" in ln)
    assert str(urdf) in line and "urdf_path" in line, line       # names the controller's URDF and the fix


def test_trainer_sigkill_mid_export_leaves_whole_models_and_control_runs(ros_context, start_node, tmp_path):
    # the trainer is killed (SIGKILL) while one of its exports is being written: the moment is
    # chosen by watching for the model-directory contract's hidden temporary directory (.vNNNN.*,
    # runtime/model_store.py), so the kill lands inside an export by construction, not by timing.
    # Then: every visible version is a whole, valid model; the controller keeps controlling (its
    # status rows go on, the bridge keeps stepping) on the version it runs.
    from dynlearn_ros.runtime.validate import open_model_dir

    base_version = ModelMetadata.read(models_dir() / "svdkl_iiwa_sim").model_version
    g = start_online_graph(start_node, tmp_path, "svdkl", "svdkl_iiwa_sim", "trainer_kill_peer")
    ctl, trainer, peer, out = g.ctl, g.trainer, g.peer, g.out_dir
    rows, spin_until = peer.rows, peer.spin_until
    width = status_width(N)
    try:
        assert spin_until(lambda: peer.node.count_publishers("/computed_torque/status") > 0
                          and peer.node.count_publishers("/trainer/metrics") > 0, 60.0), ctl.output() + trainer.output()
        bridge = start_node("sim_bridge", {"robot": "iiwa", "stepping": "lockstep", "duration_s": 600.0,
                                           "payload_kg": 12.0})
        assert spin_until(lambda: bool(rows) and rows[-1].size == width and rows[-1][width - 2] > base_version,
                          240.0), f"no version swapped in\n{trainer.output()[-3000:]}"
        hidden = lambda: [p for p in out.glob(".v[0-9][0-9][0-9][0-9].*") if p.is_dir()]  # noqa: E731
        left = []
        for _ in range(20):   # freeze the trainer while an export is under way; if it finished in the
            assert spin_until(lambda: bool(hidden()), 120.0), "no export seen in progress"   # gap, go on
            trainer.proc.send_signal(signal.SIGSTOP)
            left = hidden()
            if left:
                break
            trainer.proc.send_signal(signal.SIGCONT)
        trainer.proc.kill()
        trainer.proc.wait(timeout=10.0)
        n_rows = len(rows)
        assert spin_until(lambda: len(rows) > n_rows + 200, 60.0), "control stopped with the trainer"
        assert bridge.stop() == 0
    finally:
        peer.close()
    assert trainer.proc.returncode == -9
    assert ctl.stop() == 0
    versions = sorted(p for p in out.glob("v[0-9][0-9][0-9][0-9]") if p.is_dir())
    assert versions
    for v in versions:      # whole: the schema, the graph, the golden replay (analytic ones with the URDF)
        open_model_dir(v, urdf=str(SPEC.urdf_path))
    # the half-written one was never published; the kill did land inside an export (its directory is
    # still there, hidden; a restarted trainer clears it: test_online_kill.py)
    assert left and all(p.name.startswith(".") for p in left), left
    slot = json.loads(g.ctl_json.read_text())["model_slot"]
    assert slot["model_swaps"] >= 1 and slot["model_refused"] == 0, slot
