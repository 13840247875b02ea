"""Plant benchmark and model-match figures, written as JSON.

``dynlearn-ros bench plant --json sim_bench.json [--steps 20000] [--states 200]``

* speed: :meth:`SimPlant.step` + :meth:`SimPlant.state_into` per second (median of repeats),
  with a baseline measured in the same run: bare ``pybullet.stepSimulation`` on the same client
  (the ratio is what to compare across machines; these machines are shared and noisy);
* match: for random states (q, qd) and accelerations qdd, apply tau = RNEA(q, qd, qdd) (Pinocchio,
  same URDF) for one step and compare the achieved (qd1 - qd0)/dt with qdd, for the plant as
  configured here and, for scale, for the URDF loaded with PyBullet's defaults (damping on,
  inertia from collision shapes, the plant's other fixes kept). Also the gravity-hold drift.
"""

from __future__ import annotations

import time

import numpy as np

from dynlearn_ros.core.analytic import RigidBodyModel
from dynlearn_ros.sim.plant import SimPlant


def _accel_errors(plant: SimPlant, rbd: RigidBodyModel, states: list) -> np.ndarray:
    """Per-state max |achieved - commanded acceleration| (rad/s^2) for tau = RNEA(q, qd, qdd)."""
    tau = np.zeros(plant.n)
    q1 = np.zeros(plant.n)
    qd1 = np.zeros(plant.n)
    errs = []
    for q, qd, qdd in states:
        rbd.rnea(q, qd, qdd, tau)
        plant.reset(q, qd)
        plant.step(tau)
        plant.state_into(q1, qd1)
        errs.append(np.max(np.abs((qd1 - qd) / plant.dt - qdd)))
    return np.array(errs)


def _pybullet_defaults_plant(robot: str) -> SimPlant:
    """The same plant with the URDF re-loaded the default way (no inertia flag, damping kept)."""
    plant = SimPlant(robot)
    pb, cid = plant._pb, plant.client_id
    pb.resetSimulation(physicsClientId=cid)
    pb.setGravity(0, 0, -9.81, physicsClientId=cid)
    pb.setTimeStep(plant.dt, physicsClientId=cid)

    body = pb.loadURDF(str(plant.spec.urdf_path), useFixedBase=True, physicsClientId=cid)
    pb.setJointMotorControlArray(body, plant._idx, pb.VELOCITY_CONTROL, forces=[0.0] * plant.n,
                                 physicsClientId=cid)
    plant._body = body
    return plant


def run_bench(robot: str = "iiwa", steps: int = 20000, repeats: int = 5, n_states: int = 200,
              seed: int = 0) -> dict:
    """Speed (steps/s, median of ``repeats`` runs of ``steps`` steps) and match figures
    (rad/s^2 over ``n_states`` random states, rad of gravity-hold drift) of ``robot``'s plant."""
    out: dict = {"robot": robot, "steps": steps, "repeats": repeats}
    with SimPlant(robot) as plant:
        pb, cid, body = plant._pb, plant.client_id, plant._body
        rbd = RigidBodyModel(plant.spec.urdf_path, plant.joint_names)
        g = np.zeros(plant.n)
        q = np.zeros(plant.n)
        qd = np.zeros(plant.n)
        bare, full = [], []
        for _ in range(repeats):
            plant.reset()
            t0 = time.perf_counter()
            for _ in range(steps):
                pb.stepSimulation(physicsClientId=cid)
            bare.append(steps / (time.perf_counter() - t0))
            plant.reset()
            rbd.gravity(plant.spec.home, g)
            t0 = time.perf_counter()
            for _ in range(steps):
                plant.step(g)
                plant.state_into(q, qd)
            full.append(steps / (time.perf_counter() - t0))
        del body
        out["speed"] = {
            "plant_step_and_read_per_s": float(np.median(full)),
            "baseline_bare_stepSimulation_per_s": float(np.median(bare)),
            "ratio_plant_to_bare": float(np.median(full) / np.median(bare)),
            "plant_us_per_step": 1e6 / float(np.median(full)),
        }
        rng = np.random.default_rng(seed)
        lo, hi = plant.spec.lower, plant.spec.upper
        mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
        states = [(mid + 0.8 * half * rng.uniform(-1, 1, plant.n), rng.uniform(-1, 1, plant.n),
                   rng.uniform(-4, 4, plant.n)) for _ in range(n_states)]
        errs = _accel_errors(plant, rbd, states)
        # gravity hold from home for 10 s of sim time
        plant.reset()
        q0, _ = plant.state()
        for _ in range(10000):
            plant.state_into(q, qd)
            plant.step(rbd.gravity(q, g))
        plant.state_into(q, qd)
        out["match"] = {
            "states": n_states,
            "accel_err_max_rad_s2": float(errs.max()),
            "accel_err_median_rad_s2": float(np.median(errs)),
            "gravity_hold_drift_10s_rad": float(np.max(np.abs(q - q0))),
        }
    with _pybullet_defaults_plant(robot) as naive:
        errs_naive = _accel_errors(naive, rbd, states)
    out["match"]["pybullet_defaults_accel_err_max_rad_s2"] = float(errs_naive.max())
    out["match"]["pybullet_defaults_accel_err_median_rad_s2"] = float(np.median(errs_naive))
    return out

