"""Control-side logic with numpy and pinocchio only (no rclpy, no torch)."""
