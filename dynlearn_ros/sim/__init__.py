"""PyBullet plant standing in for the robot (no ROS imports here).

* :mod:`dynlearn_ros.sim.plant`: :class:`SimPlant`, a torque-controlled arm whose dynamics
  match the URDF's rigid-body model (Pinocchio) up to an unmodelled joint friction and payload.
* :mod:`dynlearn_ros.sim.excitation`: seeded finite Fourier series reference trajectories.
* :mod:`dynlearn_ros.sim.collect`: PD + RNEA tracking of those references, recording data sets.

Importing this package does not import pybullet; :class:`SimPlant` does on construction.
"""

from __future__ import annotations

__all__ = ["SimPlant", "FourierTrajectory", "collect_dataset"]


def __getattr__(name: str):  # lazy: keep `import dynlearn_ros.sim` cheap
    if name == "SimPlant":
        from dynlearn_ros.sim.plant import SimPlant

        return SimPlant
    if name == "FourierTrajectory":
        from dynlearn_ros.sim.excitation import FourierTrajectory

        return FourierTrajectory
    if name == "collect_dataset":
        from dynlearn_ros.sim.collect import collect_dataset

        return collect_dataset
    raise AttributeError(name)
