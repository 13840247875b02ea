"""dynlearn_ros: learned robot dynamics for compliant, variance-scheduled ROS 2 control.

Import direction: ``nodes`` -> ``runtime`` / ``core`` / ``sim`` / ``learning`` / ``datasets``.
Only ``dynlearn_ros.nodes`` imports rclpy.
"""

__version__ = "0.1.0"
