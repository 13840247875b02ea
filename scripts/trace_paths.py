"""Which package files each of the three data paths crosses (docs/architecture.md, "Files crossed").

    PYTHONPATH=<tree> .venv/bin/python scripts/trace_paths.py <tree> <workdir>

<tree> is a checkout of the repository (run it on two commits to compare); <workdir> receives a
small simulated data set, a one-epoch SVDKL run, its export and paths.json. Counts the package
files whose functions run (module bodies not counted) on: one controller tick of the node with
models/svdkl_iiwa_sim (and its start-up), loading that model directory, and train / export / load.
Set ROS_DOMAIN_ID to a free domain; the node is built in this process and never spun.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path


class Tracer:
    """Context manager recording, in first-call order, the files under ``tree/dynlearn_ros``
    whose functions are called while it is active (all threads)."""

    def __init__(self, tree: Path) -> None:
        self.tree = tree
        self.pkg = str(tree / "dynlearn_ros")
        self.files: list[str] = []

    def _profile(self, frame, event, arg) -> None:
        if event == "call" and frame.f_code.co_name != "<module>":
            path = frame.f_code.co_filename
            if path.startswith(self.pkg):
                rel = os.path.relpath(path, self.tree)
                if rel not in self.files:
                    self.files.append(rel)

    def __enter__(self) -> Tracer:
        sys.setprofile(self._profile)
        threading.setprofile(self._profile)
        return self

    def __exit__(self, *exc) -> None:
        sys.setprofile(None)
        threading.setprofile(None)


def trace_training(tree: Path, work: Path) -> dict[str, list[str]]:
    """Path C (data set -> train -> export -> load) and path B (shipped model dir -> session)."""
    from dynlearn_ros import cli
    from dynlearn_ros.core.robots import robot_spec
    from dynlearn_ros.runtime.registry import load_inverse_model

    data = work / "tiny.npz"
    if not data.exists():
        cli.main(["collect", "--episodes", "4", "--seconds", "1.5", "--out", str(data), "--quiet",
                  "--payload-kg", "2"])
    with Tracer(tree) as t_train:
        cli.main(["train", "--data", str(data), "--model", "svdkl", "--epochs", "1", "--seed", "0",
                  "--out", str(work / "run_svdkl")])
    with Tracer(tree) as t_export:
        cli.main(["export", "--model", "svdkl", "--run", str(work / "run_svdkl"),
                  "--out", str(work / "model_svdkl")])
    joints = robot_spec("iiwa").joint_names
    with Tracer(tree) as t_load:
        load_inverse_model("svdkl", work / "model_svdkl", joints)
    with Tracer(tree) as t_b:
        load_inverse_model("svdkl", tree / "models" / "svdkl_iiwa_sim", joints)
    return {"C_train": t_train.files, "C_export": t_export.files, "C_load": t_load.files,
            "B_load_shipped": t_b.files}


def trace_tick(tree: Path) -> dict[str, list[str]]:
    """Path A: one joint state -> effort command through the node (built, never spun)."""
    import rclpy
    from sensor_msgs.msg import JointState

    from dynlearn_ros.core.robots import robot_spec
    from dynlearn_ros.nodes.computed_torque import ComputedTorqueNode

    rclpy.init(args=["--ros-args", "-p", "model_kind:=svdkl", "-p", "model_dir:=svdkl_iiwa_sim"])
    with Tracer(tree) as t_cfg:
        node = ComputedTorqueNode()
    sub = next(s for s in node.subscriptions if s.topic_name.endswith("joint_states"))
    spec = robot_spec("iiwa")
    msg = JointState()
    msg.name = list(spec.joint_names)
    msg.position = [float(x) for x in spec.home]
    msg.velocity = [0.0] * len(spec.joint_names)
    msg.effort = [0.0] * len(spec.joint_names)
    for k in range(3):
        msg.header.stamp.nanosec = 1_000_000 * k
        sub.callback(msg)
    msg.header.stamp.nanosec = 5_000_000
    with Tracer(tree) as t_a:
        sub.callback(msg)
    node.destroy_node()
    rclpy.shutdown()
    return {"A_configure": t_cfg.files, "A_tick": t_a.files}


def main() -> None:
    tree = Path(sys.argv[1]).resolve()
    work = Path(sys.argv[2])
    work.mkdir(parents=True, exist_ok=True)
    out = trace_training(tree, work)
    out.update(trace_tick(tree))
    for key, files in out.items():
        print(f"{key}: {len(files)} files: {', '.join(files)}")
    (work / "paths.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
