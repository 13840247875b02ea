"""Variance-scheduled computed-torque control: PyBullet bridge (or a real driver) + controller.

    ros2 launch dynlearn_ros vgain_control.launch.py robot:=iiwa model_kind:=analytic
    ros2 launch dynlearn_ros vgain_control.launch.py use_sim:=false driver:=franka robot:=panda
    ros2 launch dynlearn_ros vgain_control.launch.py use_sim:=false driver:=lbr robot_variant:=iiwa14

Robot and variant choices come from the robot table (config/robots.yaml, docs/robots.md).

The graph itself is defined once in dynlearn_ros.launch_graph (also used by
``dynlearn-ros launch vgain_control`` where launch_ros is not installed); ``ros2 launch
dynlearn_ros vgain_control.launch.py --show-args`` lists the arguments.
"""

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from dynlearn_ros.launch_graph import VGAIN_ARGS, vgain_control
from launch import LaunchDescription


def _nodes(context, *args, **kwargs):
    values = {a.name: LaunchConfiguration(a.name).perform(context) for a in VGAIN_ARGS}
    return [
        Node(package=spec.package, executable=spec.executable, name=spec.name,
             namespace=spec.namespace, parameters=spec.parameters, remappings=spec.remappings,
             prefix=" ".join(spec.prefix) or None, output="screen", emulate_tty=True)
        for spec in vgain_control(values)
    ]


def generate_launch_description():
    declared = [
        DeclareLaunchArgument(a.name, default_value=a.default, description=a.description,
                              **({"choices": list(a.choices)} if a.choices else {}))
        for a in VGAIN_ARGS
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_nodes)])
