"""Launch graphs as plain data: one definition for ``ros2 launch`` and for ``dynlearn-ros launch``.

``launch/vgain_control.launch.py`` declares :data:`VGAIN_ARGS` as launch arguments and turns
:func:`vgain_control` 's :class:`NodeSpec` list into ``launch_ros.actions.Node`` actions; the
package's own launcher (``dynlearn_ros.commands.launch``, for machines without launch_ros) turns
the same list into processes with standard ``--ros-args``. No ROS import here.

Exit semantics, the same in both launchers: every node of a graph is ``required`` (the bridge
ends after ``sim_duration_s``; a node that fails its start-up exits 2), and a required node's exit
ends the launch with a message naming the node and its exit code (:func:`exit_reason`). The one
exception is the predictor (``predictor:=true``): the arm is controlled without it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dynlearn_ros.core.robots import robot_names, robot_spec, variant_names
from dynlearn_ros.paths import share_dir

PACKAGE = "dynlearn_ros"


@dataclass(frozen=True)
class LaunchArg:
    name: str
    default: str
    description: str
    choices: tuple[str, ...] = ()


@dataclass
class NodeSpec:
    """One node: what ``launch_ros.actions.Node`` takes, plus the Python module to run it."""

    executable: str
    module: str
    name: str
    namespace: str = ""
    parameters: list[str | dict] = field(default_factory=list)  # YAML file paths and dicts, in order
    remappings: list[tuple[str, str]] = field(default_factory=list)
    package: str = PACKAGE
    prefix: list[str] = field(default_factory=list)  # command to run the node under (chrt ...)
    #: its exit ends the whole launch (ros2 launch: OnProcessExit -> Shutdown; dynlearn-ros
    #: launch: the others get SIGINT): the controller without its plant, or the plant without
    #: its controller, must not run on alone
    required: bool = True


LOCKSTEP_STALE_TIMEOUT_MS = 2000.0


def exit_reason(name: str, returncode: int | None) -> str:
    """The message a launcher prints when required node ``name`` exits with ``returncode``."""
    if returncode == 0:
        how = "exited normally (code 0)"
    elif returncode is not None and returncode < 0:
        how = f"was killed by signal {-returncode}"
    else:
        how = f"failed (exit code {returncode})"
    return f"required node {name} {how}: shutting down the launch"


def prepare_summary_dir(summary_dir: str) -> None:
    """Create the ``summary_dir`` launch argument's directory (the nodes check that their
    summary's directory exists); ValueError with the reason if it cannot be created."""
    if summary_dir:
        try:
            Path(summary_dir).expanduser().mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"launch argument summary_dir:={summary_dir}: cannot create it ({exc})") from exc

# driver presets for use_sim:=false: default topics (joint states, effort commands) of each
# real-robot stack; the joint names each publishes come from the robot table (config/robots.yaml)
DRIVERS = {
    "franka": ("/joint_states", "/effort_controller/commands"),
    "lbr": ("/lbr/joint_states", "/lbr/effort_controller/commands"),
    "generic": ("/joint_states", "/effort_controller/commands"),
}


