"""Benchmark measurement logic behind ``dynlearn-ros bench`` (no rclpy here: node processes are
started as subprocesses and their JSON read back)."""
