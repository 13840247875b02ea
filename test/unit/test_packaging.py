"""The package installs what `colcon build` + `ros2 launch` need (checked on a built wheel)."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from dynlearn_ros.paths import share_dir

ROOT = share_dir()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> tuple[list[str], str]:
    """(file names in the wheel, its entry_points.txt)"""
    out_dir = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(out_dir), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = out_dir.glob("dynlearn_ros-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        (ep,) = [n for n in names if n.endswith("entry_points.txt")]
        return names, z.read(ep).decode()


def test_wheel_installs_share_files_and_ament_marker(wheel):
    wheel_names, _ = wheel
    data = [n.split(".data/data/", 1)[1] for n in wheel_names if ".data/data/" in n]
    assert "share/ament_index/resource_index/packages/dynlearn_ros" in data
    assert "share/dynlearn_ros/package.xml" in data
    assert "share/dynlearn_ros/launch/vgain_control.launch.py" in data
    for cfg in (ROOT / "config").glob("*.yaml"):
        assert f"share/dynlearn_ros/config/{cfg.name}" in data
    for f in (ROOT / "models").rglob("*"):
        if f.is_file():
            assert f"share/dynlearn_ros/{f.relative_to(ROOT).as_posix()}" in data


def test_wheel_has_all_subpackages_and_entry_points(wheel):
    wheel_names, entry_points = wheel
    for sub in ("core", "learning", "runtime", "sim", "nodes", "datasets", "commands"):
        assert f"dynlearn_ros/{sub}/__init__.py" in wheel_names, sub
    for script in ("sim_bridge = dynlearn_ros.nodes.sim_bridge:main",
                   "computed_torque = dynlearn_ros.nodes.computed_torque:main",
                   "dynlearn-ros = dynlearn_ros.cli:main"):
        assert script in entry_points


def test_setup_cfg_puts_executables_where_ros2_run_looks():
    cfg = (ROOT / "setup.cfg").read_text()
    assert "install_scripts=$base/lib/dynlearn_ros" in cfg
    assert "script_dir=$base/lib/dynlearn_ros" in cfg


def test_package_xml_declares_runtime_dependencies():
    import xml.etree.ElementTree as ET

    xml = (ROOT / "package.xml").read_text()
    deps = {e.text for e in ET.fromstring(xml).findall("exec_depend")}
    for dep in ("rclpy", "sensor_msgs", "std_msgs", "trajectory_msgs", "diagnostic_msgs", "launch",
                "launch_ros", "python3-numpy", "pinocchio"):
        assert dep in deps, dep
    # every ROS package a node imports is declared (rosdep installs only what package.xml names)
    import ast

    imported = set()
    for f in (ROOT / "dynlearn_ros" / "nodes").glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            imported |= {n.split(".")[0] for n in names}
    ros = {m for m in imported if m.endswith("_msgs") or m in ("rclpy", "builtin_interfaces", "rcl_interfaces")}
    assert ros - deps == set(), f"imported by nodes/, not in package.xml: {ros - deps}"
    assert "<build_type>ament_python</build_type>" in xml
    assert Path(ROOT / "resource" / "dynlearn_ros").is_file()


# ---------------------------------------------------------------------------- installing on ROS
# Ubuntu 24.04 (noble) versions that ROS 2 Jazzy / Kilted machines have from apt: pip must keep them
NOBLE = {"numpy": "1.26.4", "scipy": "1.11.4", "matplotlib": "3.6.3", "pyyaml": "6.0.1",
         "psutil": "5.9.8", "tqdm": "4.66.2", "pytest": "7.4.4"}
# rosdep keys the package.xml may use. ROS packages: released in Jazzy and Kilted. System keys:
# checked in ros/rosdistro rosdep/python.yaml (commit 000730dc5f91), each resolving to an apt
# package on ubuntu; python3-pytest is the key ros2 pkg create writes for ament_python packages.
#: ROS packages of the distribution (ros-base: rcl_interfaces gives lifecycle_msgs and
#: builtin_interfaces, common_interfaces the *_msgs)
ROS_PACKAGES = {"rclpy", "sensor_msgs", "std_msgs", "trajectory_msgs", "diagnostic_msgs", "rosgraph_msgs",
                "geometry_msgs", "lifecycle_msgs", "builtin_interfaces", "rcl_interfaces",
                "ament_index_python", "launch", "launch_ros", "pinocchio"}
ROSDEP_SYSTEM_KEYS = {"python3-numpy": "numpy", "python3-scipy": "scipy", "python3-yaml": "pyyaml",
                      "python3-psutil": "psutil", "python3-matplotlib": "matplotlib", "python3-tqdm": "tqdm",
                      "python3-pytest": "pytest"}


def requirements(name: str) -> dict:
    """{distribution name (lower case): SpecifierSet} of a requirements file (no -r lines)."""
    from packaging.requirements import Requirement

    out = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            req = Requirement(line)
            out[req.name.lower()] = req.specifier
    return out


def test_ros_requirements_accept_the_distributions_packages():
    """Issue 12 item 7: no exact pin that clashes with Ubuntu 24.04's numpy / scipy / pytest ...,
    and setuptools inside colcon-core's range (< 80) but new enough for torch 2.13 (>= 77.0.3)."""
    req = requirements("requirements-python.txt")
    for dist, version in NOBLE.items():
        assert dist in req, dist
        assert version in req[dist], f"{dist} {req[dist]} refuses the distribution's {version}"
        assert not any(s.operator == "==" for s in req[dist]), f"{dist} is pinned exactly"
    assert "79.0.1" in req["setuptools"] and "80.0.0" not in req["setuptools"] and "77.0.2" not in req["setuptools"]
    assert str(req["torch"]) == "==2.13.0"  # the CPU build; unpinned pulls CUDA
    assert "pin" not in req  # its wheels need numpy >= 2: ROS machines take ros-<distro>-pinocchio


