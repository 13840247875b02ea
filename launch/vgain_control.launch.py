"""Variance-scheduled computed-torque control: PyBullet bridge (or a real driver) + controller.

    ros2 launch dynlearn_ros vgain_control.launch.py robot:=iiwa model_kind:=analytic
    ros2 launch dynlearn_ros vgain_control.launch.py use_sim:=false driver:=franka robot:=panda
    ros2 launch dynlearn_ros vgain_control.launch.py use_sim:=false driver:=lbr robot_variant:=iiwa14

Robot and variant choices come from the robot table (config/robots.yaml, docs/robots.md).

The graph itself is defined once in dynlearn_ros.launch_graph (also used by
``dynlearn-ros launch vgain_control`` where launch_ros is not installed); ``ros2 launch
dynlearn_ros vgain_control.launch.py --show-args`` lists the arguments. Every node is required:
when one exits (the bridge after ``sim_duration_s``, a node refusing its parameters) an
OnProcessExit handler logs which one and how, and shuts the launch down (the other nodes get
SIGINT and write their summaries). ``use_sim_time:=true`` gives every node the /clock of the
bridge (or of the robot's simulator) as its ROS time.
"""

from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction, RegisterEventHandler, Shutdown
from launch.event_handlers import OnProcessExit
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from dynlearn_ros.launch_graph import VGAIN_ARGS, exit_reason, prepare_summary_dir, vgain_control
from launch import LaunchDescription


def _on_exit(name):
    def handler(event, context):
        if context.is_shutdown:   # stopped by the shutdown another node's exit started
            return None
        reason = exit_reason(name, event.returncode)
        return [LogInfo(msg=reason), Shutdown(reason=reason)]
    return handler


def _nodes(context, *args, **kwargs):
    values = {a.name: LaunchConfiguration(a.name).perform(context) for a in VGAIN_ARGS}
    prepare_summary_dir(values["summary_dir"])
    actions = []
    for spec in vgain_control(values):
        node = Node(package=spec.package, executable=spec.executable, name=spec.name,
                    namespace=spec.namespace, parameters=spec.parameters, remappings=spec.remappings,
                    prefix=" ".join(spec.prefix) or None, output="screen", emulate_tty=True)
        actions.append(node)
        if spec.required:
            actions.append(RegisterEventHandler(OnProcessExit(target_action=node, on_exit=_on_exit(spec.name))))
    return actions


def generate_launch_description():
    declared = [
        DeclareLaunchArgument(a.name, default_value=a.default, description=a.description,
                              **({"choices": list(a.choices)} if a.choices else {}))
        for a in VGAIN_ARGS
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_nodes)])
