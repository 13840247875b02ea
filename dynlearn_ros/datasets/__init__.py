"""Data sets as plain numpy (no torch, no rclpy): the generic trajectory format and loaders
for the real robot data in the shared data root.

``load_dataset`` and ``list_datasets`` (from :mod:`dynlearn_ros.datasets.catalog`) are imported
lazily, so importing the format alone does not pull in scipy.
"""

from dynlearn_ros.datasets.format import TrajectoryData, load_npz, save_npz

__all__ = ["TrajectoryData", "list_datasets", "load_dataset", "load_npz", "save_npz"]


def __getattr__(name: str):  # noqa: ANN202 - lazy re-export
    if name in ("load_dataset", "list_datasets"):
        from dynlearn_ros.datasets import catalog

        return getattr(catalog, name)
    raise AttributeError(f"module 'dynlearn_ros.datasets' has no attribute {name!r}")
