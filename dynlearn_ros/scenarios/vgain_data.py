"""Training data for the variance-scheduled closed-loop scenario (issue 4, section 4).

The learned models of configurations (c) and (d) must know the scenario's plant: the iiwa with
its unmodelled friction and payload. This module records that plant (``SimPlant``, the same
physics the ``sim_bridge`` node runs) tracking two kinds of episodes with the collector's
controller (:func:`dynlearn_ros.sim.collect.track_episode`: URDF RNEA + inertia-scaled PD):

* Fourier excitation (:class:`~dynlearn_ros.sim.excitation.FourierTrajectory`), as
  ``dynlearn-ros collect`` draws it, for coverage of the state space around home;
* pick-and-place moves: min-jerk moves between the scenario's waypoints, each waypoint jittered
  by U(-jitter, jitter) rad per joint and each move's duration drawn in [0.75, 1.25] x move_s,
  so the model sees the scenario's region of (q, qd, qdd) without replaying its exact path.

Rows are then decimated (every ``keep_every``-th row of each episode): SVDKL is a pointwise
map (q, qd, qdd) -> tau, and neighbouring 1 kHz rows carry almost the same information.

``noise_accel`` > 0 adds white exploration torque to every 1 kHz command, std
``noise_accel * I_j`` N*m with I_j the joint's inertia at home (diag M(home)), i.e. about
``noise_accel`` rad/s^2 of random acceleration per joint. It is for the ac-RKN inverse model,
which reads the previously executed torque: along smooth tracking data tau_{t-1} already
predicts tau_t to ~0.1 N*m, and a model trained on such data leans on its input. With
exploration torque only the observed change of state tells the model what torque was applied;
the model then tolerates executed torques that differ from its own (the PD term in closed loop)
and gives a better feed-forward (ablation in docs/results_closed_loop.md, section (d)).

    dynlearn-ros data vgain --out /tmp/vgain_iiwa.npz
"""

from __future__ import annotations

import time

import numpy as np

from dynlearn_ros.core.analytic import RigidBodyModel
from dynlearn_ros.core.trajectories import WaypointReference
from dynlearn_ros.datasets.format import TrajectoryData
from dynlearn_ros.scenarios.vgain_config import ScenarioConfig
from dynlearn_ros.sim.collect import track_episode
from dynlearn_ros.sim.excitation import FourierTrajectory
from dynlearn_ros.sim.plant import SimPlant


