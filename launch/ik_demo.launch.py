"""Learned inverse kinematics demo: the simulated iiwa reaching a sequence of target poses.

    ros2 launch dynlearn_ros ik_demo.launch.py
    ros2 launch dynlearn_ros ik_demo.launch.py solver:=dls
    ros2 launch dynlearn_ros ik_demo.launch.py robot:=panda

The graph is defined once in dynlearn_ros.launch_ik (also used by ``dynlearn-ros launch
ik_demo``); the target poses are ``demo_targets`` in config/ik_<robot>.yaml (docs/ik.md).
"""

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from dynlearn_ros.launch_ik import IK_DEMO_ARGS, ik_demo
from launch import LaunchDescription


def _nodes(context, *args, **kwargs):
    values = {a.name: LaunchConfiguration(a.name).perform(context) for a in IK_DEMO_ARGS}
    return [
        Node(package=spec.package, executable=spec.executable, name=spec.name,
             namespace=spec.namespace, parameters=spec.parameters, remappings=spec.remappings,
             prefix=" ".join(spec.prefix) or None, output="screen", emulate_tty=True)
        for spec in ik_demo(values)
    ]


def generate_launch_description():
    declared = [
        DeclareLaunchArgument(a.name, default_value=a.default, description=a.description,
                              **({"choices": list(a.choices)} if a.choices else {}))
        for a in IK_DEMO_ARGS
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_nodes)])