def vgain_args() -> tuple[LaunchArg, ...]:
    """The vgain_control arguments; robot and variant choices come from the robot table."""
    sims = robot_names(simulated_only=True)
    per_robot = "; ".join(f"{r}: {' | '.join(variant_names(r))} (default {robot_spec(r).entry.default_variant})"
                          for r in sims if variant_names(r))
    return (
        LaunchArg("robot", "iiwa", "robot table entry (config/robots.yaml): URDF of the analytic model "
                  "and of the simulated plant, joint names, defaults", sims),
        LaunchArg("robot_variant", "", "manufacturer limits from the robot table (torque_limits, "
                  f"torque_rate_limit) - {per_robot}; empty: the robot's default",
                  ("", *variant_names())),
        LaunchArg("urdf_path", "", "URDF of the controller's analytic model (your robot's); empty: the "
                  "robot table entry's"),
        LaunchArg("use_sim", "true", "true: start the PyBullet sim_bridge; false: drive a real robot "
                  "through its ros2_control driver (see 'driver')", ("true", "false")),
        LaunchArg("driver", "generic", "with use_sim:=false, the real driver's conventions: franka "
                  "(franka_ros2, fr3_joint*), lbr (lbr_fri_ros2_stack, /lbr, lbr_A*), generic",
                  tuple(DRIVERS)),
        LaunchArg("joint_states_topic", "", "remap joint_states to this topic (default: the driver's; "
                  "/joint_states in simulation)"),
        LaunchArg("command_topic", "", "remap effort_controller/commands to this topic (default: the "
                  "driver's; /effort_controller/commands in simulation)"),
        LaunchArg("gains_file", "", "controller parameter file (default: the robot table's "
                  "controller_config, config/computed_torque_<robot>.yaml)"),
        LaunchArg("model_kind", "analytic", "feed-forward model", ("analytic", "acrkn", "svdkl")),
        LaunchArg("model_dir", "", "learned model directory (relative: under the package's models/)"),
        LaunchArg("gain_mode", "scheduled", "scheduled: variance-scheduled K_P; fixed: K_P = k_max",
                  ("scheduled", "fixed")),
        LaunchArg("reference", "sine", "built-in reference", ("sine", "pick_place", "hold")),
        LaunchArg("stepping", "lockstep", "sim_bridge stepping: lockstep (one step per command: "
                  "deterministic, and a loaded machine only slows it down; the default, docs/safety.md) "
                  "or realtime (wall clock, like hardware: late ticks on a busy machine)",
                  ("lockstep", "realtime")),
        LaunchArg("payload_kg", "0.0", "payload at the simulated end effector (kg), unknown to the model"),
        LaunchArg("sim_file", "", "sim_bridge parameter file (default: config/sim_bridge.yaml)"),
        LaunchArg("sim_duration_s", "0.0", "simulated seconds after which the sim_bridge exits (0: run on)"),
        LaunchArg("rt_priority", "0", "SCHED_FIFO priority (1-99) for the controller and the bridge via "
                  "chrt; 0: normal scheduling. Needs real-time rights (root or an rtprio limit); on this "
                  "project's test machine it cut 1 kHz deadline misses from ~14 % to ~2 %"),
        LaunchArg("managed", "false", "true: run the controller as a lifecycle node "
                  "(computed_torque_managed): it starts unconfigured and commands only once activated "
                  "(ros2 lifecycle set /computed_torque configure, then activate)", ("true", "false")),
        LaunchArg("use_sim_time", "false", "true: the controller's ROS time (diagnostics stamps) follows "
                  "/clock (the bridge's, or your simulator's); its watchdog and timers stay on the steady "
                  "clock. The bridge is the clock source and keeps wall time", ("true", "false")),
        LaunchArg("namespace", "", "namespace for all nodes (topics are relative and follow it; /clock and "
                  "/diagnostics stay global, as the ROS conventions say)"),
        LaunchArg("online", "false", "true: also start the trainer (learns while it controls, announces "
                  "accepted versions on model_updates) and turn on the controller's realized-error sigma "
                  "(residual_window_s 0.1) and its gain floor for a 15 kg payload change (payload_margin_kg); "
                  "needs model_kind:=svdkl or acrkn (= trainer_model_kind) and a "
                  "model_dir", ("true", "false")),
        LaunchArg("trainer_model_kind", "svdkl", "model kind the trainer updates (svdkl, or acrkn: the ac-RKN "
                  "inverse model)", ("svdkl", "acrkn")),
        LaunchArg("predictor", "false", "true: also start the predictor (streams the ac-RKN forward model's "
                  "prediction of the next states on predictor/prediction, docs/predictor.md)", ("true", "false")),
        LaunchArg("predictor_model_dir", "acrkn_iiwa_fwd", "the predictor's forward model directory (relative: "
                  "under the package's models/)"),
        LaunchArg("summary_dir", "", "write the nodes' JSON summaries (controller, bridge) here at exit"),
        LaunchArg("record", "false", "true: also start the recorder (its own process), writing a rosbag2 "
                  "(MCAP) of the run's topics to <summary_dir>/bag, or runs/<time>-bag without summary_dir; "
                  "with rt_priority:=P under SCHED_FIFO P // 5 (docs/bags.md)", ("true", "false")),
    )


VGAIN_ARGS: tuple[LaunchArg, ...] = vgain_args()


def _config(name: str) -> str:
    return str(share_dir() / "config" / name)


