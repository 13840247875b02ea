"""Robot descriptions the package ships support for (numpy only; no pybullet import).

The URDFs come from ``pybullet_data`` (a data-only package: importing it does not load
PyBullet), so the simulator and the analytic Pinocchio model read the very same file.

* ``iiwa``: ``kuka_iiwa/model.urdf``, 7 revolute joints ``lbr_iiwa_joint_1..7``.
* ``panda``: ``franka_panda/panda.urdf`` with the two finger joints rewritten as *fixed* (closed
  gripper) into a cached copy, so the arm has exactly 7 movable joints in both PyBullet and
  Pinocchio. pybullet_data's Panda has placeholder inertias (0.1 on every link): it is a test
  plant, not a realistic Panda.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

ROBOTS = ("iiwa", "panda")


@dataclass(frozen=True)
class RobotSpec:
    """Static facts about one supported robot (arrays are (n,), URDF joint order)."""

    name: str
    urdf_path: Path
    joint_names: tuple[str, ...]
    ee_link: str
    effort_limits: np.ndarray  # N*m
    lower: np.ndarray  # rad
    upper: np.ndarray  # rad
    home: np.ndarray  # rad, a comfortable start configuration

    @property
    def n(self) -> int:
        return len(self.joint_names)


def _pybullet_data_dir() -> Path:
    import pybullet_data  # data-only package

    return Path(pybullet_data.getDataPath())


def _panda_fixed_fingers_urdf() -> Path:
    """pybullet_data's Panda with finger joints fixed and mesh paths made absolute (cached)."""
    from dynlearn_ros.paths import cache_dir

    src = _pybullet_data_dir() / "franka_panda" / "panda.urdf"
    text = src.read_text()
    text = re.sub(
        r'(<joint\s+name="panda_finger_joint[12]"\s+type=)"prismatic"', r'\1"fixed"', text
    )
    mesh_root = src.parent
    # mesh paths are relative or package://-relative to the URDF's folder: make them absolute
    text = re.sub(
        r'filename="(?:package://)?(?!/)([^"]+)"',
        lambda m: f'filename="{(mesh_root / m.group(1)).as_posix()}"', text,
    )
    out = cache_dir() / "urdf" / "panda_fixed_fingers.urdf"
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.is_file() or out.read_text() != text:
        tmp = out.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(out)
    return out


def _movable_joints(urdf: Path) -> list[ET.Element]:
    root = ET.parse(urdf).getroot()
    return [j for j in root.findall("joint") if j.get("type") in ("revolute", "continuous", "prismatic")]


@cache
def robot_spec(name: str) -> RobotSpec:
    """The :class:`RobotSpec` for ``name`` in :data:`ROBOTS`."""
    if name == "iiwa":
        urdf = _pybullet_data_dir() / "kuka_iiwa" / "model.urdf"
        ee_link, home = "lbr_iiwa_link_7", [0.0, 0.5, 0.0, -1.2, 0.0, 0.8, 0.0]
    elif name == "panda":
        urdf = _panda_fixed_fingers_urdf()
        ee_link, home = "panda_hand", [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785]
    else:
        raise ValueError(f"unknown robot '{name}'; choose from {ROBOTS}")
    joints = _movable_joints(urdf)
    limits = [j.find("limit") for j in joints]
    return RobotSpec(
        name=name,
        urdf_path=urdf,
        joint_names=tuple(j.get("name") for j in joints),
        ee_link=ee_link,
        effort_limits=np.array([float(lim.get("effort")) for lim in limits]),
        lower=np.array([float(lim.get("lower")) for lim in limits]),
        upper=np.array([float(lim.get("upper")) for lim in limits]),
        home=np.array(home),
    )
