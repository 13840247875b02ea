"""The robot table (config/robots.yaml): entries, variants, what sim/controller/launch take from it,
adding a robot with one entry plus a config file, and the torque-rate limit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from dynlearn_ros.core.analytic import RigidBodyModel
from dynlearn_ros.core.robots import (
    TABLE_ENV,
    inertia_gains,
    robot_names,
    robot_spec,
    robot_table,
    variant_names,
)
from dynlearn_ros.core.safety import rate_limit
from dynlearn_ros.paths import share_dir

G = 9.81


# ---------------------------------------------------------------------------- shipped table
def test_every_robot_resolves_and_its_variants_fit_its_joints():
    table = robot_table()
    assert set(robot_names()) == {"iiwa", "panda", "panda_erd", "ur10"}
    for name in robot_names():
        spec = robot_spec(name)
        assert spec.urdf_path.is_file()
        assert spec.home.shape == spec.lower.shape == spec.effort_limits.shape == (spec.n,)
        assert np.all((spec.lower <= spec.home) & (spec.home <= spec.upper)), name
        for v in spec.entry.variants:
            var = table.variants[v]
            assert var.torque.shape == var.velocity.shape == var.lower.shape == (spec.n,), (name, v)
            assert var.source, f"variant {v} cites no source"
            # the home pose must be reachable on the real robot too
            assert np.all((var.lower <= spec.home) & (spec.home <= var.upper)), (name, v)


def test_names_are_unambiguous_one_name_one_urdf():
    urdfs = [robot_spec(n).urdf_path for n in robot_names()]
    assert len(set(urdfs)) == len(urdfs)
    assert set(robot_names(simulated_only=True)) == {"iiwa", "panda"}


def test_simulated_iiwa_keeps_its_urdf_and_plant_limits_but_controller_gets_the_manufacturers():
    """Item 4: the plant and the analytic model of 'iiwa' read pybullet_data's kuka_iiwa/model.urdf
    as before; its 300 N*m stay the plant's motor limit, the controller default is the iiwa 7's."""
    import pybullet_data

    from dynlearn_ros.sim.plant import SimPlant

    spec = robot_spec("iiwa")
    assert spec.urdf_path == Path(pybullet_data.getDataPath()) / "kuka_iiwa" / "model.urdf"
    assert spec.variant.name == "iiwa7"
    np.testing.assert_array_equal(spec.torque_limits, [176, 176, 110, 110, 110, 40, 40])
    np.testing.assert_array_equal(spec.urdf_effort_limits, [300.0] * 7)
    assert spec.torque_rate_limits is None  # KUKA publishes none
    with SimPlant("iiwa") as plant:
        np.testing.assert_array_equal(plant.effort_limits, [300.0] * 7)


def test_variants_carry_the_manufacturers_figures():
    v = robot_table().variants
    np.testing.assert_array_equal(v["iiwa14"].torque, [320, 320, 176, 176, 110, 40, 40])
    # wrist joints far below the URDF's 300 N*m: the point of issue 12 item 6
    assert np.all(v["iiwa7"].torque[5:] == 40) and np.all(v["iiwa14"].torque[5:] == 40)
    for franka in ("panda", "fr3"):
        np.testing.assert_array_equal(v[franka].torque, [87, 87, 87, 87, 12, 12, 12])
        np.testing.assert_array_equal(v[franka].torque_rate, [1000.0] * 7)
    # FR3 and Panda differ in range (joint 6 of the FR3 starts at +0.5445 rad)
    assert v["fr3"].lower[5] == pytest.approx(0.5445) and v["panda"].lower[5] == pytest.approx(-0.0175)
    np.testing.assert_allclose(np.rad2deg(v["iiwa7"].upper), [170, 120, 170, 120, 170, 120, 175])
    assert robot_spec("iiwa", "iiwa14").variant.title.endswith("R820")
    with pytest.raises(ValueError, match="no variant"):
        robot_spec("iiwa", "fr3")
    assert variant_names("panda") == ("fr3", "panda")


def test_panda_fingers_are_fixed_so_both_engines_see_seven_joints():
    import pinocchio as pin

    spec = robot_spec("panda")
    assert spec.n == 7 and spec.joint_names[-1] == "panda_joint7"
    assert pin.buildModelFromUrdf(str(spec.urdf_path)).nq == 7


@pytest.mark.parametrize("robot", ["iiwa", "panda"])
def test_shipped_controller_gains_are_the_tables_inertia_scaling(robot):
    """K_min = I w_min^2, K_max = I w_max^2, zeta = 2 sqrt(I), I = diag M(home). The YAML prints
    3-4 significant figures (relative rounding <= 0.5/632 = 8e-4), so rtol 1e-3; a wrong
    frequency (a factor 16 between 10 and 40 rad/s) or a swapped joint (inertias differ by
    more than 10 %) fails by far."""
    spec = robot_spec(robot)
    cfg = yaml.safe_load(spec.entry.controller_config.read_text())["/**/computed_torque"]["ros__parameters"]
    inertia = np.clip(np.diag(RigidBodyModel(spec.urdf_path, spec.joint_names).mass_matrix(spec.home)), 1e-4, None)
    k_min, k_max, zeta = inertia_gains(spec, inertia)
    np.testing.assert_allclose(cfg["k_min"], k_min, rtol=1e-3)
    np.testing.assert_allclose(cfg["k_max"], k_max, rtol=1e-3)
    np.testing.assert_allclose(cfg["zeta"], zeta, rtol=1e-3)


def test_driver_joint_names_come_from_the_table():
    assert robot_spec("iiwa").driver_joint_names("lbr")[0] == "lbr_A1"
    assert robot_spec("panda").driver_joint_names("franka")[6] == "fr3_joint7"
    assert robot_spec("panda").driver_joint_names("generic") == robot_spec("panda").joint_names
    with pytest.raises(KeyError, match="franka"):
        robot_spec("iiwa").driver_joint_names("franka")


# ---------------------------------------------------------------------------- adding a robot
L1, LC1, LC2, M1, M2 = 0.5, 0.25, 0.2, 2.0, 1.5  # m, m, m, kg, kg

TWO_LINK_URDF = f"""<?xml version="1.0"?>
<robot name="twolink">
  <link name="base"/>
  <link name="link1">
    <inertial><origin xyz="{LC1} 0 0"/><mass value="{M1}"/>
      <inertia ixx="0.001" ixy="0" ixz="0" iyy="0.04" iyz="0" izz="0.04"/></inertial>
  </link>
  <link name="link2">
    <inertial><origin xyz="{LC2} 0 0"/><mass value="{M2}"/>
      <inertia ixx="0.001" ixy="0" ixz="0" iyy="0.02" iyz="0" izz="0.02"/></inertial>
  </link>
  <joint name="shoulder" type="revolute"><parent link="base"/><child link="link1"/>
    <axis xyz="0 1 0"/><limit lower="-2.0" upper="2.0" effort="100" velocity="3"/></joint>
  <joint name="elbow" type="revolute"><parent link="link1"/><child link="link2"/>
    <origin xyz="{L1} 0 0"/><axis xyz="0 1 0"/><limit lower="-2.5" upper="2.5" effort="50" velocity="4"/></joint>
