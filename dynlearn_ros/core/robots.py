"""The robot table: every supported robot as data (numpy + pyyaml; no pybullet import).

The table is ``config/robots.yaml`` (installed with the other parameter files), optionally
layered with further tables named in ``$DYNLEARN_ROS_ROBOTS`` (paths separated by ``os.pathsep``;
a later table's entry replaces an earlier one of the same name). YAML rather than Python so a
robot is added on an installed machine without touching the package's code, and so the
manufacturers' figures sit next to their sources; this module validates it on load (lengths,
finite values, known variants) and fails with the entry's name in the message.

Two kinds of entry:

* ``robots``: a URDF (its source: ``pybullet_data``, ``example_robot_data`` or a ``file``) with
  the joints' URDF order, end-effector link, home pose, controller parameter file, inertia-based
  gain scaling, real-driver joint-name mappings, the data sets it is the analytic baseline of,
  and whether PyBullet simulates it. One name means one URDF: ``panda`` is pybullet_data's
  placeholder-inertia Panda (sim + its analytic model), ``panda_erd`` example-robot-data's
  realistic one (the baseline of real Panda data).
* ``variants``: a manufacturer's limits for one robot model (KUKA LBR iiwa 7 R800 / 14 R820,
  Franka Panda / FR3): position, velocity, torque and torque-rate, with the source cited.

:func:`robot_spec` joins a robot with one of its variants into a :class:`RobotSpec`.
"""

from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

URDF_SOURCES = ("pybullet_data", "example_robot_data", "file")
TABLE_ENV = "DYNLEARN_ROS_ROBOTS"


@dataclass(frozen=True)
class Variant:
    """Manufacturer's limits of one robot model, (n,) arrays in URDF joint order."""

    name: str
    title: str
    source: str  # where the figures come from (data sheet / documentation page)
    lower: np.ndarray  # rad
    upper: np.ndarray  # rad
    velocity: np.ndarray  # rad/s
    torque: np.ndarray  # N*m, symmetric
    torque_rate: np.ndarray | None  # N*m/s, symmetric; None: the manufacturer publishes none


@dataclass(frozen=True)
class RobotEntry:
    """One row of the ``robots`` table (paths resolved, nothing loaded yet)."""

    name: str
    description: str
    urdf_source: str
    urdf_rel: str  # path inside the source (or of the file)
    fixed_joints: tuple[str, ...]
    simulate: bool
    ee_link: str
    home: np.ndarray  # rad
    controller_config: Path | None  # computed_torque parameter file
    gain_natural_frequency: tuple[float, float]  # rad/s (w_min, w_max)
    variants: tuple[str, ...]
    default_variant: str | None
    drivers: dict[str, tuple[str, ...]]  # driver -> joint names it publishes, URDF order
    datasets: tuple[str, ...]
    table: Path  # the table file the entry came from


@dataclass(frozen=True)
class RobotSpec:
    """A robot joined with one variant: what sim, controller and baselines need.

    Arrays are (n,) in URDF joint order. ``effort_limits`` / ``torque_limits`` are the
    variant's (manufacturer's) torque limits when the robot has a variant, else the URDF's;
    ``urdf_effort_limits`` stay the URDF's (the simulated plant's motors saturate there)."""

    name: str
    urdf_path: Path
    joint_names: tuple[str, ...]
    ee_link: str
    effort_limits: np.ndarray  # N*m
    lower: np.ndarray  # rad, the URDF's joint range (what PyBullet enforces)
    upper: np.ndarray  # rad
    home: np.ndarray  # rad, a comfortable start configuration
    urdf_effort_limits: np.ndarray  # N*m
    velocity_limits: np.ndarray  # rad/s (variant's, else the URDF's)
    torque_rate_limits: np.ndarray | None  # N*m/s, None: no published limit
    variant: Variant | None
    entry: RobotEntry

    @property
    def n(self) -> int:
        return len(self.joint_names)

    @property
    def torque_limits(self) -> np.ndarray:
        """The controller's default symmetric torque limits (N*m), (n,)."""
        return self.effort_limits

    def driver_joint_names(self, driver: str) -> tuple[str, ...]:
        """Joint names ``driver`` publishes for this robot, in URDF order ("generic": the URDF's)."""
        if driver == "generic":
            return self.joint_names
        if driver not in self.entry.drivers:
            raise KeyError(f"robot '{self.name}' has no joint-name mapping for driver '{driver}' "
                           f"(has: generic, {', '.join(sorted(self.entry.drivers)) or 'no others'})")
        return self.entry.drivers[driver]


