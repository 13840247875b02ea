"""Analytic RNEA baseline against the real Panda torques (Gaz et al. 2019 exciting trajectory)."""

from __future__ import annotations

import numpy as np
import pytest
from data_required import require

from dynlearn_ros.core.robots import dataset_robot
from dynlearn_ros.datasets.catalog import load_dataset
from dynlearn_ros.datasets.rbd_baseline import analytic_torque, baseline_urdf, torque_rmse, urdf_for


@pytest.fixture(scope="module")
def panda():
    require("panda_gaz2019")
    return load_dataset("panda_gaz2019")


def test_urdfs_exist_and_unknown_robot_rejected():
    for robot in ("panda_erd", "ur10"):
        assert urdf_for(robot).is_file()
    with pytest.raises(KeyError):
        urdf_for("atlas")


def test_data_sets_find_their_baseline_robot_in_the_robot_table():
    assert dataset_robot("panda_gaz2019") == "panda_erd"
    assert dataset_robot("ur10") == "ur10"
    assert baseline_urdf(dataset="panda_gaz2019") == urdf_for("panda_erd")
    with pytest.raises(KeyError, match="--urdf"):
        baseline_urdf(dataset="pneumatic")  # no rigid-body URDF for the muscle arm
    with pytest.raises(FileNotFoundError):
        baseline_urdf(dataset="panda_gaz2019", urdf="/nonexistent/robot.urdf")


def test_panda_baseline_is_example_robot_data_not_the_sim_placeholder():
    """'panda' (sim) and 'panda_erd' (baseline) are two URDFs: placeholder vs realistic inertia."""
    import xml.etree.ElementTree as ET

    from dynlearn_ros.core.robots import robot_spec

    def link1_mass(urdf):
        link = [x for x in ET.parse(urdf).getroot().findall("link") if x.get("name") == "panda_link1"][0]
        return float(link.find("inertial/mass").get("value"))

    assert robot_spec("panda").urdf_path != robot_spec("panda_erd").urdf_path
    assert link1_mass(robot_spec("panda").urdf_path) != pytest.approx(link1_mass(robot_spec("panda_erd").urdf_path))


@pytest.mark.data
def test_panda_analytic_torque_explains_measured_torque(panda):
    """Bounds from the torque's own spread (std per joint ~[2.4, 17.9, 9.8, 5.9, 0.98, 1.05, 0.28]):

    * joints 1-6: RMSE < std. A mis-mapped joint, a sign flip or a unit error gives an error of
      the order of the signal itself or larger (a sign flip: ~2 std), so this is the mapping check.
    * joints 2 and 3 carry most of the gravity load (std 17.9 and 9.8 N*m); what the rigid-body
      model lacks there (friction, reflected rotor inertia) is a few N*m on the Panda, so the
      RMSE must stay below 0.3 std and the correlation above 0.95.
    Joint 7 (std 0.28 N*m) is friction-dominated: rigid-body torque there is ~0.02 N*m, so it
      is not asserted beyond finiteness.
    """
    r = torque_rmse(panda, "panda_erd")
    rmse, std = np.array(r["rmse"]), np.array(r["tau_std"])
    assert np.all(np.isfinite(rmse))
    assert np.all(rmse[:6] < std[:6]), (rmse, std)
    assert np.all(rmse[1:3] < 0.3 * std[1:3]), (rmse, std)
    pred = analytic_torque(panda, "panda_erd")
    for j in (1, 2):
        assert np.corrcoef(pred[:, j], panda.tau[:, j])[0, 1] > 0.95


@pytest.mark.data
def test_analytic_torque_maps_joints_by_name(panda):
    sub = panda.select(np.arange(len(panda)) < 200)
    perm = [3, 0, 6, 2, 5, 1, 4]
    shuffled = type(sub)(
        t=sub.t, q=sub.q[:, perm], qd=sub.qd[:, perm], qdd=sub.qdd[:, perm], tau=sub.tau[:, perm],
        episode=sub.episode, joint_names=tuple(sub.joint_names[i] for i in perm), dt=sub.dt,
    )
    np.testing.assert_array_equal(analytic_torque(shuffled, "panda_erd"), analytic_torque(sub, "panda_erd")[:, perm])
    wrong = type(sub)(t=sub.t, q=sub.q, qd=sub.qd, qdd=sub.qdd, tau=sub.tau, episode=sub.episode,
                      joint_names=tuple(f"fr3_joint{i}" for i in range(1, 8)), dt=sub.dt)
    with pytest.raises(KeyError, match="fr3_joint1"):
        analytic_torque(wrong, "panda_erd")


@pytest.mark.data
def test_urdf_path_gives_the_same_baseline_and_legacy_name_still_means_example_robot_data(panda):
    """--urdf PATH: the user's own URDF file; here the table's file, so the torque is identical.
    The old name 'panda' keeps its old meaning (example-robot-data) with a DeprecationWarning."""
    sub = panda.select(np.arange(len(panda)) < 200)
    ref = analytic_torque(sub, "panda_erd")
    np.testing.assert_array_equal(analytic_torque(sub, urdf=str(urdf_for("panda_erd"))), ref)
    with pytest.warns(DeprecationWarning, match="panda_erd"):
        legacy = analytic_torque(sub, "panda")
    np.testing.assert_array_equal(legacy, ref)
