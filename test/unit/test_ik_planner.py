"""The ik node's domain object (validation, refusals, NaN = don't care) and the ik_demo graph."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dynlearn_ros.learning.ik.chain import chain
from dynlearn_ros.learning.ik.dls import DLSIK
from dynlearn_ros.learning.ik.planner import IKPlanner, Refused, quat_to_matrix


@pytest.fixture(scope="module")
def planner():
    c = chain("iiwa")
    return IKPlanner(c, DLSIK(c), 5e-3, 2.0)


def test_quaternion_matches_pinocchio():
    import pinocchio as pin

    rot = pin.rpy.rpyToMatrix(0.3, -0.7, 1.9)
    q = pin.Quaternion(rot)
    np.testing.assert_allclose(quat_to_matrix(q.x, q.y, q.z, q.w), rot, atol=1e-12)
    with pytest.raises(Refused, match="not a rotation"):
        quat_to_matrix(0, 0, 0, 0)


@pytest.mark.parametrize("pos, quat, match", [
    ((math.nan, 0.0, 0.5), (0, 0, 0, 1), "non-finite"),
    ((0.5, 0.0, 0.5), (0, 0, math.inf, 1), "non-finite"),
    ((0.5, 0.0, 0.5), (0, 0, 0, 0), "not a rotation"),
    ((2.5, 0.0, 0.5), (0, 0, 0, 1), "unreachable"),
])
def test_bad_pose_targets_are_refused(planner, pos, quat, match):
    with pytest.raises(Refused, match=match):
        planner.ee_problem(pos, quat, np.ones(9))


def test_reachable_pose_is_solved_and_checked_with_fk(planner):
    c = planner.chain
    q_goal = np.array([0.3, 0.6, 0.1, -1.1, 0.1, 0.9, 0.2])
    pc = c.fk(q_goal)[-1]
    rot = np.column_stack([pc[3:6], np.cross(pc[6:9], pc[3:6]), pc[6:9]])
    import pinocchio as pin

    quat = pin.Quaternion(rot)
    plan = planner.solve(planner.ee_problem(pc[:3], (quat.x, quat.y, quat.z, quat.w), np.ones(9)), c.home)
    assert np.linalg.norm(c.fk(plan.q)[-1, :3] - pc[:3]) <= 5e-3


def test_unsolvable_is_refused_with_the_best_error(planner):
    """Within the reach sphere but behind the base column, pointing through the arm itself:
    position 5 cm under the shoulder on the base axis cannot be reached by the iiwa."""
    with pytest.raises(Refused, match="not solved"):
        planner.solve(planner.ee_problem((0.0, 0.0, 0.05), (0, 0, 0, 1), np.ones(9)), None)


def test_chain_target_nan_means_dont_care(planner):
    c = planner.chain
    v = np.full((c.n, 9), np.nan)
    v[-1, :3] = c.fk(np.array([0.2, 0.5, 0.0, -1.0, 0.0, 0.7, 0.0]))[-1, :3]
    problem = planner.chain_problem(v)
    assert problem.weight.sum() == 3 and problem.weight[-1, :3].all()
    with pytest.raises(Refused, match="all NaN"):
        planner.chain_problem(np.full((c.n, 9), np.nan))
    v[2, 0] = np.inf
    with pytest.raises(Refused, match="inf"):
        planner.chain_problem(v)
    with pytest.raises(Refused, match="must be 7 x 9"):
        planner.chain_problem(np.zeros((3, 9)))
    v = np.full((c.n, 9), np.nan)
    v[-1, 6:9] = (0.0, 0.0, 2.0)
    with pytest.raises(Refused, match="not a unit vector"):
        planner.chain_problem(v)


def _demo_targets(robot: str):
    import yaml

    from dynlearn_ros.commands.launch import GRAPHS

    args, factory = GRAPHS["ik_demo"]
    nodes = factory({"robot": robot})
    ik = nodes[2]
    assert ik.module == "dynlearn_ros.nodes.ik" and ik.parameters[0].endswith(f"config/ik_{robot}.yaml")
    cfg = yaml.safe_load(open(ik.parameters[0]))["/**/ik"]["ros__parameters"]
    assert cfg["robot"] == robot and cfg["model_dir"] == f"ik_{robot}"
    return nodes, factory, np.asarray(cfg["demo_targets"], dtype=float).reshape(-1, 7)


@pytest.mark.parametrize("robot", ["iiwa", "panda"])
def test_ik_demo_graph(robot):
    nodes, factory, demo = _demo_targets(robot)
    assert [n.name for n in nodes] == ["sim_bridge", "computed_torque", "ik"]
    ctl = nodes[1].parameters[-1]
    assert ctl["reference"] == "hold"  # the ik node's trajectories are the only motion
    c = chain(robot)
    # every demo pose lies inside the reach (they are FK of configurations near home)
    assert np.all(np.linalg.norm(demo[:, :3] - c.shoulder, axis=1) < c.scale)
    with pytest.raises(ValueError, match="must be one of"):
        factory({"solver": "magic"})


@pytest.mark.parametrize("robot", ["iiwa", "panda"])
def test_shipped_model_solves_its_demo_targets(robot):
    """The shipped models/ik_<robot> with the node's default solver (learned_gn: Levenberg-
    Marquardt through the LSTM's Jacobian, 4 starts from home) reaches every demo pose of
    config/ik_<robot>.yaml within 5 mm / 2 deg, checked here with Pinocchio FK independently of
    the solver's own report."""
    import torch

    from dynlearn_ros.learning.ik.solver import LearnedIK
    from dynlearn_ros.learning.ik.store import load
    from dynlearn_ros.paths import models_dir

    torch.set_num_threads(1)
    _, _, demo = _demo_targets(robot)
    model, c, _ = load(models_dir() / f"ik_{robot}", expect_chain=robot)
    planner = IKPlanner(c, LearnedIK(model, c, max_iter=0, polish=100), 5e-3, 2.0, starts=4)
    for row in demo:
        plan = planner.solve(planner.ee_problem(row[:3], row[3:], np.ones(9)), c.home)
        reached = c.fk(plan.q)[-1]
        assert np.linalg.norm(reached[:3] - row[:3]) <= 5e-3
        rot = quat_to_matrix(*row[3:])
        got = np.column_stack([reached[3:6], np.cross(reached[6:9], reached[3:6]), reached[6:9]])
        assert math.degrees(math.acos(np.clip((np.trace(rot.T @ got) - 1) / 2, -1, 1))) <= 2.0


def test_node_mask_parameter_validation():
    from dynlearn_ros.core.config import ConfigError
    from dynlearn_ros.nodes.ik import IKNode

    np.testing.assert_array_equal(IKNode._mask([1, 1, 1, 0, 0, 0, 1, 1, 1]), [1, 1, 1, 0, 0, 0, 1, 1, 1])
    for bad in ([1.0] * 8, [0.0] * 9, [1, 1, 1, 0.5, 0, 0, 1, 1, 1], [1, 1, 1, float("nan"), 0, 0, 1, 1, 1]):
        with pytest.raises(ConfigError, match="ee_mask"):
            IKNode._mask(bad)
