"""The rigid-body (analytic) baseline of the inverse-dynamics tables: Pinocchio RNEA of the
nominal model on a data set's rows (no torch)."""

from __future__ import annotations

import numpy as np

#: robot name in a data set's metadata -> the robot table entry of its realistic URDF
#: (example-robot-data; config/robots.yaml): the real Panda's is ``panda_erd``
ANALYTIC_URDF_ROBOTS = {"panda": "panda_erd", "ur10": "ur10"}


def rigid_body_torque(test, robot: str | None) -> np.ndarray | None:
    """Rigid-body torque (N*m, (N, n)) of the nominal model (Pinocchio RNEA) on every row of
    ``test`` from its q, qd, qdd, or None if there is no URDF for ``robot``."""
    if robot in ANALYTIC_URDF_ROBOTS:
        from dynlearn_ros.datasets.rbd_baseline import analytic_torque as _urdf_torque

        return np.asarray(_urdf_torque(test, ANALYTIC_URDF_ROBOTS[robot]))
    if robot == "iiwa":
        from dynlearn_ros.core.analytic import RigidBodyModel
        from dynlearn_ros.core.robots import robot_spec

        rb = RigidBodyModel(robot_spec("iiwa").urdf_path, test.joint_names)
        out = np.empty_like(test.tau)
        for i in range(len(test)):
            rb.rnea(test.q[i], test.qd[i], test.qdd[i], out[i])
        return out
    return None


def rigid_body_metrics(test, robot: str | None) -> dict | None:
    """RMSE of the rigid-body model (Pinocchio RNEA) on the test split, or None if no URDF:
    "rmse" pooled over rows and joints (the package's "all"), per joint, and their mean."""
    out = rigid_body_torque(test, robot)
    if out is None:
        return None
    err = out - test.tau
    rmse = np.sqrt(np.mean(err**2, axis=0))
    return {"rmse": float(np.sqrt(np.mean(err**2))), "rmse_per_joint": rmse.tolist(), "rmse_mean_joint": float(rmse.mean())}
