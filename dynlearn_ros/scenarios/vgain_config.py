"""The variance-scheduled closed-loop scenario's settings (``config/scenario_vgain.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from dynlearn_ros.core.robots import RobotSpec, robot_spec

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "scenario_vgain.yaml"


@dataclass
class ScenarioConfig:
    """Plant (payload kg, friction N*m*s/rad and N*m, eps rad/s), reference (waypoint offsets from
    home, rad; move/dwell s), run length (s) and the configurations {key: {label, controller
    params, k_max_from_k_min, waypoint_offsets (own reference), baseline (key the K_P cut and
    RMSE ratio compare against, default "a")}}."""

    def baseline(self, key: str) -> str:
        return str(self.configurations[key].get("baseline", "a"))

    robot: str
    payload_kg: float
    friction_viscous: list[float]
    friction_coulomb: list[float]
    coulomb_velocity_eps: float
    waypoint_offsets: list[list[float]]
    move_s: float
    dwell_s: float
    duration_s: float
    settle_s: float
    status_decimation: int
    data_jitter_rad: float
    configurations: dict[str, dict] = field(default_factory=dict)

    @property
    def spec(self) -> RobotSpec:
        return robot_spec(self.robot)

    def waypoints_array(self, offsets: list[list[float]] | None = None) -> np.ndarray:
        """(m, n) rad: home + offsets (default: the scenario's ``waypoint_offsets``), clipped
        0.1 rad inside the joint limits."""
        s = self.spec
        off = np.asarray(self.waypoint_offsets if offsets is None else offsets, dtype=np.float64)
        if off.ndim != 2 or off.shape[1] != s.n:
            raise ValueError(f"waypoint_offsets: need rows of {s.n} values, got shape {off.shape}")
        return np.clip(s.home + off, s.lower + 0.1, s.upper - 0.1)

    def bridge_params(self) -> dict:
        return {"robot": self.robot, "stepping": "lockstep", "payload_kg": float(self.payload_kg),
                "friction_viscous": [float(x) for x in self.friction_viscous],
                "friction_coulomb": [float(x) for x in self.friction_coulomb],
                "coulomb_velocity_eps": float(self.coulomb_velocity_eps)}


def load_config(path: str | Path | None = None) -> ScenarioConfig:
    """Read the scenario YAML (default: the repository's config/scenario_vgain.yaml)."""
    p = Path(path) if path else DEFAULT_CONFIG
    raw = yaml.safe_load(p.read_text())
    try:
        return ScenarioConfig(**raw)
    except TypeError as exc:
        raise ValueError(f"{p}: {exc}") from exc
