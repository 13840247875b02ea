"""onnxruntime-backed predictors (no rclpy, no torch on the control path)."""
