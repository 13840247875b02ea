"""ROS 2 nodes: the only modules of the package that import rclpy. One Node class per file."""