def test_fresh_machine_requirements_are_exact_pins_that_meet_the_ros_bounds():
    exact, ros = requirements("requirements.txt"), requirements("requirements-python.txt")
    for dist, spec in exact.items():
        assert len(spec) == 1 and next(iter(spec)).operator == "==", f"{dist} {spec} is not pinned"
    for dist, spec in ros.items():
        assert dist in exact, f"{dist} is missing from requirements.txt"
        if dist != "setuptools":  # the fresh venv runs the registry's colcon, which takes 84
            assert next(iter(exact[dist])).version in spec, (dist, exact[dist], spec)


def test_this_environment_satisfies_the_ros_requirements():
    from importlib.metadata import version

    for dist, spec in requirements("requirements-python.txt").items():
        if dist != "setuptools":
            assert version(dist) in spec, (dist, version(dist), spec)


def test_package_xml_dependencies_resolve_through_rosdep_or_are_documented_pip_only():
    import xml.etree.ElementTree as ET

    root = ET.parse(ROOT / "package.xml").getroot()
    deps = [e.text for tag in ("depend", "exec_depend", "build_depend", "test_depend") for e in root.findall(tag)]
    unknown = [d for d in deps if d not in ROS_PACKAGES and d not in ROSDEP_SYSTEM_KEYS]
    assert not unknown, f"not a known rosdep key: {unknown}"
    assert not [d for d in deps if d.endswith("-pip")], "pip keys break on Ubuntu 24.04 (PEP 668)"
    assert int(root.find("exec_depend[.='pinocchio']").get("version_gte", "0").split(".")[0]) >= 3
    # every Python library is either a system key above or named in the pip-only comment
    comment = " ".join(c.text for c in ET.parse(ROOT / "package.xml", ET.XMLParser(
        target=ET.TreeBuilder(insert_comments=True))).getroot().iter(ET.Comment))
    system = {ROSDEP_SYSTEM_KEYS[d] for d in deps if d in ROSDEP_SYSTEM_KEYS}
    for dist in requirements("requirements-python.txt"):
        assert dist in system or dist == "setuptools" or dist in comment, f"{dist}: no rosdep key and not documented"


def test_launch_and_node_choices_match_the_robot_table():
    from dynlearn_ros.core.robots import ROBOTS, robot_names, robot_spec, variant_names
    from dynlearn_ros.launch_graph import VGAIN_ARGS

    args = {a.name: a for a in VGAIN_ARGS}
    assert args["robot"].choices == ROBOTS == robot_names(simulated_only=True)
    assert args["robot_variant"].choices == ("", *variant_names())
    for robot in ROBOTS:  # each launchable robot brings its controller parameter file
        assert robot_spec(robot).entry.controller_config.is_file(), robot
    # the nodes' 'robot' parameters offer exactly the table's launchable robots
    from dynlearn_ros.core.config import COMPUTED_TORQUE_SPEC, spec_table
    from dynlearn_ros.nodes.sim_bridge_params import BRIDGE_SPEC

    for spec in (COMPUTED_TORQUE_SPEC, BRIDGE_SPEC):
        assert tuple(spec_table(spec)["robot"].choices) == ROBOTS
