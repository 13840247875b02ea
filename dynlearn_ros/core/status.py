"""The computed_torque node's ``~/status`` row, defined once (the node fills it, the scenarios
and the recorder read it).

A row (std_msgs/Float64MultiArray data, float64) is the STATUS_FIELDS, each n values in URDF
joint order, then the STATUS_TAIL scalars:

    q_des (rad) | q (rad) | error = q_des - q (rad) | kp (N*m/rad) | kd (N*m*s/rad) |
    std (N*m) | tau_ff (N*m) | tau_cmd (N*m) | mode | tick_us | t_ref (s) | model_version | model_swaps

mode: :class:`dynlearn_ros.core.control.Mode` as a number (0 normal, 1 model fallback, 2 hold,
3 following-error fault, 4 waiting: no row is published before the first state, the number is
there for /diagnostics and the summary); tick_us: this tick's duration in the
node (us); t_ref: the reference time of the tick (s); model_version: the active model's
``version`` (0 when it has none, e.g. the analytic model); model_swaps: model swaps so far.
"""

from __future__ import annotations

import numpy as np

STATUS_FIELDS = ("q_des", "q", "error", "kp", "kd", "std", "tau_ff", "tau_cmd")
STATUS_TAIL = ("mode", "tick_us", "t_ref", "model_version", "model_swaps")


def status_width(n: int) -> int:
    """Values in one row for n joints."""
    return len(STATUS_FIELDS) * n + len(STATUS_TAIL)


def status_label() -> str:
    """The first layout dimension's label: ``field:q_des,q,...``."""
    return "field:" + ",".join(STATUS_FIELDS)


def fill_status(ctl, tick_us: float, model_version: int, model_swaps: int, out: np.ndarray) -> np.ndarray:
    """Write the row of controller ``ctl`` (a ComputedTorqueController after a tick) into
    ``out`` (status_width(n),); no allocation."""
    n = ctl.n
    for i, arr in enumerate((ctl.query.q_des, ctl.query.q, ctl.err, ctl.kp, ctl.kd, ctl.std, ctl.tau_ff, ctl.tau)):
        out[i * n:(i + 1) * n] = arr
    k = len(STATUS_FIELDS) * n
    out[k] = float(ctl.mode)
    out[k + 1] = tick_us
    out[k + 2] = ctl.t_ref
    out[k + 3] = model_version
    out[k + 4] = model_swaps
    return out


def split_status(rows: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Columns of recorded rows (r, status_width(n)): each STATUS_FIELDS name -> (r, n), each
    STATUS_TAIL name -> (r,), and 't' (= t_ref, s). Rows recorded before the tail grew (3
    scalars: mode, tick_us, t_ref) are read too; the missing columns are then absent."""
    rows = np.atleast_2d(rows)
    out = {name: rows[:, i * n:(i + 1) * n] for i, name in enumerate(STATUS_FIELDS)}
    k = len(STATUS_FIELDS) * n
    for j, name in enumerate(STATUS_TAIL):
        if k + j < rows.shape[1]:
            out[name] = rows[:, k + j]
    out["t"] = out["t_ref"]
    return out
