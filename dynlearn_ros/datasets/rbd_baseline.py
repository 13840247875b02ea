"""Analytic rigid-body baseline for inverse-dynamics data: Pinocchio RNEA on a realistic URDF.

tau_rnea = M(q) qdd + C(q, qd) qd + g(q) per row, with the robot's joints mapped to the data's
columns by name. The URDFs come from the ``example-robot-data`` package (realistic link masses
and inertias; no friction, no motor/rotor inertia, no payload), so on real data the residual
holds friction, reflected rotor inertia, payloads and sensor offsets: it is a baseline, not truth.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

import numpy as np

from dynlearn_ros.datasets.format import TrajectoryData

#: robot -> URDF path relative to example-robot-data's ``robots/`` folder
URDFS = {
    "panda": "panda_description/urdf/panda.urdf",
    "ur10": "ur_description/urdf/ur10_robot.urdf",
}


def _example_robot_data_dir() -> Path:
    candidates = []
    try:  # pinocchio's cmeel wheel and example-robot-data share the prefix
        import cmeel  # type: ignore[import-not-found]

        candidates.append(Path(cmeel.__path__[0]).parent / "cmeel.prefix")
    except ImportError:
        pass
    for entry in sys.path:
        candidates.append(Path(entry) / "cmeel.prefix")
    for prefix in candidates:
        robots = prefix / "share" / "example-robot-data" / "robots"
        if robots.is_dir():
            return robots
    raise FileNotFoundError(
        "example-robot-data robots/ folder not found under any site-packages/cmeel.prefix/share "
        "(pip install example-robot-data)"
    )


def urdf_for(robot: str) -> Path:
    """URDF of ``robot`` ("panda" or "ur10") from example-robot-data."""
    if robot not in URDFS:
        raise KeyError(f"no analytic URDF for '{robot}'; known: {sorted(URDFS)}")
    path = _example_robot_data_dir() / URDFS[robot]
    if not path.is_file():
        raise FileNotFoundError(f"URDF for {robot} not found at {path}")
    return path


@cache
def _model(robot: str):  # noqa: ANN202 - pinocchio types
    import pinocchio as pin

    return pin.buildModelFromUrdf(str(urdf_for(robot)))


def analytic_torque(data: TrajectoryData, robot: str) -> np.ndarray:
    """RNEA torque (N, n) N*m for every row of ``data`` (needs q, qd, qdd), columns in
    ``data.joint_names`` order. Model joints absent from the data (the Panda's fingers) are held
    at position 0 with zero velocity and acceleration. Gravity: 9.81 m/s^2 along -z of the base.
    """
    import pinocchio as pin

    if data.qdd is None:
        raise ValueError("analytic_torque needs accelerations (data.qdd is None)")
    model = _model(robot)
    pdata = model.createData()
    iq = np.empty(data.n_joints, dtype=np.int64)
    iv = np.empty(data.n_joints, dtype=np.int64)
    for k, name in enumerate(data.joint_names):
        if not model.existJointName(name):
            raise KeyError(f"joint '{name}' of the data is not in the {robot} model ({urdf_for(robot).name})")
        jid = model.getJointId(name)
        if model.nqs[jid] != 1 or model.nvs[jid] != 1:
            raise ValueError(f"joint '{name}' is not a 1-DoF joint")
        iq[k] = model.idx_qs[jid]
        iv[k] = model.idx_vs[jid]
    q = pin.neutral(model)
    v = np.zeros(model.nv)
    a = np.zeros(model.nv)
    out = np.empty((len(data), data.n_joints))
    for i in range(len(data)):
        q[iq] = data.q[i]
        v[iv] = data.qd[i]
        a[iv] = data.qdd[i]
        out[i] = pin.rnea(model, pdata, q, v, a)[iv]
    return out


def torque_rmse(data: TrajectoryData, robot: str) -> dict[str, list[float]]:
    """Per-joint RMSE (N*m) of :func:`analytic_torque` against ``data.tau``, next to the
    torque's std and the RMSE of a constant (mean) predictor for scale."""
    pred = analytic_torque(data, robot)
    err = pred - data.tau
    return {
        "joints": list(data.joint_names),
        "rmse": np.sqrt(np.mean(err**2, axis=0)).tolist(),
        "bias": np.mean(err, axis=0).tolist(),
        "tau_std": np.std(data.tau, axis=0).tolist(),
    }

