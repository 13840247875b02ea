"""A stiffness floor from the largest unmodelled payload the controller must hold (issue 10).

Why a floor
-----------
The variance schedule lowers K_P toward K_min when the model is confident. A payload that
*leaves* the end effector (a drop) makes a confident model wrong at once by

    R_j = dm * Y_j(q, qd, qdd) ~= dm * G_j(q)          (N*m;  G_j: gravity torque per kg, N*m/kg)

and the realized-error sigma (core/residual.py) needs ~10 ms to raise the gains. On a light wrist
joint of the iiwa (I_6 ~ 0.0086 kg*m^2) that is too long: with the payload gone, the joint's own
inertia is all that resists R (with the payload on, the payload's m r^2 ~ 12 kg * (0.08 m)^2 ~
0.08 kg*m^2 multiplied it ~10x, which is why rises of the same size never tripped), so it reaches
R / I ~ 480 rad/s^2 for a 7 kg drop, and the static error R / K_max alone is already 0.30 rad
against the 0.5 rad following-error limit (docs/results_closed_loop.md, online section).

The bound
---------
With K_D = zeta sqrt(K_P) at damping ratio >= 1 (core/schedule.py's default zeta), a joint held
at stiffness K against a torque step R has the linear, decoupled error response
e(t) = (R / K) (1 - (1 + w t) exp(-w t)) <= R / K, w = sqrt(K / I): no overshoot. So if K_P never
falls below

    K_floor,j = dm_max * G_j / e_acc,j,      G_j = max_q |g(q; 1 kg at the end effector)_j - g(q)_j|

the error the step causes stays below e_acc,j *whatever the schedule's sigma does* (no reaction
time needed), and a larger K_P only shrinks it. e_acc = half the following-error limit: a factor 2
for what the linear bound leaves out (the payload's own acceleration term J^T a_c, the coupling
between joints through M, the tracking error already present at the step).

G_j is taken as the largest gravity torque of a 1 kg point mass at the payload point (the
end-effector link's centre of mass, :func:`dynlearn_ros.core.robots.ee_com_local`, where the
simulated plant and the online learner put a payload) over configurations drawn uniformly within
the joint limits (seeded; 4096 draws: the maximum of a smooth function of the joints beyond j,
sampled densely enough that a 4x coarser draw moves it by < 5 %: 4.4 % at most on the iiwa,
`test_gain_floor.py`).
Joints whose axis stays vertical (the iiwa's A1) get G = 0: gravity makes no torque about them.

For the iiwa (G = 0, 9.02, 4.88, 4.90, 0.99, 0.99, 0 N*m/kg) with dm_max = 15 kg and the 0.5 rad
limit (e_acc = 0.25 rad) the floor is 0, 541, 293, 294, 59.4, 59.4, 0 N*m/rad: joints 5 and 6 go
from K_min 1.3 / 0.88 and K_max 20 / 14 N*m/rad to 59.4 at every sigma (w = sqrt(K / I) = 69 / 82
rad/s: a discrete loop at 1 kHz has w dt < 0.1, far from its stability edge); joints 2-4 keep
their K_max and get a K_min 2-6x higher (13-37 % of K_max), which costs K_P cut (measured in
docs/results_closed_loop.md). The parameter that turns
it on is the controller's ``payload_margin_kg`` (0 = off, the default: the closed-loop figures
of the vgain scenario are taken without it).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import pinocchio as pin

from dynlearn_ros.core.analytic import RigidBodyModel

#: configurations drawn for the maximum of G_j (see the module docstring)
SAMPLES = 4096


@lru_cache(maxsize=8)
def gravity_per_kg(urdf_path: str, joint_names: tuple[str, ...], ee_link: str,
                   com_local: tuple[float, float, float], samples: int = SAMPLES,
                   seed: int = 0) -> np.ndarray:
    """G (n,) N*m/kg: the largest |gravity torque| per joint of a 1 kg point mass at ``com_local``
    (m, in ``ee_link``'s frame), over ``samples`` configurations uniform within the URDF's joint
    limits (seeded). Cached: the controller's configuration is validated at every parameter change."""
    rbd = RigidBodyModel(urdf_path, joint_names)
    model = rbd.model
    heavy = model.copy()
    frame = model.frames[model.getFrameId(ee_link)]
    point = frame.placement.act(np.asarray(com_local, dtype=float))
    heavy.inertias[frame.parentJoint] += pin.Inertia(1.0, point, np.zeros((3, 3)))
    d0, d1 = model.createData(), heavy.createData()
    lo = np.asarray(model.lowerPositionLimit, dtype=float)
    hi = np.asarray(model.upperPositionLimit, dtype=float)
    unbounded = ~(np.isfinite(lo) & np.isfinite(hi) & (hi > lo))
    lo[unbounded], hi[unbounded] = -np.pi, np.pi
    rng = np.random.default_rng(seed)
    best = np.zeros(model.nv)
    for _ in range(samples):
        q = rng.uniform(lo, hi)
        g1 = pin.computeGeneralizedGravity(heavy, d1, q)
        g0 = pin.computeGeneralizedGravity(model, d0, q)
        np.maximum(best, np.abs(g1 - g0), out=best)
    out = np.zeros(rbd.n)
    return rbd._store(best, out)


def payload_gain_floor(urdf_path: str | Path, joint_names: Sequence[str], ee_link: str,
                       com_local: np.ndarray, margin_kg: float, max_error: np.ndarray) -> np.ndarray:
    """K_floor (n,) N*m/rad = margin_kg * G / (max_error / 2) (module docstring); 0 where
    ``max_error`` (n,) rad is 0 (no following-error limit) or ``margin_kg`` is 0."""
    max_error = np.asarray(max_error, dtype=float)
    if margin_kg <= 0:
        return np.zeros(len(joint_names))
    g = gravity_per_kg(str(urdf_path), tuple(joint_names), ee_link,
                       tuple(float(v) for v in np.asarray(com_local, dtype=float)))
    with np.errstate(divide="ignore"):
        return np.where(max_error > 0, margin_kg * g / (0.5 * max_error), 0.0)


def payload_within_torque_limits(urdf_path: str | Path, joint_names: Sequence[str], ee_link: str,
                                 com_local: np.ndarray, margin_kg: float, torque_limits: np.ndarray) -> None:
    """Raise ValueError naming the first joint whose torque limit (N*m, (n,)) is below the largest
    gravity torque ``margin_kg`` at the end effector makes there (margin_kg * G_j): the floor
    promises to hold that payload error within half the following-error limit, which needs at
    least that torque in the worst pose, so a larger margin would be a promise the motors cannot
    keep (the command would be clipped at the limit and the error would grow past the bound)."""
    if margin_kg <= 0:
        return
    g = gravity_per_kg(str(urdf_path), tuple(joint_names), ee_link,
                       tuple(float(v) for v in np.asarray(com_local, dtype=float)))
    need = margin_kg * g
    limits = np.asarray(torque_limits, dtype=float)
    over = np.flatnonzero(need > limits)
    if over.size:
        j = int(over[0])
        raise ValueError(
            f"parameter 'payload_margin_kg' = {margin_kg:g}: joint {joint_names[j]} cannot hold it "
            f"({margin_kg:g} kg at the end effector makes up to {need[j]:.1f} N*m there, its torque "
            f"limit is {limits[j]:.1f} N*m); at most {float(np.min(limits[g > 0] / g[g > 0])):.1f} kg "
            "on this robot with these torque_limits")