# ---------------------------------------------------------------------------- table loading
def table_paths() -> list[Path]:
    """The shipped ``config/robots.yaml`` followed by the files in ``$DYNLEARN_ROS_ROBOTS``."""
    from dynlearn_ros.paths import share_dir

    paths = [share_dir() / "config" / "robots.yaml"]
    for p in os.environ.get(TABLE_ENV, "").split(os.pathsep):
        if p:
            paths.append(Path(p).expanduser().resolve())
    return paths


def _floats(entry: str, key: str, value, n: int | None = None, deg: bool = False) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"robot table: {entry}.{key}: expected numbers, got {value!r}") from exc
    if n is not None and arr.size != n:
        raise ValueError(f"robot table: {entry}.{key}: expected {n} values, got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"robot table: {entry}.{key}: values must be finite, got {arr.tolist()}")
    return np.deg2rad(arr) if deg else arr


def _limit(entry: str, raw: dict, key: str) -> np.ndarray:
    if key in raw:
        return _floats(entry, key, raw[key])
    if f"{key}_deg" in raw:
        return _floats(entry, f"{key}_deg", raw[f"{key}_deg"], deg=True)
    raise ValueError(f"robot table: variant {entry} needs '{key}' (or '{key}_deg')")


def _variant(name: str, raw: dict) -> Variant:
    lower, upper = _limit(name, raw, "lower"), _limit(name, raw, "upper")
    velocity, torque = _limit(name, raw, "velocity"), _floats(name, "torque", raw.get("torque"))
    rate = raw.get("torque_rate")
    rate = None if rate is None else _floats(name, "torque_rate", rate)
    n = lower.size
    for key, arr in (("upper", upper), ("velocity", velocity), ("torque", torque), ("torque_rate", rate)):
        if arr is not None and arr.size != n:
            raise ValueError(f"robot table: variant {name}.{key}: {arr.size} values, lower has {n}")
    if np.any(lower >= upper):
        raise ValueError(f"robot table: variant {name}: lower must be < upper on every joint")
    for key, arr in (("velocity", velocity), ("torque", torque), ("torque_rate", rate)):
        if arr is not None and np.any(arr <= 0):
            raise ValueError(f"robot table: variant {name}.{key}: values must be > 0")
    return Variant(name, str(raw.get("title", name)), str(raw.get("source", "")), lower, upper,
                   velocity, torque, rate)


def _entry(name: str, raw: dict, table: Path) -> RobotEntry:
    urdf = raw.get("urdf") or {}
    source = urdf.get("source")
    if source not in URDF_SOURCES or not urdf.get("path"):
        raise ValueError(f"robot table: {name}.urdf needs source (one of {URDF_SOURCES}) and path")
    cfg = raw.get("controller_config")
    cfg_path = None
    if cfg:
        cfg_path = Path(cfg) if Path(cfg).is_absolute() else table.parent / cfg
    w = _floats(name, "gain_natural_frequency", raw.get("gain_natural_frequency", [10.0, 40.0]), 2)
    if not 0 < w[0] <= w[1]:
        raise ValueError(f"robot table: {name}.gain_natural_frequency must be 0 < w_min <= w_max")
    variants = tuple(raw.get("variants") or ())
    default = raw.get("default_variant", variants[0] if variants else None)
    if default is not None and default not in variants:
        raise ValueError(f"robot table: {name}.default_variant '{default}' is not in its variants {list(variants)}")
    if "ee_link" not in raw or "home" not in raw:
        raise ValueError(f"robot table: {name} needs ee_link and home")
    return RobotEntry(
        name=name, description=" ".join(str(raw.get("description", name)).split()),
        urdf_source=source, urdf_rel=str(urdf["path"]), fixed_joints=tuple(urdf.get("fixed_joints") or ()),
        simulate=bool(raw.get("simulate", False)), ee_link=str(raw["ee_link"]),
        home=_floats(name, "home", raw["home"]), controller_config=cfg_path,
        gain_natural_frequency=(float(w[0]), float(w[1])), variants=variants, default_variant=default,
        drivers={str(k): tuple(v) for k, v in (raw.get("drivers") or {}).items()},
        datasets=tuple(raw.get("datasets") or ()), table=table,
    )


@dataclass(frozen=True)
class RobotTable:
    robots: dict[str, RobotEntry]
    variants: dict[str, Variant]


@cache
def _load(paths: tuple[Path, ...]) -> RobotTable:
    import yaml

    robots: dict[str, RobotEntry] = {}
    variants: dict[str, Variant] = {}
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"robot table not found: {path}")
        raw = yaml.safe_load(path.read_text()) or {}
        for name, body in (raw.get("variants") or {}).items():
            variants[str(name)] = _variant(str(name), body or {})
        for name, body in (raw.get("robots") or {}).items():
            robots[str(name)] = _entry(str(name), body or {}, path)
    for e in robots.values():
        missing = [v for v in e.variants if v not in variants]
        if missing:
            raise ValueError(f"robot table: {e.name} names unknown variant(s) {missing}")
    return RobotTable(robots, variants)


