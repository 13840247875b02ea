"""Learning core (torch): RKN cell, ac-RKN forward/inverse models, baselines, training,
evaluation and ONNX step export. Never imports rclpy."""
