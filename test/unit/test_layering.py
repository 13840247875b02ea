"""One import direction: nodes -> runtime / core / sim / learning / datasets -> nothing ROS."""

import pkgutil
import subprocess
import sys

import dynlearn_ros.nodes

NO_ROS = ("core", "learning", "runtime", "sim", "datasets")


def modules_of(sub: str) -> list[str]:
    pkg = __import__(f"dynlearn_ros.{sub}", fromlist=["_"])
    return [f"dynlearn_ros.{sub}"] + [m.name for m in pkgutil.walk_packages(pkg.__path__, f"dynlearn_ros.{sub}.")]


def test_non_node_packages_never_import_rclpy():
    mods = [m for sub in NO_ROS for m in modules_of(sub)] + ["dynlearn_ros.launch_graph", "dynlearn_ros.paths"]
    assert len(mods) > 20
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}:\n"
        "    importlib.import_module(m)\n"
        "bad = sorted(k for k in sys.modules if k == 'rclpy' or k.startswith('rclpy.'))\n"
        "print('ROS:', bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_node_module_has_a_main():
    for m in pkgutil.iter_modules(dynlearn_ros.nodes.__path__):
        if m.name in ("params", "runner", "qos", "trajectory_intake") or m.name.endswith("_params"):   # helpers, not nodes
            continue
        mod = __import__(f"dynlearn_ros.nodes.{m.name}", fromlist=["main"])
        assert callable(getattr(mod, "main", None)), m.name