def robot_table() -> RobotTable:
    """The merged table (cached per list of table files)."""
    return _load(tuple(table_paths()))


def robot_names(simulated_only: bool = False) -> tuple[str, ...]:
    """Names in the table, in table order (``simulated_only``: those PyBullet runs)."""
    return tuple(n for n, e in robot_table().robots.items() if e.simulate or not simulated_only)


def variant_names(robot: str | None = None) -> tuple[str, ...]:
    """All variants in the table, or those of ``robot``."""
    t = robot_table()
    return tuple(t.variants) if robot is None else _get_entry(robot).variants


def dataset_robot(dataset: str) -> str | None:
    """The table entry whose URDF is the analytic baseline of ``dataset`` (None: none)."""
    for name, e in robot_table().robots.items():
        if dataset in e.datasets:
            return name
    return None


def _get_entry(name: str) -> RobotEntry:
    t = robot_table()
    if name not in t.robots:
        raise ValueError(f"unknown robot '{name}'; choose from {tuple(t.robots)}")
    return t.robots[name]


def __getattr__(attr: str):  # noqa: ANN202 - module attribute, PEP 562
    if attr == "ROBOTS":  # the simulated robots: the launch and node choices
        return robot_names(simulated_only=True)
    raise AttributeError(attr)


# ---------------------------------------------------------------------------- URDF resolution
def _pybullet_data_dir() -> Path:
    import pybullet_data  # data-only package

    return Path(pybullet_data.getDataPath())


