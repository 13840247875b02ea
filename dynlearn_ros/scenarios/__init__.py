"""Scenarios: plain-Python logic that runs node processes and turns their records into tables
and figures (no rclpy here; the recorder node lives in :mod:`dynlearn_ros.nodes.scenario_recorder`)."""
