"""The payload gain floor (core/gain_floor.py): its figures from the URDF, and its wiring into the
controller's schedule through the ``payload_margin_kg`` parameter."""

from __future__ import annotations

import numpy as np
import pinocchio as pin
import pytest

from dynlearn_ros.core.assembly import build_analytic, build_schedule
from dynlearn_ros.core.config import ConfigError, robot_context, validate
from dynlearn_ros.core.gain_floor import gravity_per_kg, payload_gain_floor
from dynlearn_ros.core.robots import ee_com_local, robot_spec


def _g(robot: str, samples: int = 4096, seed: int = 0) -> np.ndarray:
    s = robot_spec(robot)
    return gravity_per_kg(str(s.urdf_path), tuple(s.joint_names), s.ee_link, tuple(ee_com_local(s)), samples, seed)


@pytest.mark.parametrize("robot", ["iiwa", "panda"])
def test_gravity_per_kg_is_a_bound_of_the_point_mass_torque(robot):
    """G_j bounds |the gravity torque of 1 kg at the payload point| at other random poses (the
    sampled maximum may miss the true one by a little: allow 5 %, the change a 4x coarser draw
    makes, measured < 4.4 % on the iiwa), is 0 about a vertical first axis, and g * |r| (the
    lever of the point from the base) bounds it from above."""
    s = robot_spec(robot)
    g = _g(robot)
    assert g[0] == pytest.approx(0.0, abs=1e-9)          # joint 1's axis is vertical
    assert np.all(g[1:6] > 0)
    from dynlearn_ros.core.analytic import RigidBodyModel

    rbd = RigidBodyModel(s.urdf_path, s.joint_names)
    model = rbd.model
    frame = model.frames[model.getFrameId(s.ee_link)]
    point = frame.placement.act(ee_com_local(s))
    heavy = model.copy()
    heavy.inertias[frame.parentJoint] += pin.Inertia(1.0, point, np.zeros((3, 3)))
    rng = np.random.default_rng(123)
    for _ in range(200):
        q = rng.uniform(model.lowerPositionLimit, model.upperPositionLimit)
        tau = np.abs(pin.computeGeneralizedGravity(heavy, heavy.createData(), q)
                     - pin.computeGeneralizedGravity(model, model.createData(), q))
        assert np.all(tau[rbd._perm] <= 1.05 * g + 1e-9)
    coarse = _g(robot, 1024, 1)
    assert np.all(np.abs(coarse - g) <= 0.05 * g + 1e-9)
    assert np.all(g <= 9.81 * 1.5)   # no lever longer than the arm's reach (< 1.5 m)


def test_floor_formula_and_off_switch():
    s = robot_spec("iiwa")
    lim = np.full(7, 0.5)
    f = payload_gain_floor(s.urdf_path, s.joint_names, s.ee_link, ee_com_local(s), 15.0, lim)
    np.testing.assert_allclose(f, 15.0 * _g("iiwa") / 0.25)
    assert not payload_gain_floor(s.urdf_path, s.joint_names, s.ee_link, ee_com_local(s), 0.0, lim).any()
    lim[5] = 0.0          # no following-error limit on joint 6: no floor there
    f2 = payload_gain_floor(s.urdf_path, s.joint_names, s.ee_link, ee_com_local(s), 15.0, lim)
    assert f2[5] == 0.0 and f2[4] == f[4]


def test_margin_raises_k_min_and_k_max_only_where_they_are_lower():
    ctx = robot_context("iiwa")
    base = validate({"robot": "iiwa"}, ctx)
    cfg = validate({"robot": "iiwa", "payload_margin_kg": 15.0}, ctx)
    analytic = build_analytic(base)
    s0, s1 = build_schedule(base, analytic), build_schedule(cfg, analytic)
    floor = payload_gain_floor(robot_spec("iiwa").urdf_path, ctx.spec.joint_names, ctx.spec.ee_link,
                               ee_com_local(ctx.spec), 15.0, base.max_tracking_error)
    np.testing.assert_array_equal(s1.k_min, np.maximum(s0.k_min, floor))
    np.testing.assert_array_equal(s1.k_max, np.maximum(s0.k_max, floor))
    # the iiwa's wrist (A5, A6) is where the floor passes K_max (K = I * 40^2 there is ~14-20
    # N*m/rad against a 15 kg * ~1 N*m/kg / 0.25 rad floor of ~60); the shoulder keeps its K_max
    assert s1.k_max[5] > s0.k_max[5] and s1.k_max[1] == s0.k_max[1]
    # default: off, the schedule unchanged (the closed-loop figures are taken without it)
    assert base.payload_margin_kg == 0.0
    with pytest.raises(ConfigError, match="payload_margin_kg"):
        validate({"robot": "iiwa", "payload_margin_kg": -1.0}, ctx)


@pytest.mark.parametrize("robot", ["iiwa", "panda"])
def test_a_margin_the_motors_cannot_hold_is_refused_with_the_joint(robot):
    """margin * G_j is the gravity torque the payload error makes at joint j in the worst pose;
    above the joint's torque limit the floor's promise cannot be kept, so the configuration is
    refused (at start-up and at run time: build_schedule raises, the node turns it into a refusal).
    The largest accepted margin is min_j limit_j / G_j: just below it passes, just above it fails."""
    ctx = robot_context(robot)
    base = validate({"robot": robot}, ctx)
    analytic = build_analytic(base)
    g = _g(robot)
    limit_kg = float(np.min(base.torque_limits[g > 0] / g[g > 0]))
    build_schedule(validate({"robot": robot, "payload_margin_kg": 0.99 * limit_kg}, ctx), analytic)
    with pytest.raises(ValueError, match=r"payload_margin_kg.*cannot hold it.*torque limit"):
        build_schedule(validate({"robot": robot, "payload_margin_kg": 1.01 * limit_kg}, ctx), analytic)
    # lower torque_limits lower the largest margin: the check reads the configured limits
    half = validate({"robot": robot, "torque_limits": (0.5 * base.torque_limits).tolist(),
                     "payload_margin_kg": 0.99 * limit_kg}, ctx)
    with pytest.raises(ValueError, match="payload_margin_kg"):
        build_schedule(half, analytic)
