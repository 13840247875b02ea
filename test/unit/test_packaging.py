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
    xml = (ROOT / "package.xml").read_text()
    for dep in ("rclpy", "sensor_msgs", "std_msgs", "trajectory_msgs", "diagnostic_msgs", "launch",
                "launch_ros", "python3-numpy", "pinocchio"):
        assert f"<exec_depend>{dep}</exec_depend>" in xml, dep
    assert "<build_type>ament_python</build_type>" in xml
    assert Path(ROOT / "resource" / "dynlearn_ros").is_file()
