"""Which joints a recording excites: can the data support a model along every joint?

A learned inverse model maps (q, qd, qdd) to torque. Along a joint whose position and velocity
the recording barely varied, nothing in the data fixes the model's slope, and that slope acts as
a gain inside the control loop (docs/bags.md, the round trip from a pick-and-place bag, in which
iiwa joints 3, 5, 7 stayed still, dtau_2/dqd_7 = 295 N*m*s/rad against K_D,7 = 0.1, and the run
oscillated from t = 0.08 s).

The check, per joint j, on the rows of a converted bag (or any :class:`TrajectoryData`):

* ``q_std`` (rad) and ``qd_std`` (rad/s), the standard deviations over all rows, against
  ``Q_FRACTION`` of the joint's range and ``QD_FRACTION`` of its velocity limit (the robot table's,
  :func:`dynlearn_ros.core.robots.robot_spec`, when the joint names are a known robot's; else the
  absolute ``Q_FALLBACK`` / ``QD_FALLBACK``). A joint is *excited* when both pass.
* ``qdd_std`` (rad/s^2) is reported, not judged: in a closed-loop bag the accelerations of a joint
  that stays put are the controller's corrections (joint 6 of that bag: 1.97 rad/s^2 at a position
  spread of 0.01 rad), so their spread says nothing about the states covered.

Why the standard deviation and these fractions: every model here standardizes its inputs by their
std over the training data (``datasets.normalize.Normalizer``), so a slope of one target std per
input std, which a regression may take freely along an input the data holds constant, is
``std(tau_i) / std(x_j)`` in physical units: the gain a model can inject along joint j grows as
1 / std(x_j). The fractions sit between what was measured (iiwa, 5 kg, docs/bags.md):

* the pick-and-place bag: the moving joints 1, 2, 4 at q_std 8.4 / 3.1 / 2.7 % of their range and
  qd_std 20 / 7.6 / 5.1 % of their velocity limit; the still joints 3, 5, 6, 7 at 0.02 / 0.13 /
  0.25 / 0.001 % of the range (joint 6's qd_std, 3.2 % of its limit, is oscillation about a
  held position, hence both must pass);
* the built-in sine (0.25 rad per joint, 0.25-0.55 Hz): 2.9-4.2 % of the range, 16-22 % of the
  velocity limit on every joint.

1 % of the range and 2 % of the velocity limit are a factor 2.7-4 below the least-moving joint
that was learned along and 4 or more above every still joint's position spread.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dynlearn_ros.datasets.robot_limits import robot_limits

#: q_std must reach this fraction of the joint's range (upper - lower)
Q_FRACTION = 0.01
#: qd_std must reach this fraction of the joint's velocity limit
QD_FRACTION = 0.02
#: thresholds when the joint names are no known robot's: 1 % of a 4 rad range, 2 % of 2.5 rad/s
Q_FALLBACK = 0.04   # rad
QD_FALLBACK = 0.05  # rad/s


def excitation(q: np.ndarray, qd: np.ndarray, qdd: np.ndarray | None, joint_names: Sequence[str],
               joint_range: np.ndarray | None = None, velocity_limit: np.ndarray | None = None) -> dict:
    """Per-joint spread of q (N, n) rad, qd (N, n) rad/s and qdd (N, n) rad/s^2 (or None) against
    the thresholds of the module docstring.

    ``joint_range`` (n,) rad and ``velocity_limit`` (n,) rad/s default to the robot table's for
    these joint names (:func:`robot_limits`). Returns a JSON-able dict: ``joints`` (one dict per
    joint: q_std, qd_std, qdd_std, q_threshold, qd_threshold, excited), ``unexcited`` (names),
    ``limits_from`` (robot name or "fallback") and the fractions used."""
    q, qd = np.asarray(q, dtype=np.float64), np.asarray(qd, dtype=np.float64)
    names = list(joint_names)
    n = len(names)
    if q.ndim != 2 or q.shape[1] != n or qd.shape != q.shape:
        raise ValueError(f"q and qd must be (N, {n}), got {q.shape} and {qd.shape}")
    source = "given"
    if joint_range is None or velocity_limit is None:
        robot, rng, vlim = robot_limits(names)
        source = robot or "fallback"
        joint_range = rng if joint_range is None else joint_range
        velocity_limit = vlim if velocity_limit is None else velocity_limit
    q_thr = (Q_FRACTION * np.asarray(joint_range, dtype=np.float64) if joint_range is not None
             else np.full(n, Q_FALLBACK))
    qd_thr = (QD_FRACTION * np.asarray(velocity_limit, dtype=np.float64) if velocity_limit is not None
              else np.full(n, QD_FALLBACK))
    # nanstd: a row with a non-finite value (never written by align) must not hide a joint's spread
    q_std = np.nanstd(q, axis=0) if len(q) else np.zeros(n)
    qd_std = np.nanstd(qd, axis=0) if len(qd) else np.zeros(n)
    qdd_std = None
    if qdd is not None and len(qdd) and np.isfinite(qdd).any():
        qdd_std = np.nanstd(np.asarray(qdd, dtype=np.float64), axis=0)
    joints = []
    for j, name in enumerate(names):
        ok = bool(q_std[j] >= q_thr[j] and qd_std[j] >= qd_thr[j])
        joints.append({"name": name, "q_std": float(q_std[j]), "qd_std": float(qd_std[j]),
                       "qdd_std": None if qdd_std is None else float(qdd_std[j]),
                       "q_threshold": float(q_thr[j]), "qd_threshold": float(qd_thr[j]), "excited": ok})
    return {"rows": int(len(q)), "limits_from": source, "q_fraction_of_range": Q_FRACTION,
            "qd_fraction_of_velocity_limit": QD_FRACTION, "joints": joints,
            "unexcited": [jt["name"] for jt in joints if not jt["excited"]]}


def excitation_of(data) -> dict:  # noqa: ANN001 - TrajectoryData (import kept lazy)
    """:func:`excitation` of a :class:`~dynlearn_ros.datasets.format.TrajectoryData`'s rows."""
    return excitation(data.q, data.qd, data.qdd, data.joint_names)


def warning_line(exc: dict) -> str | None:
    """The one-line warning naming the joints the data does not excite (None if it excites all)."""
    if not exc["unexcited"]:
        return None
    by_name = {jt["name"]: jt for jt in exc["joints"]}
    parts = []
    for name in exc["unexcited"]:
        jt = by_name[name]
        parts.append(f"{name} (q std {jt['q_std']:.3g} rad, needs {jt['q_threshold']:.3g}; qd std "
                     f"{jt['qd_std']:.3g} rad/s, needs {jt['qd_threshold']:.3g})")
    return (f"WARNING: the data does not excite {len(parts)} of {len(exc['joints'])} joints: "
            + "; ".join(parts) + ". A model trained on it has unconstrained slopes along them, which act "
            "as gains in the control loop and can destabilize the arm (docs/bags.md, 'Excitation'); "
            "record a motion that moves every joint (e.g. reference:=sine) before shipping a model.")


def summary_line(exc: dict) -> str:
    """A one-line verdict: the warning, or that every joint is excited."""
    warn = warning_line(exc)
    if warn:
        return warn
    return (f"excitation: all {len(exc['joints'])} joints excited (q std >= {exc['q_fraction_of_range']:.0%} "
            f"of range, qd std >= {exc['qd_fraction_of_velocity_limit']:.0%} of velocity limit; "
            f"limits from {exc['limits_from']})")
