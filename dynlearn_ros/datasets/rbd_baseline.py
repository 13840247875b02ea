"""Analytic rigid-body baseline for inverse-dynamics data: Pinocchio RNEA on a URDF.

tau_rnea = M(q) qdd + C(q, qd) qd + g(q) per row, with the robot's joints mapped to the data's
columns by name. The URDF is a robot table entry's (``config/robots.yaml``: ``panda_erd`` and
``ur10`` are example-robot-data's, with realistic link masses and inertias; a data set names its
baseline robot there through ``datasets:``) or any file given as ``urdf`` (your own robot's
data). No friction, no motor/rotor inertia, no payload: on real data the residual holds
friction, reflected rotor inertia, payloads and sensor offsets - a baseline, not truth.
"""

from __future__ import annotations

import warnings
from functools import cache
from pathlib import Path

import numpy as np

from dynlearn_ros.core.robots import dataset_robot, robot_names, robot_spec
from dynlearn_ros.datasets.format import TrajectoryData

#: names the data-set baseline used before the robot table: "panda" meant example-robot-data's
#: Panda, which the table calls ``panda_erd`` ("panda" is pybullet_data's placeholder Panda).
LEGACY_NAMES = {"panda": "panda_erd"}


def _table_name(robot: str) -> str:
    if robot in LEGACY_NAMES:
        new = LEGACY_NAMES[robot]
        warnings.warn(f"analytic baseline robot '{robot}' now means pybullet_data's placeholder "
                      f"Panda; using '{new}' (example-robot-data) as before - pass '{new}'",
                      DeprecationWarning, stacklevel=3)
        return new
    return robot


def urdf_for(robot: str) -> Path:
    """URDF of robot table entry ``robot``."""
    name = _table_name(robot)
    if name not in robot_names():
        raise KeyError(f"no analytic URDF for '{robot}'; known: {list(robot_names())}")
    return robot_spec(name).urdf_path


def baseline_urdf(dataset: str | None = None, robot: str | None = None, urdf: str | Path | None = None) -> Path:
    """The URDF of the analytic baseline: ``urdf`` if given, else table entry ``robot``, else
    the entry whose ``datasets`` lists ``dataset``. Raises KeyError if none applies."""
    if urdf:
        path = Path(urdf).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"URDF not found: {path}")
        return path.resolve()
    if robot:
        return urdf_for(robot)
    name = dataset_robot(dataset) if dataset else None
    if name is None:
        raise KeyError(f"no analytic baseline URDF for data set '{dataset}': give a URDF (--urdf PATH) "
                       "or list the data set under a robot's 'datasets' in the robot table")
    return urdf_for(name)


@cache
def _model(urdf: Path):  # noqa: ANN202 - pinocchio types
    import pinocchio as pin

    return pin.buildModelFromUrdf(str(urdf))


def analytic_torque(data: TrajectoryData, robot: str | None = None, urdf: str | Path | None = None) -> np.ndarray:
    """RNEA torque (N, n) N*m for every row of ``data`` (needs q, qd, qdd), columns in
    ``data.joint_names`` order, on robot table entry ``robot``'s URDF or on the file ``urdf``
    (which wins). Model joints absent from the data are held at position 0 with zero velocity
    and acceleration. Gravity: 9.81 m/s^2 along -z of the base.
    """
    import pinocchio as pin

    if data.qdd is None:
        raise ValueError("analytic_torque needs accelerations (data.qdd is None)")
    if robot is None and urdf is None:
        raise ValueError("analytic_torque needs a robot table entry or a URDF path")
    path = baseline_urdf(robot=robot, urdf=urdf)
    model = _model(path)
    pdata = model.createData()
    iq = np.empty(data.n_joints, dtype=np.int64)
    iv = np.empty(data.n_joints, dtype=np.int64)
    for k, name in enumerate(data.joint_names):
        if not model.existJointName(name):
            raise KeyError(f"joint '{name}' of the data is not in the model of {path}")
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


def torque_rmse(data: TrajectoryData, robot: str | None = None, urdf: str | Path | None = None) -> dict[str, list[float]]:
    """Per-joint RMSE and bias (N*m) of :func:`analytic_torque` against ``data.tau``, next to
    the torque's std for scale."""
    pred = analytic_torque(data, robot, urdf)
    err = pred - data.tau
    return {
        "joints": list(data.joint_names),
        "rmse": np.sqrt(np.mean(err**2, axis=0)).tolist(),
        "bias": np.mean(err, axis=0).tolist(),
        "tau_std": np.std(data.tau, axis=0).tolist(),
    }

