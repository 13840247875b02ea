"""Data sets as plain numpy (no torch, no rclpy): the generic trajectory format and loaders
for the real robot data in the shared data root."""

from dynlearn_ros.datasets.format import TrajectoryData, load_npz, save_npz

__all__ = ["TrajectoryData", "load_npz", "save_npz"]
