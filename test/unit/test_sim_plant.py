"""SimPlant: PyBullet forward dynamics against Pinocchio RNEA of the same URDF (real pybullet,
real pinocchio), payload and friction models, clamping, determinism, isolation of clients.

Tolerance reasoning used below. Both engines evaluate the same rigid-body equations in float64:
PyBullet by the articulated-body algorithm (forward dynamics), Pinocchio by RNEA (inverse).
Round-off of either is ~ cond(M) * eps * |tau| ~ 1e4 * 2e-16 * 1e2 ~ 1e-10 in the acceleration
(rad/s^2). Every trap the plant handles produces errors orders of magnitude larger: the URDF's
joint damping of 0.5 N*m*s/rad at |qd| ~ 0.5 rad/s gives >= 0.25 N*m / M_jj(<= 2.6) ~ 0.1 rad/s^2,
collision-shape inertias give 0.15 N*m, gravity off gives tens of rad/s^2. So 1e-8 rad/s^2
separates "same dynamics" from "one trap left" with margin both ways.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from dynlearn_ros.core.analytic import RigidBodyModel
from dynlearn_ros.sim.plant import SimPlant, payload_model, per_joint

ACC_TOL = 1e-8  # rad/s^2, see module docstring


def rbd_with_payload(plant: SimPlant, kg: float) -> RigidBodyModel:
    return payload_model(plant.robot, kg, plant.joint_names)


def random_states(plant: SimPlant, rng: np.random.Generator, count: int):
    """Random (q, qd, qdd) well inside the limits (joint-limit constraints inactive)."""
    lo, hi = plant.spec.lower, plant.spec.upper
    mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
    for _ in range(count):
        yield (mid + 0.8 * half * rng.uniform(-1, 1, plant.n), rng.uniform(-1.0, 1.0, plant.n),
               rng.uniform(-4.0, 4.0, plant.n))


def accel_error(plant: SimPlant, rbd: RigidBodyModel, q, qd, qdd, extra_tau=None) -> float:
    """Step once from (q, qd) with tau = RNEA(q, qd, qdd) (+ extra); max |achieved - qdd|."""
    tau = np.zeros(plant.n)
    rbd.rnea(q, qd, qdd, tau)
    if extra_tau is not None:
        tau += extra_tau
    assert np.all(np.abs(tau) < plant.effort_limits), "test state would be clamped"
    plant.reset(q, qd)
    plant.step(tau)
    q1, qd1 = plant.state()
    # PyBullet's step is semi-implicit Euler: qd1 = qd + dt*qdd, q1 = q + dt*qd1.
    np.testing.assert_allclose(q1, q + plant.dt * qd1, rtol=0, atol=1e-12)
    return float(np.max(np.abs((qd1 - qd) / plant.dt - qdd)))


@pytest.mark.parametrize("robot", ["iiwa", "panda"])
def test_pybullet_matches_pinocchio_rnea(robot):
    rng = np.random.default_rng(0)
    with SimPlant(robot) as plant:
        rbd = RigidBodyModel(plant.spec.urdf_path, plant.joint_names)
        errs = [accel_error(plant, rbd, *s) for s in random_states(plant, rng, 30)]
    assert max(errs) < ACC_TOL


@pytest.mark.parametrize("robot,kg", [("iiwa", 5.0), ("panda", 2.0)])
def test_payload_matches_point_mass_model_and_can_be_detached(robot, kg):
    rng = np.random.default_rng(1)
    with SimPlant(robot, payload_kg=kg) as plant:
        with_payload = rbd_with_payload(plant, kg)
        bare = RigidBodyModel(plant.spec.urdf_path, plant.joint_names)
        states = list(random_states(plant, rng, 10))
        assert max(accel_error(plant, with_payload, *s) for s in states) < ACC_TOL
        # the payload really acts: the bare model misses it by far more than round-off
        assert max(accel_error(plant, bare, *s) for s in states) > 1e3 * ACC_TOL
        plant.set_payload(0.0)  # detach at run time
        assert max(accel_error(plant, bare, *s) for s in states) < ACC_TOL


def test_friction_is_added_exactly():
    b, fc, eps = 0.3, np.array([0.5, 0.5, 0.3, 0.3, 0.02, 0.02, 0.005]), 0.2
    rng = np.random.default_rng(2)
    with SimPlant("iiwa", friction_viscous=b, friction_coulomb=fc, coulomb_velocity_eps=eps) as plant:
        rbd = RigidBodyModel(plant.spec.urdf_path, plant.joint_names)
        for q, qd, qdd in random_states(plant, rng, 10):
            friction = -b * qd - fc * np.tanh(qd / eps)
            # the motor must supply RNEA - friction to get qdd
            assert accel_error(plant, rbd, q, qd, qdd, extra_tau=-friction) < ACC_TOL
            np.testing.assert_allclose(plant.friction_torque, friction, rtol=0, atol=1e-15)
            # what is reported as applied is the motor torque, friction excluded
            tau = np.zeros(7)
            rbd.rnea(q, qd, qdd, tau)
            np.testing.assert_allclose(plant.applied_torque, tau - friction, rtol=0, atol=1e-12)


def test_gravity_hold_does_not_drift():
    # With exact compensation the arm is a double integrator driven by round-off (~1e-12
    # rad/s^2 per step): over 2 s that is ~0.5*1e-12*2^2 rad. Any unhandled trap (damping
    # aside, which only damps) makes it fall at >= 0.1 rad/s^2, i.e. > 0.1 rad in 2 s.
    with SimPlant("iiwa") as plant:
        rbd = RigidBodyModel(plant.spec.urdf_path, plant.joint_names)
        q0, _ = plant.state()
        g = np.zeros(7)
        q, qd = q0.copy(), np.zeros(7)
        for _ in range(2000):
            plant.state_into(q, qd)
            rbd.gravity(q, g)
            plant.step(g)
        q, qd = plant.state()
        assert np.max(np.abs(q - q0)) < 1e-9
        assert np.max(np.abs(qd)) < 1e-9
        assert plant.t == pytest.approx(2.0, abs=1e-12)
        # and without compensation it falls: gravity is on
        plant.reset(q0)
        for _ in range(100):
            plant.step(np.zeros(7))
        assert np.max(np.abs(plant.state()[0] - q0)) > 1e-3


def test_clamping_and_counters():
    with SimPlant("panda") as plant:
        lim = plant.effort_limits
        cmd = np.zeros(7)
        cmd[0], cmd[5] = 500.0, -50.0  # limits 87 and 12 N*m
        plant.step(cmd)
        assert plant.applied_torque[0] == lim[0] and plant.applied_torque[5] == -lim[5]
        assert plant.clamped_steps == 1
        assert plant.clamp_counts.tolist() == [1, 0, 0, 0, 0, 1, 0]
        plant.step(np.zeros(7))
        assert plant.clamped_steps == 1 and plant.steps == 2
        with pytest.raises(ValueError, match="non-finite"):
            plant.step(np.array([np.nan] + [0.0] * 6))


def test_deterministic_and_clients_isolated():
    rng = np.random.default_rng(3)
    cmds = rng.normal(0.0, 5.0, (300, 7))

    def run(plant: SimPlant, other: SimPlant | None) -> np.ndarray:
        rbd = RigidBodyModel(plant.spec.urdf_path, plant.joint_names)
        g = np.zeros(7)
        out = []
        for c in cmds:
            q, qd = plant.state()
            plant.step(rbd.gravity(q, g) + c)
            if other is not None:  # a second plant stepped in between must not interfere
                other.step(-c)
            out.append(np.concatenate(plant.state()))
        return np.array(out)

    with SimPlant("iiwa", friction_viscous=0.2) as a, SimPlant("iiwa", friction_viscous=0.2) as b, \
            SimPlant("iiwa", payload_kg=3.0) as c:
        assert len({a.client_id, b.client_id, c.client_id}) == 3
        ra = run(a, None)
        rb = run(b, c)
    assert np.array_equal(ra, rb)  # bitwise


def test_parameter_validation():
    with pytest.raises(ValueError, match="unknown robot"):
        SimPlant("ur5")
    with pytest.raises(ValueError, match="friction_viscous: expected one value or 7"):
        SimPlant("iiwa", friction_viscous=[0.1, 0.2])
    with pytest.raises(ValueError, match="lbr_iiwa_joint_7 too stiff"):
        # f_c/eps = 5 N*m*s/rad on the last wrist joint (m_eff ~ 0.9e-3 kg*m^2): slope*dt = 5e-3
        # exceeds m_eff, so explicit friction would flip that joint's velocity every step
        SimPlant("iiwa", friction_coulomb=[0.0] * 6 + [0.5], coulomb_velocity_eps=0.1)
    with SimPlant("iiwa") as plant, pytest.raises(ValueError, match="payload"):
        plant.set_payload(-1.0)
    np.testing.assert_array_equal(per_joint(0.5, 3, "x"), [0.5, 0.5, 0.5])
    np.testing.assert_array_equal(per_joint(None, 2, "x"), [0.0, 0.0])


def test_sim_does_not_import_rclpy():
    code = ("import sys, dynlearn_ros.sim.plant, dynlearn_ros.sim.collect, dynlearn_ros.sim.excitation, "
            "dynlearn_ros.commands.collect; assert 'rclpy' not in sys.modules, 'rclpy imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
