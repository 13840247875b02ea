"""Launch definition and parameter files: consistent with the nodes that read them."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
import yaml

from dynlearn_ros.commands.launch import node_command
from dynlearn_ros.launch_graph import DRIVERS, VGAIN_ARGS, resolve_args, vgain_control
from dynlearn_ros.paths import share_dir

ROOT = share_dir()


def declared_parameters(node_file: str) -> set[str]:
    """Parameter names a node declares: its spec table (``dynlearn_ros.core.config`` style)."""
    from dynlearn_ros.core.config import COMPUTED_TORQUE_SPEC
    from dynlearn_ros.nodes.ik import IK_SPEC
    from dynlearn_ros.nodes.scenario_recorder import RECORDER_SPEC
    from dynlearn_ros.nodes.sim_bridge_params import BRIDGE_SPEC

    specs = {"computed_torque.py": COMPUTED_TORQUE_SPEC, "sim_bridge.py": BRIDGE_SPEC,
             "scenario_recorder.py": RECORDER_SPEC, "ik.py": IK_SPEC}
    return {s.name for s in specs.get(node_file, ())}


def ros_parameter_files() -> list[str]:
    """config/*.yaml files in ROS parameter-file form (node key -> ros__parameters)."""
    return sorted(p.name for p in (ROOT / "config").glob("*.yaml") if "ros__parameters" in p.read_text())


@pytest.mark.parametrize("cfg", ros_parameter_files())
def test_config_keys_are_declared_parameters(cfg):
    """rclpy silently ignores an undeclared key in a parameter file: catch typos here."""
    data = yaml.safe_load((ROOT / "config" / cfg).read_text())
    for key, body in data.items():
        node = key.split("/")[-1]
        params = set(body["ros__parameters"])
        declared = declared_parameters(f"{node}.py")
        assert declared, f"no declarations found for {node}"
        assert params <= declared, f"{cfg}: {sorted(params - declared)} not declared by {node}"


def test_launch_file_uses_the_shared_definition():
    tree = ast.parse((ROOT / "launch" / "vgain_control.launch.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert {"VGAIN_ARGS", "vgain_control", "DeclareLaunchArgument", "Node"} <= imported
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description"
               for n in tree.body)


def test_every_argument_has_a_description_and_valid_default():
    for a in VGAIN_ARGS:
        assert len(a.description) > 15, a.name
        assert not a.choices or a.default in a.choices, a.name
    resolve_args(VGAIN_ARGS, {})  # defaults are consistent


def test_sim_graph_has_bridge_and_controller_on_the_same_topics():
    specs = vgain_control({"robot": "panda", "payload_kg": "2.5", "namespace": "arm", "stepping": "realtime"})
    assert [s.name for s in specs] == ["sim_bridge", "computed_torque"]
    assert all(s.namespace == "arm" and s.remappings == [] for s in specs)
    assert specs[0].parameters[-1]["payload_kg"] == 2.5
    assert "stale_timeout_ms" not in specs[1].parameters[-1]  # realtime: the configured timeout
    lock = vgain_control({"stepping": "lockstep"})
    assert lock[1].parameters[-1]["stale_timeout_ms"] >= 1000.0
    # the default a first user gets is lockstep (docs/safety.md)
    assert vgain_control({})[1].parameters[-1]["stale_timeout_ms"] == lock[1].parameters[-1]["stale_timeout_ms"]
    assert Path(specs[1].parameters[0]).name == "computed_torque_panda.yaml"
    cmd = node_command(specs[1])
    assert cmd[cmd.index("--ros-args") + 1:][:4] == ["-r", "__node:=computed_torque", "-r", "__ns:=/arm"]
    assert "robot:=panda" in cmd


@pytest.mark.parametrize("driver", sorted(DRIVERS))
def test_real_driver_graph_starts_no_bridge_and_remaps(driver):
    robot = "panda" if driver == "franka" else "iiwa"
    specs = vgain_control({"use_sim": "false", "driver": driver, "robot": robot})
    assert [s.name for s in specs] == ["computed_torque"]
    state, cmd = DRIVERS[driver]
    assert dict(specs[0].remappings) == {"joint_states": state, "effort_controller/commands": cmd}
    over = vgain_control({"use_sim": "false", "driver": driver, "robot": robot, "joint_states_topic": "/my/js"})
    assert dict(over[0].remappings)["joint_states"] == "/my/js"


def test_rt_priority_runs_both_nodes_under_chrt():
    assert all(s.prefix == [] for s in vgain_control({}))
    specs = vgain_control({"rt_priority": "50"})
    assert all(s.prefix == ["chrt", "-f", "50"] for s in specs)
    cmd = node_command(specs[1])
    assert cmd[:3] == ["chrt", "-f", "50"] and cmd[3] == sys.executable
    for bad in ("100", "-1", "high"):
        with pytest.raises(ValueError, match="rt_priority"):
            vgain_control({"rt_priority": bad})


def test_launch_choices_come_from_the_robot_table():
    from dynlearn_ros.core.robots import robot_names, variant_names

    args = {a.name: a for a in VGAIN_ARGS}
    assert args["robot"].choices == robot_names(simulated_only=True) == ("iiwa", "panda")
    assert set(args["robot_variant"].choices) == {"", *variant_names()}
    src = (ROOT / "launch" / "vgain_control.launch.py").read_text()
    assert "iiwa7" not in src and '"panda"' not in src  # no copied choice lists in the launch file


@pytest.mark.parametrize(("driver", "robot", "variant", "torque", "rate", "names"), [
    # lbr_fri_ros2_stack's default model is the iiwa 7: its limits unless told otherwise
    ("lbr", "iiwa", "", [176, 176, 110, 110, 110, 40, 40], None, "lbr_A1"),
    ("lbr", "iiwa", "iiwa14", [320, 320, 176, 176, 110, 40, 40], None, "lbr_A1"),
    ("franka", "panda", "", [87, 87, 87, 87, 12, 12, 12], [1000.0] * 7, "fr3_joint1"),
    ("franka", "panda", "panda", [87, 87, 87, 87, 12, 12, 12], [1000.0] * 7, "fr3_joint1"),
    ("generic", "iiwa", "", [176, 176, 110, 110, 110, 40, 40], None, None),
])
def test_real_driver_gets_manufacturer_limits_and_joint_names(driver, robot, variant, torque, rate, names):
    (ctl,) = vgain_control({"use_sim": "false", "driver": driver, "robot": robot, "robot_variant": variant})
    over = ctl.parameters[-1]
    assert over["torque_limits"] == torque  # never the URDF's 300 N*m
    assert over.get("torque_rate_limit") == rate
    assert (over["joint_names"][0] if "joint_names" in over else None) == names
    assert all(not str(p).endswith(("driver_lbr.yaml", "driver_franka.yaml")) for p in ctl.parameters)


def test_simulation_keeps_no_rate_limit_unless_a_variant_is_asked_for():
    """The simulated closed-loop figures were made without a torque-rate limit."""
    sim = vgain_control({"robot": "panda"})[1].parameters[-1]
    assert "torque_rate_limit" not in sim and sim["torque_limits"] == [87, 87, 87, 87, 12, 12, 12]
    asked = vgain_control({"robot": "panda", "robot_variant": "fr3"})[1].parameters[-1]
    assert asked["torque_rate_limit"] == [1000.0] * 7


def test_bad_robot_variant_or_driver_combination_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="no variant 'fr3'"):
        vgain_control({"robot": "iiwa", "robot_variant": "fr3"})
    with pytest.raises(ValueError, match="no joint-name mapping for driver 'franka'"):
        vgain_control({"use_sim": "false", "driver": "franka", "robot": "iiwa"})


def test_urdf_path_argument_reaches_the_controller_and_a_gains_file_keeps_its_own_limits(tmp_path):
    (ctl,) = vgain_control({"use_sim": "false", "urdf_path": "/robots/mine.urdf"})
    assert ctl.parameters[-1]["urdf_path"] == "/robots/mine.urdf"
    gains = tmp_path / "gains.yaml"
    gains.write_text("/**/computed_torque:\n  ros__parameters:\n    torque_limits: [50.0]\n")
    (ctl,) = vgain_control({"use_sim": "false", "driver": "lbr", "gains_file": str(gains)})
    assert ctl.parameters[0] == str(gains)
    assert "torque_limits" not in ctl.parameters[-1]  # the file's own value is not overridden
    assert ctl.parameters[-1]["joint_names"][0] == "lbr_A1"