def _file_sets(path: str, key: str) -> bool:
    """Whether the parameter file ``path`` sets ``key`` for the computed_torque node."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return False
    return any(isinstance(body, dict) and key in (body.get("ros__parameters") or {})
               for node, body in data.items() if str(node).split("/")[-1] == "computed_torque")


def robot_parameters(robot: str, variant: str, driver: str | None, gains_file: str) -> dict:
    """computed_torque parameters from the robot table.

    Always the variant's torque limits (N*m; ``variant`` empty: the robot's default). For a real
    ``driver`` (or an explicit ``variant``) also the manufacturer's torque-rate limit (N*m/s,
    where one is published) and the joint names the driver publishes. In simulation without an
    explicit variant no rate limit is passed, so the simulated closed loop stays as it was. A key
    the ``gains_file`` sets itself is left to the file."""
    try:
        spec = robot_spec(robot, variant or None)
        names = spec.driver_joint_names(driver) if driver else None
    except (KeyError, ValueError) as exc:
        where = f"robot:={robot} robot_variant:={variant}" + (f" driver:={driver}" if driver else "")
        raise ValueError(f"launch arguments {where}: {exc.args[0]}") from exc
    out: dict = {"torque_limits": spec.torque_limits.tolist()}
    if spec.torque_rate_limits is not None and (driver or variant):
        out["torque_rate_limit"] = spec.torque_rate_limits.tolist()
    if names is not None and driver != "generic":
        out["joint_names"] = list(names)
    return {k: v for k, v in out.items() if not _file_sets(gains_file, k)}


def resolve_args(decls: tuple[LaunchArg, ...], given: dict[str, str]) -> dict[str, str]:
    """Defaults filled in; unknown names and values outside ``choices`` raise ValueError."""
    known = {a.name: a for a in decls}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ValueError(f"unknown launch argument(s) {unknown}; known: {sorted(known)}")
    out = {a.name: given.get(a.name, a.default) for a in decls}
    for name, value in out.items():
        choices = known[name].choices
        if choices and value not in choices:
            raise ValueError(f"launch argument {name}:={value}: must be one of {list(choices)}")
    return out


def vgain_control(args: dict[str, str]) -> list[NodeSpec]:
    """PyBullet bridge (or a real driver's topics) + the variance-scheduled computed-torque node."""
    a = resolve_args(vgain_args(), args)  # the table as it is now (VGAIN_ARGS: as at import)
    use_sim = a["use_sim"] == "true"
    summary_dir = Path(a["summary_dir"]) if a["summary_dir"] else None
    ns = a["namespace"]

    entry = robot_spec(a["robot"]).entry
    if entry.controller_config is None and not a["gains_file"]:
        raise ValueError(f"robot {a['robot']} has no controller_config in the robot table: give gains_file")
    gains_file = a["gains_file"] or str(entry.controller_config)
    ctl_params: list[str | dict] = [gains_file]
    # topics: relative names (joint_states, effort_controller/commands) under the namespace in
    # simulation; the driver's absolute topics for a real robot; explicit arguments win
    state_topic = cmd_topic = ""
    if not use_sim:
        state_topic, cmd_topic = DRIVERS[a["driver"]]
    state_topic = a["joint_states_topic"] or state_topic
    cmd_topic = a["command_topic"] or cmd_topic
    remaps = [(src, dst) for src, dst in (("joint_states", state_topic),
                                          ("effort_controller/commands", cmd_topic)) if dst]
    ctl_over: dict = robot_parameters(a["robot"], a["robot_variant"], None if use_sim else a["driver"],
                                      gains_file)
    ctl_over.update({"robot": a["robot"], "model_kind": a["model_kind"], "gain_mode": a["gain_mode"],
                     "reference": a["reference"]})
    if a["urdf_path"]:
        ctl_over["urdf_path"] = a["urdf_path"]
    if a["use_sim_time"] == "true":
        ctl_over["use_sim_time"] = True
    if a["model_dir"]:
        ctl_over["model_dir"] = a["model_dir"]
    if use_sim and a["stepping"] == "lockstep":
        # a lockstep plant waits for our command and does not move meanwhile: a late state there
        # is load, not danger, and a hold sent into the lockstep exchange would shift it by a tick
        ctl_over["stale_timeout_ms"] = LOCKSTEP_STALE_TIMEOUT_MS
    if summary_dir:
        ctl_over["summary_path"] = str(summary_dir / "computed_torque.json")
    online = a["online"] == "true"
    if online:
        if a["model_kind"] != a["trainer_model_kind"] or not a["model_dir"]:
            raise ValueError(f"online:=true: the trainer updates the controller's model; give model_kind:="
                             f"{a['trainer_model_kind']} and its model_dir (got model_kind:={a['model_kind']})")
        ctl_over["residual_window_s"] = 0.1
        ctl_over["payload_margin_kg"] = 15.0   # core/gain_floor.py: a learned payload may leave at once
    ctl_params.append(ctl_over)
    try:
        rt = int(a["rt_priority"])
    except ValueError:
        rt = -1
    if not 0 <= rt <= 99:
        raise ValueError(f"launch argument rt_priority:={a['rt_priority']}: must be an integer 0..99")
    prefix = ["chrt", "-f", str(rt)] if rt else []
    exe = "computed_torque_managed" if a["managed"] == "true" else "computed_torque"
    nodes = [NodeSpec(exe, f"dynlearn_ros.nodes.{exe}", "computed_torque", ns, ctl_params, remaps, prefix=prefix)]
    if use_sim:
        sim_over: dict = {"robot": a["robot"], "stepping": a["stepping"],
                          "payload_kg": float(a["payload_kg"]), "duration_s": float(a["sim_duration_s"])}
        if summary_dir:
            sim_over["stats_path"] = str(summary_dir / "sim_bridge.json")
        nodes.insert(0, NodeSpec("sim_bridge", "dynlearn_ros.nodes.sim_bridge", "sim_bridge", ns,
                                 [a["sim_file"] or _config("sim_bridge.yaml"), sim_over], remaps,
                                 prefix=prefix))
    if online:
        tr_over: dict = {"model_kind": a["trainer_model_kind"], "model_dir": a["model_dir"]}
        if a["urdf_path"]:   # the trainer's analytic base must be the controller's URDF
            tr_over["urdf_path"] = a["urdf_path"]
        if summary_dir:
            tr_over["summary_path"] = str(summary_dir / "trainer.json")
        nodes.append(NodeSpec("trainer", "dynlearn_ros.nodes.trainer", "trainer", ns, [tr_over], remaps))
    if a["record"] == "true":
        nodes.insert(0, recorder_spec(summary_dir, ns, remaps, lockstep=use_sim and a["stepping"] == "lockstep",
                                      rt_priority=rt))
    if a["predictor"] == "true":
        if a["robot"] != "iiwa" and a["predictor_model_dir"] == "acrkn_iiwa_fwd":
            raise ValueError(f"predictor:=true with robot:={a['robot']}: the shipped forward model is the iiwa's; "
                             "give predictor_model_dir (a forward model of this robot)")
        pr_over: dict = {"robot": a["robot"], "model_dir": a["predictor_model_dir"]}
        if use_sim and a["stepping"] == "lockstep":   # a lockstep plant may pause under load: not stale
            pr_over["stale_timeout_ms"] = LOCKSTEP_STALE_TIMEOUT_MS
        if summary_dir:
            pr_over["summary_path"] = str(summary_dir / "predictor.json")
        # not required: the arm is controlled without it, so its exit does not end the launch
        nodes.append(NodeSpec("predictor", "dynlearn_ros.nodes.predictor", "predictor", ns, [pr_over], remaps,
                              required=False))
    return nodes


def recorder_rt_priority(loop_rt_priority: int) -> int:
    """SCHED_FIFO priority of ``record:=true``'s recorder when the loop runs under
    ``rt_priority`` P: P // 5 (10 for 50, the priority measured to record every state beside a FIFO
    50 loop, docs/bags.md), below the loop's so it never preempts it, above every normal process so
    a loaded machine cannot starve it; 0 (normal scheduling) without ``rt_priority`` or below 5.
    The loop's real-time rights cover it (the same user, the same rtprio limit)."""
    return loop_rt_priority // 5 if loop_rt_priority >= 5 else 0


def recorder_spec(summary_dir: Path | None, ns: str, remaps: list[tuple[str, str]],
                  lockstep: bool = False, rt_priority: int = 0) -> NodeSpec:
    """The recorder of ``record:=true``: started first (it subscribes as publishers appear), not
    required (a recorder that fails must not stop the robot); its bag under the run folder.

    Its CPU priority: niceness 0 (the recorder's default since its drain thread made it cheap;
    niced to 19 it recorded nothing on a loaded machine, docs/bags.md); ``lockstep`` sets the same
    explicitly. On a robot whose loop runs under ``rt_priority``, a real-time priority below the
    loop's keeps the bag complete (docs/bags.md): with ``rt_priority`` (the loop's) it runs
    under SCHED_FIFO :func:`recorder_rt_priority`; the run summary says whether the bag is complete."""
    from datetime import datetime

    bag = summary_dir / "bag" if summary_dir else Path("runs") / f"{datetime.now():%Y%m%d-%H%M%S}-bag"
    params: dict = {"bag_path": str(bag.absolute())}
    if summary_dir:
        params["summary_path"] = str(summary_dir / "recorder.json")
    if lockstep:
        params["niceness"] = 0
    rec_rt = recorder_rt_priority(rt_priority)
    return NodeSpec("recorder", "dynlearn_ros.nodes.recorder", "recorder", ns, [params], remaps, required=False,
                    prefix=["chrt", "-f", str(rec_rt)] if rec_rt else [])


#: graph name -> (its launch arguments, its node factory)
GRAPHS: dict[str, tuple[tuple[LaunchArg, ...], Callable[[dict[str, str]], list[NodeSpec]]]] = {
    "vgain_control": (VGAIN_ARGS, vgain_control),
}
