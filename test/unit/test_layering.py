"""One import direction: nodes -> runtime / core / sim / learning / datasets -> nothing ROS."""

import pkgutil
import subprocess
import sys

import dynlearn_ros.nodes

NO_ROS = ("core", "learning", "runtime", "sim", "datasets", "bags")


def modules_of(sub: str) -> list[str]:
    pkg = __import__(f"dynlearn_ros.{sub}", fromlist=["_"])
    return [f"dynlearn_ros.{sub}"] + [m.name for m in pkgutil.walk_packages(pkg.__path__, f"dynlearn_ros.{sub}.")]


def assert_fresh_import_loads_none(mods: list[str], forbidden: str) -> None:
    """Import ``mods`` in a fresh interpreter; fail, listing them, if any loaded module name
    ``k`` satisfies the Python expression ``forbidden``."""
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}:\n"
        "    importlib.import_module(m)\n"
        f"bad = sorted(k for k in sys.modules if {forbidden})\n"
        "print('loaded:', bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr


def test_non_node_packages_never_import_rclpy():
    mods = [m for sub in NO_ROS for m in modules_of(sub)] + ["dynlearn_ros.launch_graph", "dynlearn_ros.paths"]
    assert len(mods) > 20
    assert_fresh_import_loads_none(mods, "k == 'rclpy' or k.startswith('rclpy.')")


def test_every_node_module_has_a_main():
    for m in pkgutil.iter_modules(dynlearn_ros.nodes.__path__):
        if m.name in ("params", "runner", "qos", "trajectory_intake") or m.name.endswith("_params"):   # helpers, not nodes
            continue
        mod = __import__(f"dynlearn_ros.nodes.{m.name}", fromlist=["main"])
        assert callable(getattr(mod, "main", None)), m.name


# ---------------------------------------------------------------------------------------------
# The static rules (docs/architecture.md): every import statement of every module, function-local
# ones included, read from the source with ast - an import that only runs on some code path is
# caught as well as one at the top of a file.
import ast  # noqa: E402
from pathlib import Path  # noqa: E402

PKG = Path(dynlearn_ros.nodes.__file__).resolve().parent.parent
ROS = {"rclpy", "rcl_interfaces", "builtin_interfaces", "rosgraph_msgs", "launch", "launch_ros",
       "sensor_msgs", "std_msgs", "trajectory_msgs", "diagnostic_msgs", "geometry_msgs", "lifecycle_msgs"}
TORCH = {"torch", "gpytorch"}
#: the parts that may import ROS: the nodes, and the fault injector (a ROS client that drives the
#: nodes from outside, run by ``dynlearn-ros faults`` and test/faults; never imported by a node)
ROS_PARTS = {"nodes", "faults"}
#: part -> the package parts it may import (itself always); "*" = any
ALLOWED_PARTS = {
    "paths": set(),
    "dds_profile": {"paths"},   # the Fast DDS profile's environment variable: a leaf beside paths
    "core": {"paths"},
    "runtime": {"core", "paths"},
    "datasets": {"core", "paths"},
    "sim": {"core", "datasets", "paths"},
    "bags": {"datasets", "paths"},
    "reporting": set(),
    "learning": {"core", "datasets", "runtime", "paths"},
    "nodes": {"core", "runtime", "sim", "paths", "learning", "bags", "dds_profile"},  # learning: see NODES_WITH_LEARNING
    "scenarios": {"core", "runtime", "sim", "datasets", "paths", "procs", "launch_graph", "reporting", "learning"},
}
#: the nodes that may import learning/ (torch): the trainer (and a planning node off the 1 kHz
#: path, if one says so in docs/architecture.md)
NODES_WITH_LEARNING = {"trainer", "ik"}
NO_TORCH = {"core", "runtime", "sim", "datasets", "reporting", "paths", "launch_graph", "bags", "dds_profile"}


def _imports(path: Path) -> list[tuple[str, int]]:
    """(module, line) of every import in ``path``; relative imports resolved to dynlearn_ros.*."""
    rel = path.relative_to(PKG.parent).with_suffix("")
    pkg_parts = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg_parts[: len(pkg_parts) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((mod, node.lineno))
    return out


def _part(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _violations() -> list[str]:
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        part, where = _part(path), str(path.relative_to(PKG.parent))
        for mod, line in _imports(path):
            top = mod.split(".")[0]
            sub = mod.split(".")[1] if top == "dynlearn_ros" and "." in mod else None
            if top in ROS and part not in ROS_PARTS:
                bad.append(f"{where}:{line}: ROS import '{mod}' outside {sorted(ROS_PARTS)}")
            if top in TORCH and part in NO_TORCH:
                bad.append(f"{where}:{line}: '{mod}' (torch) in {part}/")
            if sub is None or sub == part or sub in ("__init__", "errors"):   # errors.py: a leaf
                continue
            if part == "learning" and sub in ("commands", "nodes", "scenarios", "benchmarks", "cli"):
                bad.append(f"{where}:{line}: learning imports {sub}")
            if part in ALLOWED_PARTS and sub not in ALLOWED_PARTS[part]:
                bad.append(f"{where}:{line}: {part}/ may not import dynlearn_ros.{sub}")
            if part == "nodes" and sub == "learning" and path.stem not in NODES_WITH_LEARNING:
                bad.append(f"{where}:{line}: node '{path.stem}' imports learning/ (only "
                           f"{sorted(NODES_WITH_LEARNING)} may)")
    return bad


def test_static_import_rules_hold_for_every_import():
    assert len(list(PKG.rglob("*.py"))) > 60
    bad = _violations()
    assert not bad, "\n".join(bad)


def test_static_rules_catch_a_function_local_import(tmp_path, monkeypatch):
    # a torch import hidden inside a function of core/ must be reported
    fake = PKG / "core" / "_layering_probe.py"
    fake.write_text("def f():\n    import torch\n    from dynlearn_ros.runtime import registry\n")
    try:
        bad = _violations()
    finally:
        fake.unlink()
    assert any("_layering_probe.py:2" in b and "torch" in b for b in bad), bad
    assert any("_layering_probe.py:3" in b and "may not import dynlearn_ros.runtime" in b for b in bad), bad


def test_only_the_trainer_node_imports_learning():
    """Training never runs in the controller's process: no node but the trainer (and the ik
    planning node, docs/ik.md: NODES_WITH_LEARNING) loads learning/."""
    mods = [f"dynlearn_ros.nodes.{m.name}" for m in pkgutil.iter_modules(dynlearn_ros.nodes.__path__)
            if m.name not in NODES_WITH_LEARNING]
    assert_fresh_import_loads_none(mods, "k.startswith('dynlearn_ros.learning')")


def test_the_predictor_node_loads_neither_torch_nor_learning():
    """The predictor streams at 1 kHz input: onnxruntime only (issue 11)."""
    assert_fresh_import_loads_none(["dynlearn_ros.nodes.predictor"],
                                   "k.split('.')[0] in ('torch', 'gpytorch') or k.startswith('dynlearn_ros.learning')")
