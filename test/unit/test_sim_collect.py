"""Exciting trajectories and the data-set collector (real PyBullet + Pinocchio, seeded)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dynlearn_ros.cli import main as cli_main
from dynlearn_ros.core.robots import robot_spec
from dynlearn_ros.datasets.format import load_npz
from dynlearn_ros.sim.collect import collect_dataset
from dynlearn_ros.sim.excitation import FourierTrajectory
from dynlearn_ros.sim.plant import payload_model


@pytest.mark.parametrize("robot", ["iiwa", "panda"])
def test_fourier_trajectory_within_limits_and_consistent(robot):
    spec = robot_spec(robot)
    rng = np.random.default_rng(0)
    for _ in range(20):
        traj = FourierTrajectory.random(spec, rng, max_velocity=1.5, max_acceleration=6.0, limit_margin=0.15)
        t = np.arange(0.0, 10.0, 1e-3)  # one full period at f0 = 0.1 Hz
        q, qd, qdd = traj.evaluate(t)
        assert q.shape == (t.size, spec.n)
        # analytic bounds are guaranteed by construction (sums of |amplitudes|)
        assert np.all(q >= spec.lower + 0.15 - 1e-12) and np.all(q <= spec.upper - 0.15 + 1e-12)
        assert np.max(np.abs(qd)) <= 1.5 + 1e-12 and np.max(np.abs(qdd)) <= 6.0 + 1e-12
        # and the series actually moves every joint (random amplitudes are scaled, not zeroed)
        assert np.all(np.ptp(q, axis=0) > 0.01)
    # derivatives: central differences of q and qd with h = 1e-5 s have truncation error
    # h^2/6 * |q'''| <= 1e-10/6 * sum A (l w)^3 (< 40 rad/s^3 here) and round-off 1e-16/1e-5:
    # 1e-7 bounds both with margin.
    h = 1e-5
    tt = np.linspace(0.3, 9.7, 50)
    q_p, qd_p, _ = traj.evaluate(tt + h)
    q_m, qd_m, _ = traj.evaluate(tt - h)
    _, qd0, qdd0 = traj.evaluate(tt)
    np.testing.assert_allclose((q_p - q_m) / (2 * h), qd0, rtol=0, atol=1e-7)
    np.testing.assert_allclose((qd_p - qd_m) / (2 * h), qdd0, rtol=0, atol=1e-7)
    # scalar time gives (n,) arrays equal to the batched ones
    q1, _, _ = traj.evaluate(tt[3])
    np.testing.assert_array_equal(q1, traj.evaluate(tt)[0][3])


def test_collected_rows_satisfy_the_plant_dynamics():
    """tau_k - friction(qd_k) = RNEA_payload(q_k, qd_k, qdd_k) for every row.

    qdd is the finite difference of the simulated velocity, which is exactly the acceleration of
    PyBullet's semi-implicit step; round-off in (qd_{k+1} - qd_k)/dt is ~1e-16*|qd|/1e-3 ~ 1e-13
    rad/s^2, times |M| < 3 kg*m^2, plus the ~1e-10 ABA/RNEA round-off: 1e-7 N*m is a loose bound,
    while a wrong row alignment (tau_k paired with qdd_{k+1}) would miss by |M| * |dqdd| per step
    ~ 1e-3..1e-1 N*m, and the unmodelled 4 kg payload by several N*m."""
    b, fc, eps, kg = 0.2, 0.05, 0.1, 4.0
    data = collect_dataset("iiwa", episodes=2, seconds=0.5, payload_kg=kg, friction_viscous=b,
                           friction_coulomb=fc, coulomb_velocity_eps=eps, seed=7)
    assert len(data) == 1000 and data.n_joints == 7
    assert data.episodes().tolist() == [0, 1]
    np.testing.assert_allclose(data.t[:500], np.arange(500) * 1e-3, rtol=0, atol=1e-15)
    model = payload_model("iiwa", kg)
    bare = payload_model("iiwa", 0.0)
    tau_model = np.zeros(7)
    worst = 0.0
    bare_worst = 0.0
    tau_bare = np.zeros(7)
    for k in range(0, len(data), 7):
        q, qd, qdd = data.q[k], data.qd[k], data.qdd[k]
        model.rnea(q, qd, qdd, tau_model)
        friction = -b * qd - fc * np.tanh(qd / eps)
        worst = max(worst, float(np.max(np.abs(data.tau[k] + friction - tau_model))))
        bare.rnea(q, qd, qdd, tau_bare)
        bare_worst = max(bare_worst, float(np.max(np.abs(data.tau[k] - tau_bare))))
    assert worst < 1e-7
    assert bare_worst > 1.0  # the data hold something the URDF model does not know
    stats = data.meta["episode_stats"]
    assert all(s["limit_rows"] == 0 and s["clamped_steps"] == 0 for s in stats)


def test_collector_tracks_the_nominal_plant_closely():
    """Without payload and friction the RNEA feed-forward is exact; what is left is the step's
    discretisation: semi-implicit Euler moves q by dt*qd + dt^2*qdd where the reference moves
    dt*qd + dt^2/2*qdd, a per-step error <= dt^2/2 * 6 rad/s^2 = 3e-6 rad, which the PD (w = 30
    rad/s) holds at about that over w*dt = 0.03, i.e. ~1e-4 rad. 1e-3 rad leaves 10x margin; a
    sign error, a wrong gain or a mismatched model shows tens of mrad or diverges."""
    data = collect_dataset("iiwa", episodes=1, seconds=1.0, seed=11)
    st = data.meta["episode_stats"][0]
    assert st["tracking_max_rad"] < 1e-3 and st["limit_rows"] == 0


def test_collect_is_reproducible_and_seed_dependent():
    a = collect_dataset("panda", episodes=1, seconds=0.2, seed=3)
    b = collect_dataset("panda", episodes=1, seconds=0.2, seed=3)
    c = collect_dataset("panda", episodes=1, seconds=0.2, seed=4)
    assert np.array_equal(a.q, b.q) and np.array_equal(a.tau, b.tau)
    assert not np.allclose(a.q, c.q)


def test_collect_cli_writes_the_documented_format(tmp_path, capsys):
    out = tmp_path / "d.npz"
    rc = cli_main(["collect", "--robot", "iiwa", "--episodes", "2", "--seconds", "0.3", "--payload-kg", "2",
                   "--friction-viscous", "0.1", "--friction-coulomb", "0.02", "--seed", "5", "--quiet",
                   "--out", str(out)])
    assert rc == 0
    assert "wrote" in capsys.readouterr().out
    data = load_npz(out)
    assert len(data) == 600 and data.dt == 1e-3
    assert data.joint_names == robot_spec("iiwa").joint_names
    assert data.qdd is not None and np.all(np.isfinite(data.qdd))
    meta = data.meta
    assert meta["payload_kg"] == 2.0 and meta["friction_viscous"] == [0.1] * 7 and meta["seed"] == 5
    assert "collect" in meta["command_line"]
    json.dumps(meta)  # plain JSON
    # a bad setting fails with a message and exit code 2, no file
    bad = tmp_path / "bad.npz"
    rc = cli_main(["collect", "--friction-viscous", "1", "2", "--seconds", "0.1", "--out", str(bad)])
    assert rc == 2 and not bad.exists()
    assert "friction_viscous" in capsys.readouterr().err


def test_exploration_torque_noise_is_applied_and_seen_in_the_rows():
    """With torque_noise, tau_k = (controller torque) + n_k with n_k ~ N(0, sd^2): against the
    same episode without noise, the difference of the first step (same state, same controller
    torque) is exactly n_0; over 2,000 steps the per-joint std of the applied-torque difference
    must exceed the noise std itself (the controller reacts to the noise's effect, it cannot
    cancel white noise it has not seen), and the rows still satisfy tau = M qdd + h."""
    from dynlearn_ros.core.analytic import RigidBodyModel
    from dynlearn_ros.sim.collect import track_episode
    from dynlearn_ros.sim.plant import SimPlant

    spec = robot_spec("iiwa")
    traj = FourierTrajectory.random(spec, np.random.default_rng(0))
    sd = np.array([2.0, 2.0, 1.0, 1.0, 0.1, 0.1, 0.01])
    with SimPlant("iiwa") as plant:
        rbd = RigidBodyModel(spec.urdf_path, plant.joint_names)
        clean = track_episode(plant, rbd, traj, 2000)
        noisy = track_episode(plant, rbd, traj, 2000, torque_noise=sd, rng=np.random.default_rng(1))
        with pytest.raises(ValueError, match="torque_noise"):
            track_episode(plant, rbd, traj, 10, torque_noise=[-1.0] * 7)
    n0 = np.random.default_rng(1).standard_normal(7) * sd
    np.testing.assert_allclose(noisy["tau"][0] - clean["tau"][0], n0, rtol=1e-9, atol=1e-9)
    assert np.all((noisy["tau"] - clean["tau"]).std(0) > 0.9 * sd)
    tau_model = np.array([rbd.rnea(q, qd, qdd, np.zeros(7)) for q, qd, qdd in
                          zip(noisy["q"][:50], noisy["qd"][:50], noisy["qdd"][:50], strict=True)])
    np.testing.assert_allclose(tau_model, noisy["tau"][:50], atol=1e-6)
