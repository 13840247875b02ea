"""ament_python set-up for dynlearn_ros (``colcon build`` on ROS 2, ``pip install`` elsewhere)."""

import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "dynlearn_ros"


def tree(root: str) -> list[tuple[str, list[str]]]:
    """data_files entries installing every file under ``root`` to share/<pkg>/<root>/..."""
    entries = []
    for dirpath, _dirs, files in os.walk(root):
        paths = [os.path.join(dirpath, f) for f in files if not f.startswith(".")]
        if paths:
            entries.append((os.path.join("share", PACKAGE, dirpath), paths))
    return entries


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")),
        *tree("models"),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="dynlearn_ros developers",
    maintainer_email="dev@dynlearn-ros.invalid",
    description="Learned robot dynamics and variance-scheduled computed-torque control for ROS 2",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "sim_bridge = dynlearn_ros.nodes.sim_bridge:main",
            "computed_torque = dynlearn_ros.nodes.computed_torque:main",
            "computed_torque_managed = dynlearn_ros.nodes.computed_torque_managed:main",
            "scenario_recorder = dynlearn_ros.nodes.scenario_recorder:main",
            "trainer = dynlearn_ros.nodes.trainer:main",
            "recorder = dynlearn_ros.nodes.recorder:main",
            "predictor = dynlearn_ros.nodes.predictor:main",
            "ik = dynlearn_ros.nodes.ik:main",
            "dynlearn-ros = dynlearn_ros.cli:main",
        ],
    },
)
