"""The payload regressor (learning/payload_features.py): numpy and ONNX against Pinocchio.

Ground truth: the plant's own payload model (sim/plant.payload_model, what SimPlant.set_payload
does) - RNEA with a 1 kg point mass minus RNEA without, at random states far from rest (so the
velocity-product terms, which a gravity-only regressor would miss, are large).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from dynlearn_ros.core.robots import robot_spec
from dynlearn_ros.datasets.robot_limits import robot_for_joints
from dynlearn_ros.learning.payload_features import (
    NumpyOps,
    OnnxOps,
    PointMassChain,
    point_mass_regressor,
)
from dynlearn_ros.sim.plant import payload_model


def _states(n: int, rows: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.uniform(-2, 2, (rows, n)), 2.0 * rng.normal(size=(rows, n)),
                           5.0 * rng.normal(size=(rows, n))], axis=1)


def _truth(robot: str, x: np.ndarray, names) -> np.ndarray:
    n = x.shape[1] // 3
    with_m, without = payload_model(robot, 1.0, names), payload_model(robot, 0.0, names)
    out, a, b = np.zeros((len(x), n)), np.zeros(n), np.zeros(n)
    for i, row in enumerate(x):
        with_m.rnea(row[:n], row[n:2 * n], row[2 * n:], a)
        without.rnea(row[:n], row[n:2 * n], row[2 * n:], b)
        out[i] = a - b
    return out


@pytest.mark.parametrize("robot", ["iiwa", "panda"])
def test_numpy_regressor_is_the_payload_torque_per_kg(robot: str) -> None:
    names = robot_spec(robot).joint_names
    x = _states(len(names), 40)
    ref = _truth(robot, x, names)
    got = point_mass_regressor(NumpyOps(), PointMassChain.from_robot(robot, names), x)
    # the same rigid-body quantity by two float64 computations: rounding only (|Y| ~ 10 N*m/kg;
    # 1e-9 is ~1e5 x double precision and 1e-3 of the smallest effect the test's states produce)
    assert np.abs(got - ref).max() < 1e-9 * max(1.0, np.abs(ref).max())
    # and the velocity products matter here: gravity + J qdd alone would be far off
    xs = x.copy()
    xs[:, len(names):2 * len(names)] = 0.0
    assert np.abs(_truth(robot, xs, names) - ref).max() > 1.0


def test_joint_order_of_the_model_is_respected() -> None:
    names = list(robot_spec("iiwa").joint_names)
    perm = [3, 0, 6, 1, 5, 2, 4]
    shuffled = [names[i] for i in perm]
    x = _states(7, 10, seed=1)
    ref = _truth("iiwa", x, shuffled)
    got = point_mass_regressor(NumpyOps(), PointMassChain.from_robot("iiwa", shuffled), x)
    assert np.abs(got - ref).max() < 1e-9 * np.abs(ref).max()
    assert robot_for_joints(shuffled) == "iiwa"
    assert robot_for_joints(["not_a_joint"] * 7) is None


def test_onnx_graph_computes_the_same_regressor() -> None:
    names = robot_spec("iiwa").joint_names
    chain = PointMassChain.from_robot("iiwa", names)
    ops = OnnxOps()
    y = point_mass_regressor(ops, chain, "x")
    graph = helper.make_graph(ops.nodes + [helper.make_node("Identity", [y], ["Y"])], "pm",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 21])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["B", 7])], ops.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    # the controller evaluates this every tick: onnxruntime's cost is per node
    assert len(ops.nodes) < 60
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = _states(7, 50, seed=2)
    got = sess.run(None, {"x": x.astype(np.float32)})[0]
    ref = point_mass_regressor(NumpyOps(), chain, x)
    # float32 through ~45 nodes of 4x4 products: relative ~1e-6 of |Y| (max ~50 N*m/kg here);
    # 1e-4 relative is ~100x that and far below a wrong term (a missing velocity product is O(1))
    assert np.abs(got - ref).max() < 1e-4 * np.abs(ref).max()
