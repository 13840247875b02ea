"""Record data sets from the simulated plant tracking exciting trajectories.

Each episode resets the plant onto the reference (q_d(0), qd_d(0)) and tracks a seeded
:class:`~dynlearn_ros.sim.excitation.FourierTrajectory` with

    tau = RNEA_urdf(q, qd, qdd_d) + m_eff(q) * (w^2 (q_d - q) + 2 zeta w (qd_d - qd))

where RNEA_urdf is the URDF's rigid-body model (it knows neither the payload nor the friction)
and m_eff,j(q) = 1 / (M(q)^-1)_jj is joint j's effective inertia with the other joints free. The
PD gains are thus per joint, scaled by that joint's inertia (the iiwa's wrist joints have
m_eff ~ 0.01 and 0.001 kg*m^2: unscaled gains make them unstable at 1 kHz). Since
M^-1 diag(m_eff) has unit diagonal, its eigenvalues are at most n, which keeps the discrete loop
stable for 2 zeta w n dt < 2 (w = 30 rad/s, zeta = 1, n = 7, dt = 1 ms gives 0.42).

Row k of an episode holds the state at t_k = k dt, the torque applied during step k (after
clamping; friction not included: it is what a motor-current sensor would give) and
qdd_k = (qd_{k+1} - qd_k) / dt, the acceleration that torque produced (exact for PyBullet's
semi-implicit step). So, up to the unmodelled terms, tau_k = M(q_k) qdd_k + h(q_k, qd_k).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from dynlearn_ros.core.analytic import RigidBodyModel
from dynlearn_ros.datasets.format import TrajectoryData
from dynlearn_ros.sim.excitation import FourierTrajectory
from dynlearn_ros.sim.plant import SimPlant

#: a row whose position is this close to a joint limit (rad) is counted in ``limit_rows``
LIMIT_TOL = 1e-3


def track_episode(
    plant: SimPlant,
    rbd: RigidBodyModel,
    traj: FourierTrajectory,
    n_steps: int,
    omega: float = 30.0,
    zeta: float = 1.0,
    torque_noise: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
) -> dict[str, np.ndarray]:
    """Track ``traj`` for ``n_steps`` steps from t = 0; returns arrays of n_steps rows.

    ``torque_noise`` (n,) N*m: std of white Gaussian exploration torque added to every step's
    command (drawn from ``rng``). Without it consecutive torques are nearly equal, and a model
    that reads the previous torque learns to copy it instead of the dynamics (see
    :mod:`dynlearn_ros.scenarios.vgain_data`, `dynlearn-ros data vgain`).

    Keys: t (N,) s, q (N, n) rad, qd (N, n) rad/s, qdd (N, n) rad/s^2, tau (N, n) N*m applied,
    q_des (N, n) rad. Raises RuntimeError if the state becomes non-finite."""
    dt = plant.dt
    n = plant.n
    t = np.arange(n_steps + 1) * dt
    q_ref, qd_ref, qdd_ref = traj.evaluate(t)
    plant.reset(q_ref[0], qd_ref[0])
    qs = np.empty((n_steps + 1, n))
    qds = np.empty((n_steps + 1, n))
    taus = np.empty((n_steps, n))
    tau = np.empty(n)
    w2, kd = omega * omega, 2.0 * zeta * omega
    noise = None
    if torque_noise is not None:
        sd = np.broadcast_to(np.asarray(torque_noise, dtype=np.float64), (n,))
        if not (np.all(np.isfinite(sd)) and np.all(sd >= 0)):
            raise ValueError(f"torque_noise must be finite and >= 0, got {torque_noise}")
        noise = (rng if rng is not None else np.random.default_rng(0)).standard_normal((n_steps, n)) * sd
    for k in range(n_steps):
        q, qd = qs[k], qds[k]
        plant.state_into(q, qd)
        m_eff = 1.0 / np.diag(np.linalg.inv(rbd.mass_matrix(q)))
        rbd.rnea(q, qd, qdd_ref[k], tau)
        tau += m_eff * (w2 * (q_ref[k] - q) + kd * (qd_ref[k] - qd))
        if noise is not None:
            tau += noise[k]
        plant.step(tau)
        taus[k] = plant.applied_torque
    plant.state_into(qs[n_steps], qds[n_steps])
    if not (np.all(np.isfinite(qs)) and np.all(np.isfinite(qds))):
        raise RuntimeError("simulation diverged (non-finite state): lower omega or the excitation")
    qdd = np.diff(qds, axis=0) / dt
    return {"t": t[:-1], "q": qs[:-1], "qd": qds[:-1], "qdd": qdd, "tau": taus, "q_des": q_ref[:-1]}


def _cycle(value: float | Sequence[float], name: str) -> tuple[float, ...]:
    """One value or a non-empty list of values -> tuple of floats (cycled over the episodes)."""
    vals = tuple(float(v) for v in np.atleast_1d(np.asarray(value, dtype=np.float64)))
    if not vals:
        raise ValueError(f"{name}: give at least one value")
    return vals


def collect_dataset(
    robot: str = "iiwa",
    episodes: int = 10,
    seconds: float = 10.0,
    dt: float = 1e-3,
    payload_kg: float | Sequence[float] = 0.0,
    friction_viscous: float | Sequence[float] | None = None,
    friction_coulomb: float | Sequence[float] | None = None,
    coulomb_velocity_eps: float = 0.1,
    seed: int = 0,
    omega: float = 30.0,
    zeta: float = 1.0,
    base_freq_hz: float = 0.1,
    harmonics: int = 5,
    max_velocity: float | Sequence[float] = 1.5,
    max_acceleration: float | Sequence[float] = 6.0,
    progress: Callable[[int, dict], None] | None = None,
) -> TrajectoryData:
    """Simulate ``episodes`` episodes of ``seconds`` s each and return them as one data set.

    Episode e's trajectory is drawn from ``SeedSequence(seed).spawn(episodes)[e]``, so a data
    set is reproducible bit for bit from its settings (all stored in ``meta``). ``progress``
    is called after each episode with (episode, per-episode stats).

    ``payload_kg`` (kg), ``max_velocity`` (rad/s) and ``max_acceleration`` (rad/s^2) each take one
    value or a list; episode e uses element e % len(list) (so a varied data set comes from one
    call; the episode's values are in its ``episode_stats``)."""
    if episodes < 1 or not seconds > 0:
        raise ValueError(f"need episodes >= 1 and seconds > 0, got {episodes}, {seconds}")
    payloads, vmaxes, amaxes = (_cycle(v, name) for v, name in ((payload_kg, "payload_kg"),
                                                                  (max_velocity, "max_velocity"),
                                                                  (max_acceleration, "max_acceleration")))
    n_steps = int(round(seconds / dt))
    wall0 = time.perf_counter()
    plant = SimPlant(robot, dt=dt, friction_viscous=friction_viscous, friction_coulomb=friction_coulomb,
                     coulomb_velocity_eps=coulomb_velocity_eps, payload_kg=payloads[0])
    try:
        rbd = RigidBodyModel(plant.spec.urdf_path, plant.joint_names)
        parts: list[dict[str, np.ndarray]] = []
        stats: list[dict] = []
        for e, ss in enumerate(np.random.SeedSequence(seed).spawn(episodes)):
            kg, vmax, amax = payloads[e % len(payloads)], vmaxes[e % len(vmaxes)], amaxes[e % len(amaxes)]
            if plant.payload_kg != kg:
                plant.set_payload(kg)
            traj = FourierTrajectory.random(plant.spec, np.random.default_rng(ss), base_freq_hz=base_freq_hz,
                                            harmonics=harmonics, max_velocity=vmax,
                                            max_acceleration=amax)
            clamps0 = plant.clamped_steps
            rec = track_episode(plant, rbd, traj, n_steps, omega=omega, zeta=zeta)
            rec["episode"] = np.full(n_steps, e, dtype=np.int64)
            parts.append(rec)
            err = rec["q_des"] - rec["q"]
            # rows at (or, by the constraint's softness, beyond) a joint limit: there PyBullet adds
            # a constraint torque the row does not record, so such rows do not obey tau = f(q,qd,qdd)
            at_limit = np.any((rec["q"] <= plant.spec.lower + LIMIT_TOL) | (rec["q"] >= plant.spec.upper - LIMIT_TOL),
                              axis=1)
            st = {"episode": e, "tracking_rmse_rad": float(np.sqrt(np.mean(err**2))),
                  "tracking_max_rad": float(np.max(np.abs(err))), "clamped_steps": plant.clamped_steps - clamps0,
                  "limit_rows": int(at_limit.sum()), "payload_kg": kg, "max_velocity": vmax,
                  "max_acceleration": amax}
            stats.append(st)
            if progress is not None:
                progress(e, st)
    finally:
        plant.close()
    cat = {k: np.concatenate([p[k] for p in parts]) for k in ("t", "q", "qd", "qdd", "tau", "episode")}
    meta = {
        "source": "dynlearn_ros.sim.collect", "robot": robot, "urdf": str(plant.spec.urdf_path),
        "episodes": episodes, "seconds": seconds, "dt": dt,
        "payload_kg": payloads[0] if len(payloads) == 1 else list(payloads),
        "payload_model": f"point mass at the centre of mass of link {plant.spec.ee_link}",
        "friction_viscous": plant.friction_viscous.tolist(), "friction_coulomb": plant.friction_coulomb.tolist(),
        "coulomb_velocity_eps": coulomb_velocity_eps,
        "friction_model": "tau_f = -b*qd - f_c*tanh(qd/eps), not included in tau",
        "seed": seed, "controller": {"law": "RNEA_urdf(q,qd,qdd_d) + m_eff*(w^2 e + 2 zeta w e_dot)",
                                     "omega": omega, "zeta": zeta},
        "excitation": {"kind": "fourier", "base_freq_hz": base_freq_hz, "harmonics": harmonics,
                       "max_velocity": vmaxes[0] if len(vmaxes) == 1 else list(vmaxes),
                       "max_acceleration": amaxes[0] if len(amaxes) == 1 else list(amaxes)},
        "qdd": "(qd[k+1] - qd[k]) / dt of the simulated velocity",
        "episode_stats": stats, "wall_time_s": time.perf_counter() - wall0,
    }
    return TrajectoryData(t=cat["t"], q=cat["q"], qd=cat["qd"], tau=cat["tau"], episode=cat["episode"],
                          joint_names=plant.joint_names, dt=dt, qdd=cat["qdd"], meta=meta)
