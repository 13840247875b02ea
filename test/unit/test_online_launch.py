"""online:=true in the vgain_control graph (launch_graph.py): the trainer joins with the
controller's topics and model, the controller's realized-error sigma is on; refused without a
learned model to update; the default graph is unchanged (no trainer, option off)."""

import pytest

from dynlearn_ros.launch_graph import vgain_control


def _ctl_over(nodes):
    ctl = next(n for n in nodes if n.name == "computed_torque")
    return ctl.parameters[-1]


def test_online_adds_the_trainer_with_the_controllers_model_and_topics():
    nodes = vgain_control({"online": "true", "model_kind": "svdkl", "model_dir": "svdkl_iiwa_sim",
                           "use_sim": "false", "driver": "lbr"})
    names = [n.name for n in nodes]
    assert names == ["computed_torque", "trainer"]
    tr = nodes[-1]
    assert tr.module == "dynlearn_ros.nodes.trainer"
    assert tr.parameters[-1]["model_dir"] == "svdkl_iiwa_sim"
    assert tr.remappings == nodes[0].remappings and ("joint_states", "/lbr/joint_states") in tr.remappings
    assert _ctl_over(nodes)["residual_window_s"] == 0.1
    assert _ctl_over(nodes)["payload_margin_kg"] == 15.0


def test_online_with_the_acrkn_model():
    nodes = vgain_control({"online": "true", "model_kind": "acrkn", "trainer_model_kind": "acrkn",
                           "model_dir": "acrkn_iiwa_sim", "use_sim": "false", "driver": "lbr"})
    tr = nodes[-1]
    assert tr.name == "trainer" and tr.parameters[-1]["model_kind"] == "acrkn"
    with pytest.raises(ValueError, match="online:=true"):     # the trainer must update the controller's kind
        vgain_control({"online": "true", "model_kind": "acrkn", "model_dir": "acrkn_iiwa_sim"})


def test_default_graph_has_no_trainer_and_the_option_off():
    nodes = vgain_control({})
    assert [n.name for n in nodes] == ["sim_bridge", "computed_torque"]
    assert "residual_window_s" not in _ctl_over(nodes)
    assert "payload_margin_kg" not in _ctl_over(nodes)


def test_online_without_a_learned_model_is_refused():
    with pytest.raises(ValueError, match="online:=true"):
        vgain_control({"online": "true"})


def test_online_gives_the_trainer_the_controllers_urdf():
    # a version on the analytic base is checked against the controller's URDF (runtime/analytic_base.py):
    # the trainer must fit against the same file, so urdf_path:= reaches both nodes; without it neither
    # gets one (both use the packaged URDF)
    nodes = vgain_control({"online": "true", "model_kind": "svdkl", "model_dir": "svdkl_iiwa_sim",
                           "use_sim": "false", "driver": "lbr", "urdf_path": "/robots/my_iiwa.urdf"})
    assert _ctl_over(nodes)["urdf_path"] == "/robots/my_iiwa.urdf"
    assert nodes[-1].parameters[-1]["urdf_path"] == "/robots/my_iiwa.urdf"
    nodes = vgain_control({"online": "true", "model_kind": "svdkl", "model_dir": "svdkl_iiwa_sim",
                           "use_sim": "false", "driver": "lbr"})
    assert "urdf_path" not in nodes[-1].parameters[-1] and "urdf_path" not in _ctl_over(nodes)