class PickPlaceTrajectory:
    """Min-jerk moves through ``waypoints`` (m, n) rad with per-move durations, evaluated on
    arrays of times (the interface :func:`track_episode` needs: ``evaluate(t) -> (q, qd, qdd)``,
    each (T, n) rad, rad/s, rad/s^2)."""

    def __init__(self, waypoints: np.ndarray, move_s: np.ndarray, dwell_s: float) -> None:
        self.wp = np.asarray(waypoints, dtype=np.float64)
        self.move_s = np.asarray(move_s, dtype=np.float64)
        if self.move_s.shape != (self.wp.shape[0] - 1,):
            raise ValueError(f"need {self.wp.shape[0] - 1} move durations, got {self.move_s.shape}")
        self.dwell_s = float(dwell_s)
        self._segments = [WaypointReference(self.wp[k:k + 2], float(self.move_s[k]), self.dwell_s, loop=False)
                          for k in range(self.wp.shape[0] - 1)]
        self._starts = np.concatenate([[0.0], np.cumsum(self.move_s + self.dwell_s)])

    @property
    def duration(self) -> float:
        return float(self._starts[-1])

    def evaluate(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        n = self.wp.shape[1]
        q, qd, qdd = (np.empty((t.size, n)) for _ in range(3))
        seg = np.clip(np.searchsorted(self._starts, t, side="right") - 1, 0, len(self._segments) - 1)
        for i, (ti, k) in enumerate(zip(t, seg, strict=True)):
            self._segments[k].sample(ti - self._starts[k], q[i], qd[i], qdd[i])
        return q, qd, qdd


def pick_place_episode(cfg: ScenarioConfig, rng: np.random.Generator, n_moves: int) -> PickPlaceTrajectory:
    """Start at home, then ``n_moves`` moves to jittered scenario waypoints (cycled)."""
    spec = cfg.spec
    base = cfg.waypoints_array()
    rows = [spec.home]
    for k in range(n_moves):
        wp = base[k % base.shape[0]] + rng.uniform(-cfg.data_jitter_rad, cfg.data_jitter_rad, spec.n)
        rows.append(np.clip(wp, spec.lower + 0.15, spec.upper - 0.15))
    durations = cfg.move_s * rng.uniform(0.75, 1.25, n_moves)
    return PickPlaceTrajectory(np.array(rows), durations, cfg.dwell_s)


def build_dataset(cfg: ScenarioConfig, fourier_episodes: int, pick_place_episodes: int, seconds: float,
                  keep_every: int, seed: int, omega: float = 30.0, noise_accel: float = 0.0,
                  log=print, command: str = "") -> TrajectoryData:
    """Simulate the scenario plant (cfg's friction and payload) and return the decimated rows.

    Episode e uses ``SeedSequence(seed).spawn(...)[e]``; Fourier episodes first. Row columns as in
    :mod:`dynlearn_ros.sim.collect` (tau: applied motor torque, friction excluded, N*m)."""
    wall0 = time.perf_counter()
    dt = 1e-3
    n_steps = int(round(seconds / dt))
    plant = SimPlant(cfg.robot, dt=dt, friction_viscous=cfg.friction_viscous,
                     friction_coulomb=cfg.friction_coulomb, coulomb_velocity_eps=cfg.coulomb_velocity_eps,
                     payload_kg=cfg.payload_kg)
    parts, stats = [], []
    try:
        rbd = RigidBodyModel(plant.spec.urdf_path, plant.joint_names)
        if not (np.isfinite(noise_accel) and noise_accel >= 0):
            raise ValueError(f"noise_accel must be finite and >= 0, got {noise_accel}")
        noise_std = noise_accel * np.diag(rbd.mass_matrix(plant.spec.home)) if noise_accel > 0 else None
        seqs = np.random.SeedSequence(seed).spawn(fourier_episodes + pick_place_episodes)
        for e, ss in enumerate(seqs):
            rng = np.random.default_rng(ss)
            if e < fourier_episodes:
                traj, kind = FourierTrajectory.random(plant.spec, rng), "fourier"
                steps = n_steps
            else:
                n_moves = max(1, int(np.ceil(seconds / (cfg.move_s + cfg.dwell_s))))
                traj, kind = pick_place_episode(cfg, rng, n_moves), "pick_place"
                steps = min(n_steps, int(round(traj.duration / dt)))
            rec = track_episode(plant, rbd, traj, steps, omega=omega, torque_noise=noise_std, rng=rng)
            sel = slice(None, None, keep_every)
            rec = {k: v[sel] for k, v in rec.items()}
            rec["episode"] = np.full(rec["t"].shape[0], e, dtype=np.int64)
            parts.append(rec)
            err = rec["q_des"] - rec["q"]
            stats.append({"episode": e, "kind": kind, "tracking_rmse_rad": float(np.sqrt(np.mean(err**2)))})
            log(f"episode {e} ({kind}): {rec['t'].shape[0]} rows, tracking RMSE {stats[-1]['tracking_rmse_rad']:.4f} rad")
    finally:
        plant.close()
    cat = {k: np.concatenate([p[k] for p in parts]) for k in ("t", "q", "qd", "qdd", "tau", "episode")}
    meta = {"source": "dynlearn_ros.scenarios.vgain_data", "robot": cfg.robot, "payload_kg": cfg.payload_kg,
            "friction_viscous": list(np.broadcast_to(cfg.friction_viscous, (plant.n,)).astype(float)),
            "friction_coulomb": list(np.broadcast_to(cfg.friction_coulomb, (plant.n,)).astype(float)),
            "coulomb_velocity_eps": cfg.coulomb_velocity_eps, "fourier_episodes": fourier_episodes,
            "pick_place_episodes": pick_place_episodes, "seconds": seconds, "keep_every": keep_every,
            "seed": seed, "omega": omega, "data_jitter_rad": cfg.data_jitter_rad,
            "noise_accel": noise_accel,
            "torque_noise_std": None if noise_std is None else noise_std.tolist(),
            "episode_stats": stats, "wall_time_s": time.perf_counter() - wall0,
            "command": command}
    return TrajectoryData(t=cat["t"], q=cat["q"], qd=cat["qd"], tau=cat["tau"], episode=cat["episode"],
                          joint_names=plant.joint_names, dt=dt * keep_every, qdd=cat["qdd"], meta=meta)
