"""Which package files each of the three data paths crosses (docs/architecture.md, "Files crossed").

    PYTHONPATH=<tree> .venv/bin/python scripts/trace_paths.py <tree> <workdir>

<tree> is a checkout of the repository (run it on two commits to compare); <workdir> receives a
small simulated data set, a one-epoch SVDKL run, its export and paths.json. Counts the package
files whose functions run (module bodies not counted) on: one controller tick of the node with
models/svdkl_iiwa_sim (and its start-up), loading that model directory, and train / export / load.
Set ROS_DOMAIN_ID to a free domain; the node is built in this process and never spun.
"""
import json, os, sys, tempfile, threading
from pathlib import Path

tree = Path(sys.argv[1]).resolve()
work = Path(sys.argv[2]); work.mkdir(parents=True, exist_ok=True)
pkg = str(tree / "dynlearn_ros")


class Tracer:
    def __init__(self):
        self.files = []
    def __enter__(self):
        def prof(frame, event, arg):
            if event == "call" and frame.f_code.co_name != "<module>":
                f = frame.f_code.co_filename
                if f.startswith(pkg):
                    rel = os.path.relpath(f, tree)
                    if rel not in self.files:
                        self.files.append(rel)
        sys.setprofile(prof); threading.setprofile(prof)
        return self
    def __exit__(self, *a):
        sys.setprofile(None); threading.setprofile(None)


out = {}
# --- path C: data set -> train -> export -> load -------------------------------------------
from dynlearn_ros import cli
data = work / "tiny.npz"
if not data.exists():
    cli.main(["collect", "--episodes", "4", "--seconds", "1.5", "--out", str(data), "--quiet", "--payload-kg", "2"])
with Tracer() as t_train:
    cli.main(["train", "--data", str(data), "--model", "svdkl", "--epochs", "1", "--seed", "0",
              "--out", str(work / "run_svdkl")])
with Tracer() as t_export:
    cli.main(["export", "--model", "svdkl", "--run", str(work / "run_svdkl"), "--out", str(work / "model_svdkl")])
from dynlearn_ros.runtime.registry import load_inverse_model
from dynlearn_ros.core.robots import robot_spec
joints = robot_spec("iiwa").joint_names
with Tracer() as t_load:
    load_inverse_model("svdkl", work / "model_svdkl", joints)
out["C_train"] = t_train.files; out["C_export"] = t_export.files; out["C_load"] = t_load.files
# --- path B: model directory -> ONNX session (shipped model) ---------------------------------
with Tracer() as t_b:
    m = load_inverse_model("svdkl", tree / "models" / "svdkl_iiwa_sim", joints)
out["B_load_shipped"] = t_b.files
# --- path A: joint state -> effort command, through the node ------------------------------------
import rclpy
from sensor_msgs.msg import JointState
rclpy.init(args=["--ros-args", "-p", "model_kind:=svdkl", "-p", "model_dir:=svdkl_iiwa_sim"])
from dynlearn_ros.nodes.computed_torque import ComputedTorqueNode
with Tracer() as t_cfg:
    node = ComputedTorqueNode()
sub = [s for s in node.subscriptions if s.topic_name.endswith("joint_states")][0]
spec = robot_spec("iiwa")
msg = JointState(); msg.name = list(joints); msg.position = [float(x) for x in spec.home]
msg.velocity = [0.0] * len(joints); msg.effort = [0.0] * len(joints)
for k in range(3):
    msg.header.stamp.nanosec = 1_000_000 * k
    sub.callback(msg)
msg.header.stamp.nanosec = 5_000_000
with Tracer() as t_a:
    sub.callback(msg)
out["A_configure"] = t_cfg.files; out["A_tick"] = t_a.files
node.destroy_node(); rclpy.shutdown()
for k, v in out.items():
    print(f"{k}: {len(v)} files: {', '.join(v)}")
(work / "paths.json").write_text(json.dumps(out, indent=1))