</robot>
"""

TWO_LINK_TABLE = """
robots:
  twolink:
    description: a planar two-link arm written by the test
    urdf: {source: file, path: twolink.urdf}
    simulate: true
    ee_link: link2
    home: [0.3, -0.4]
    controller_config: computed_torque_twolink.yaml
    gain_natural_frequency: [8.0, 30.0]
    variants: [twolink_mk1]
    drivers:
      acme: [acme_j1, acme_j2]
variants:
  twolink_mk1:
    title: Two-link Mk 1
    source: this test
    lower_deg: [-100, -120]
    upper_deg: [100, 120]
    velocity: [2.0, 3.0]
    torque: [40, 15]
    torque_rate: [500, 200]
"""


@pytest.fixture
def twolink(tmp_path, monkeypatch):
    """A throwaway robot: its URDF, one table entry, and its controller parameter file."""
    (tmp_path / "twolink.urdf").write_text(TWO_LINK_URDF)
    (tmp_path / "robots.yaml").write_text(TWO_LINK_TABLE)
    monkeypatch.setenv(TABLE_ENV, str(tmp_path / "robots.yaml"))
    spec = robot_spec("twolink")
    # the config file, written the way docs/robots.md says: gains from the table's scaling
    inertia = np.diag(RigidBodyModel(spec.urdf_path, spec.joint_names).mass_matrix(spec.home))
    k_min, k_max, zeta = inertia_gains(spec, inertia)
    params = {"robot": "twolink", "k_min": k_min.tolist(), "k_max": k_max.tolist(), "zeta": zeta.tolist()}
    (tmp_path / "computed_torque_twolink.yaml").write_text(
        yaml.safe_dump({"/**/computed_torque": {"ros__parameters": params}}))
    return spec


def test_adding_a_robot_is_one_entry_plus_a_config_file(twolink):
    from dynlearn_ros.launch_graph import vgain_args, vgain_control

    spec = twolink
    assert spec.joint_names == ("shoulder", "elbow")
    # limits: the variant's, not the URDF's 100 / 50 N*m
    np.testing.assert_array_equal(spec.torque_limits, [40.0, 15.0])
    np.testing.assert_array_equal(spec.urdf_effort_limits, [100.0, 50.0])
    np.testing.assert_array_equal(spec.torque_rate_limits, [500.0, 200.0])
    np.testing.assert_allclose(spec.variant.upper, np.deg2rad([100, 120]))
    # analytic model: gravity of a planar arm turning about y, gravity along -z:
    # V = -g (m1 lc1 + m2 l1) sin q1 - g m2 lc2 sin(q1 + q2), tau_g = dV/dq
    rbd = RigidBodyModel(spec.urdf_path, spec.joint_names)
    for q in ([0.0, 0.0], [0.3, -0.4], [-1.1, 2.0]):
        q1, q12 = q[0], q[0] + q[1]
        expected = [-G * ((M1 * LC1 + M2 * L1) * np.cos(q1) + M2 * LC2 * np.cos(q12)),
                    -G * M2 * LC2 * np.cos(q12)]
        tau = np.zeros(2)
        rbd.rnea(np.array(q), np.zeros(2), np.zeros(2), tau)
        np.testing.assert_allclose(tau, expected, rtol=1e-12, atol=1e-12)
    # launch: a choice, its config file, its limits, its driver's joint names
    args = {a.name: a for a in vgain_args()}
    assert "twolink" in args["robot"].choices and "twolink_mk1" in args["robot_variant"].choices
    bridge, ctl = vgain_control({"robot": "twolink"})
    assert Path(ctl.parameters[0]).name == "computed_torque_twolink.yaml" and Path(ctl.parameters[0]).is_file()
    assert ctl.parameters[-1]["torque_limits"] == [40.0, 15.0]
    assert bridge.parameters[-1]["robot"] == "twolink"
    (real,) = vgain_control({"robot": "twolink", "use_sim": "false", "driver": "generic"})
    assert real.parameters[-1]["torque_rate_limit"] == [500.0, 200.0]
    with pytest.raises(ValueError, match="no joint-name mapping"):
        vgain_control({"robot": "twolink", "use_sim": "false", "driver": "lbr"})


def test_added_robot_runs_in_the_simulator_and_matches_its_analytic_model(twolink):
    """The plant reads the same entry: holding the analytic gravity torque keeps the arm still.
    A 1 % model error would let it drift by ~0.5 * (0.01 g_j / I_eff) t^2 ~ mrad in 0.2 s; exact
    agreement (the PyBullet / Pinocchio match is ~1e-12) keeps it within 1e-6 rad."""
    from dynlearn_ros.sim.plant import SimPlant

    rbd = RigidBodyModel(twolink.urdf_path, twolink.joint_names)
    tau = np.zeros(2)
    with SimPlant("twolink", dt=1e-3) as plant:
        np.testing.assert_array_equal(plant.effort_limits, [100.0, 50.0])  # the URDF's motors
        for _ in range(200):
            q, qd = plant.state()
            rbd.rnea(q, qd, np.zeros(2), tau)
            plant.step(tau)
        q, _ = plant.state()
    np.testing.assert_allclose(q, twolink.home, atol=1e-6)


def test_added_robot_gives_the_analytic_baseline_for_its_own_data(twolink):
    from dynlearn_ros.datasets.format import TrajectoryData
    from dynlearn_ros.datasets.rbd_baseline import analytic_torque, baseline_urdf

    rng = np.random.default_rng(3)
    n = 50
    q, qd, qdd = rng.uniform(-1, 1, (n, 2)), rng.uniform(-1, 1, (n, 2)), rng.uniform(-2, 2, (n, 2))
    rbd = RigidBodyModel(twolink.urdf_path, twolink.joint_names)
    tau = np.empty((n, 2))
    for i in range(n):
        rbd.rnea(q[i], qd[i], qdd[i], tau[i])
    data = TrajectoryData(t=np.arange(n) * 1e-3, q=q, qd=qd, qdd=qdd, tau=tau, episode=np.zeros(n, dtype=np.int64),
                          joint_names=("shoulder", "elbow"), dt=1e-3)
    path = baseline_urdf(urdf=twolink.urdf_path)  # what `eval --urdf PATH` uses
    np.testing.assert_allclose(analytic_torque(data, urdf=path), tau, atol=1e-10)
    np.testing.assert_allclose(analytic_torque(data, "twolink"), tau, atol=1e-10)


def test_a_broken_entry_fails_with_its_name(tmp_path, monkeypatch):
    (tmp_path / "bad.yaml").write_text(
        "robots:\n  oops:\n    urdf: {source: file, path: x.urdf}\n    ee_link: a\n    home: [0]\n"
        "    variants: [nope]\n")
    monkeypatch.setenv(TABLE_ENV, str(tmp_path / "bad.yaml"))
    with pytest.raises(ValueError, match="oops.*unknown variant"):
        robot_table()


def test_shipped_table_is_installed_beside_the_parameter_files():
    assert (share_dir() / "config" / "robots.yaml").is_file()


# ---------------------------------------------------------------------------- rate limit
def test_rate_limit_bounds_each_joints_step_to_dtau_max_dt():
    prev = np.array([0.0, 0.0, 10.0, 0.0])
    tau = np.array([5.0, -5.0, 10.5, 3.0])
    dtau = np.array([1000.0, 1000.0, 1000.0, np.inf])  # N*m/s; inf: no limit on that joint
    out = np.empty(4)
    assert rate_limit(prev, tau, dtau, 1e-3, out) == 2
    np.testing.assert_array_equal(out, [1.0, -1.0, 10.5, 3.0])


def test_rate_limit_leaves_a_command_within_the_limit_bit_for_bit_and_works_in_place():
    rng = np.random.default_rng(0)
    prev = rng.normal(0, 10, 7)
    tau = prev + rng.uniform(-0.99, 0.99, 7)  # within 1000 N*m/s * 1 ms on every joint
    out = np.empty(7)
    assert rate_limit(prev, tau, 1000.0, 1e-3, out) == 0
    assert np.array_equal(out, tau)
    big = prev + 5.0
    assert rate_limit(prev, big, 1000.0, 1e-3, big) == 7  # out is tau
    np.testing.assert_allclose(big, prev + 1.0, rtol=0, atol=1e-12)


def test_rate_limited_step_reaches_its_target_in_the_expected_ticks_and_never_faster():
    """A 10 N*m step at 1000 N*m/s and 1 ms takes ceil(10 / 1) = 10 ticks."""
    target, tau = np.array([10.0, -3.0]), np.zeros(2)
    history = [tau.copy()]
    for _ in range(15):
        rate_limit(tau, target, np.array([1000.0, 1000.0]), 1e-3, tau)
        history.append(tau.copy())
    steps = np.abs(np.diff(history, axis=0))
    assert np.all(steps <= 1.0 + 1e-12)
    assert np.allclose(history[10], target) and not np.allclose(history[9], target)
    with pytest.raises(ValueError, match="dt"):
        rate_limit(tau, target, 1000.0, 0.0, tau)


@pytest.mark.parametrize("robot", ["iiwa", "panda"])
def test_table_gain_scaling_agrees_with_the_nodes_default_gains(robot):
    """The node builds its gain defaults with core.schedule.default_gains (fixed 10 / 40 rad/s);
    until it reads the table's gain_natural_frequency, the shipped entries must say the same."""
    from dynlearn_ros.core.schedule import default_gains

    inertia = np.array([1.5, 0.5, 0.01])
    spec = robot_spec(robot)
    for ours, node in zip(inertia_gains(spec, inertia), default_gains(inertia), strict=True):
        np.testing.assert_array_equal(ours, node)