def example_robot_data_dir() -> Path:
    """example-robot-data's ``robots/`` folder: the pip wheel's (beside pinocchio's cmeel
    prefix), a ROS install's (``<prefix>/share/example-robot-data`` on AMENT_PREFIX_PATH), or
    robotpkg's (/opt/openrobots)."""
    import sys

    candidates = []
    try:
        import cmeel  # type: ignore[import-not-found]

        candidates.append(Path(cmeel.__path__[0]).parent / "cmeel.prefix")
    except ImportError:
        pass
    candidates += [Path(entry) / "cmeel.prefix" for entry in sys.path]
    candidates += [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    candidates.append(Path("/opt/openrobots"))
    for prefix in candidates:
        robots = prefix / "share" / "example-robot-data" / "robots"
        if robots.is_dir():
            return robots
    raise FileNotFoundError("example-robot-data robots/ folder not found under any site-packages/"
                            "cmeel.prefix/share (pip install example-robot-data)")


def _source_path(e: RobotEntry) -> Path:
    if e.urdf_source == "pybullet_data":
        path = _pybullet_data_dir() / e.urdf_rel
    elif e.urdf_source == "example_robot_data":
        path = example_robot_data_dir() / e.urdf_rel
    else:
        path = Path(e.urdf_rel) if Path(e.urdf_rel).is_absolute() else e.table.parent / e.urdf_rel
    if not path.is_file():
        raise FileNotFoundError(f"URDF of robot '{e.name}' not found: {path}")
    return path


def _with_fixed_joints(src: Path, joints: tuple[str, ...], name: str) -> Path:
    """A cached copy of ``src`` with ``joints`` made fixed and relative mesh paths made absolute."""
    from dynlearn_ros.paths import cache_dir

    text = src.read_text()
    for j in joints:
        text, count = re.subn(rf'(<joint\s+name="{re.escape(j)}"\s+type=)"(?:prismatic|revolute|continuous)"',
                              r'\1"fixed"', text)
        if count != 1:
            raise ValueError(f"robot table: {name}.urdf.fixed_joints: joint '{j}' not found once in {src}")

    def absolute(m: re.Match) -> str:
        cand = src.parent / m.group(1)
        return f'filename="{cand.as_posix()}"' if cand.is_file() else m.group(0)

    # PyBullet resolves package://x against the URDF's folder; make those paths absolute
    text = re.sub(r'filename="(?:package://)?(?!/)([^"]+)"', absolute, text)
    out = cache_dir() / "urdf" / f"{name}_fixed_joints.urdf"
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.is_file() or out.read_text() != text:
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(out)
    return out


def urdf_joint_limits(urdf: Path) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(names, lower, upper, velocity, effort) of the movable joints of ``urdf`` in file order.

    A continuous joint gets lower = -inf, upper = +inf; a missing effort / velocity is inf."""
    root = ET.parse(urdf).getroot()
    names, lo, hi, vel, eff = [], [], [], [], []
    for j in root.findall("joint"):
        if j.get("type") not in ("revolute", "continuous", "prismatic"):
            continue
        attrs = j.find("limit").attrib if j.find("limit") is not None else {}
        names.append(j.get("name"))
        cont = j.get("type") == "continuous"
        lo.append(-math.inf if cont else float(attrs.get("lower", "-inf")))
        hi.append(math.inf if cont else float(attrs.get("upper", "inf")))
        vel.append(float(attrs.get("velocity", "inf")))
        eff.append(float(attrs.get("effort", "inf")))
    return tuple(names), np.array(lo), np.array(hi), np.array(vel), np.array(eff)


def robot_spec(name: str, variant: str | None = None) -> RobotSpec:
    """The :class:`RobotSpec` of table entry ``name`` with ``variant`` (None: its default).

    Cached per (name, variant, table files): built once, re-read if $DYNLEARN_ROS_ROBOTS changes."""
    return _robot_spec(name, variant, tuple(table_paths()))


@cache
def _robot_spec(name: str, variant: str | None, _tables: tuple[Path, ...]) -> RobotSpec:
    e = _get_entry(name)
    if variant is None:
        variant = e.default_variant
    elif variant not in e.variants:
        raise ValueError(f"robot '{name}' has no variant '{variant}'; its variants: {list(e.variants)}")
    urdf = _source_path(e)
    if e.fixed_joints:
        urdf = _with_fixed_joints(urdf, e.fixed_joints, name)
    joints, lower, upper, velocity, effort = urdf_joint_limits(urdf)
    n = len(joints)
    home = e.home
    if home.size != n:
        raise ValueError(f"robot table: {name}.home has {home.size} values, the URDF {n} movable joints")
    for driver, names in e.drivers.items():
        if len(names) != n or len(set(names)) != n:
            raise ValueError(f"robot table: {name}.drivers.{driver}: need {n} unique joint names")
    v = robot_table().variants[variant] if variant else None
    if v is not None and v.torque.size != n:
        raise ValueError(f"robot table: variant {variant} has {v.torque.size} joints, robot {name} {n}")
    return RobotSpec(
        name=name, urdf_path=urdf, joint_names=joints, ee_link=e.ee_link,
        effort_limits=(v.torque if v is not None else effort).copy(),
        lower=lower, upper=upper, home=home.copy(), urdf_effort_limits=effort,
        velocity_limits=(v.velocity if v is not None else velocity).copy(),
        torque_rate_limits=None if v is None or v.torque_rate is None else v.torque_rate.copy(),
        variant=v, entry=e,
    )


def inertia_gains(spec: RobotSpec, inertia: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(k_min, k_max, zeta), each (n,), from joint inertias ``inertia`` (n,) kg*m^2 and the
    entry's natural frequencies (w_min, w_max) rad/s: K = I w^2, zeta = 2 sqrt(I) (damping
    ratio 1, since K_D = zeta sqrt(K_P))."""
    inertia = np.asarray(inertia, dtype=np.float64)
    w_min, w_max = spec.entry.gain_natural_frequency
    return inertia * w_min**2, inertia * w_max**2, 2.0 * np.sqrt(inertia)


def ee_com_local(spec: RobotSpec) -> np.ndarray:
    """Centre of mass (3,) m of ``spec.ee_link`` in that link's frame (its URDF inertial origin):
    where the simulated plant puts a payload and the online learner's payload regressor expects it."""
    root = ET.parse(spec.urdf_path).getroot()
    for link in root.findall("link"):
        if link.get("name") == spec.ee_link:
            origin = link.find("inertial/origin")
            xyz = "0 0 0" if origin is None else origin.get("xyz", "0 0 0")
            return np.array([float(v) for v in xyz.split()])
    raise ValueError(f"link {spec.ee_link} not in {spec.urdf_path}")
