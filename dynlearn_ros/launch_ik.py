"""The ``ik_demo`` launch graph: the simulated arm (sim_bridge + computed_torque, holding its
start pose) and the ik node turning target poses into reference trajectories (no ROS import).

``launch/ik_demo.launch.py`` and ``dynlearn-ros launch ik_demo`` both build it from here. The ik
node's targets come from ``demo_targets`` in config/ik_<robot>.yaml (one every ``demo_period_s``)
and from anyone publishing geometry_msgs/PoseStamped on ``ik/target``.
"""

from __future__ import annotations

from pathlib import Path

from dynlearn_ros.launch_graph import LaunchArg, NodeSpec, resolve_args, vgain_control
from dynlearn_ros.paths import share_dir

IK_DEMO_ARGS: tuple[LaunchArg, ...] = (
    LaunchArg("robot", "iiwa", "robot with a shipped learned IK model (models/ik_<robot>) and "
              "config/ik_<robot>.yaml", ("iiwa", "panda")),
    LaunchArg("solver", "learned_gn", "learned_gn: Levenberg-Marquardt through the pose-chain LSTM's "
              "Jacobian on the true error; learned: gradient descent through it, target correction, "
              "then those steps; dls: Pinocchio damped least squares", ("learned_gn", "learned", "dls")),
    LaunchArg("ik_file", "", "ik parameter file (default: config/ik_<robot>.yaml)"),
    LaunchArg("stepping", "lockstep", "sim_bridge stepping: lockstep (one step per command; a "
              "solve that takes the CPU for a second cannot make the plant miss deadlines) or "
              "realtime", ("lockstep", "realtime")),
    LaunchArg("sim_duration_s", "0.0", "simulated seconds after which the sim_bridge exits (0: run on)"),
    LaunchArg("namespace", "", "namespace for all nodes"),
    LaunchArg("summary_dir", "", "write the nodes' JSON summaries here at exit"),
)


def ik_demo(args: dict[str, str]) -> list[NodeSpec]:
    """sim_bridge + computed_torque (reference: hold) + ik; the ik node publishes
    reference_trajectory, which the controller follows."""
    a = resolve_args(IK_DEMO_ARGS, args)
    nodes = vgain_control({"robot": a["robot"], "reference": "hold", "stepping": a["stepping"],
                           "sim_duration_s": a["sim_duration_s"], "namespace": a["namespace"],
                           "summary_dir": a["summary_dir"]})
    over: dict = {"robot": a["robot"], "solver": a["solver"]}
    if a["summary_dir"]:
        over["summary_path"] = str(Path(a["summary_dir"]) / "ik.json")
    params: list[str | dict] = [a["ik_file"] or str(share_dir() / "config" / f"ik_{a['robot']}.yaml"), over]
    nodes.append(NodeSpec("ik", "dynlearn_ros.nodes.ik", "ik", a["namespace"], params))
    return nodes
