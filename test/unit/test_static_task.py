"""The static inverse task (train/eval --task static) on a log with a known answer: a one-joint
pendulum URDF's Pinocchio RNEA torque plus known viscous and Coulomb friction, on rows that are
not a time series (each row its own episode, drawn at random). The linear model and the static
FFNN must recover it on a clean held-out file (--test-file); the same pipeline fed a log whose
qdd is shifted by one row or sign-flipped must fail the same bars."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dynlearn_ros.cli import main
from dynlearn_ros.datasets.format import TrajectoryData, save_npz

MASS, LENGTH, IYY, G = 2.0, 0.5, 0.01, 9.81
FV, FC = 0.8, 0.3          # viscous N*m s/rad, Coulomb N*m

URDF = f"""<?xml version="1.0"?>
<robot name="pendulum">
  <link name="base"/>
  <link name="arm">
    <inertial><origin xyz="{LENGTH} 0 0"/><mass value="{MASS}"/>
      <inertia ixx="0.01" ixy="0" ixz="0" iyy="{IYY}" iyz="0" izz="0.01"/></inertial>
  </link>
  <joint name="j1" type="revolute"><parent link="base"/><child link="arm"/><origin xyz="0 0 0"/>
    <axis xyz="0 1 0"/><limit lower="-4" upper="4" effort="100" velocity="10"/></joint>
</robot>
"""


def _log(path, urdf, n: int, seed: int, corrupt: str | None = None) -> str:
    """n random rows (q, qd, qdd) and tau = RNEA + FV qd + FC sign qd; ``corrupt`` "shift" hands
    the log qdd of the previous row, "flip" -qdd (the torques stay those of the true qdd)."""
    import pinocchio as pin

    rng = np.random.default_rng(seed)
    q = rng.uniform(-np.pi, np.pi, (n, 1))
    qd = rng.uniform(-2.0, 2.0, (n, 1))
    qdd = rng.uniform(-5.0, 5.0, (n, 1))
    model = pin.buildModelFromUrdf(str(urdf))
    data = model.createData()
    tau = np.array([pin.rnea(model, data, q[i], qd[i], qdd[i]) for i in range(n)]) + FV * qd + FC * np.sign(qd)
    logged = {"shift": np.roll(qdd, 1, axis=0), "flip": -qdd}.get(corrupt, qdd)
    td = TrajectoryData(t=np.zeros(n), q=q, qd=qd, qdd=logged, tau=tau, episode=np.arange(n), joint_names=("j1",),
                        dt=0.01, meta={"source": "test: pendulum RNEA + friction, not a time series"})
    return str(save_npz(path, td))


@pytest.fixture(scope="module")
def pendulum(tmp_path_factory):
    root = tmp_path_factory.mktemp("static")
    urdf = root / "pendulum.urdf"
    urdf.write_text(URDF)
    return root, urdf, _log(root / "clean_test.npz", urdf, 1000, seed=99)


def _train_eval(root, urdf, test_file, corrupt):
    log = _log(root / f"log_{corrupt}.npz", urdf, 3000, seed=1, corrupt=corrupt)
    run, out = root / f"run_{corrupt}", root / f"eval_{corrupt}.json"
    split = ["--test-file", test_file, "--split", "0.8,0.2"]
    assert main(["train", "--task", "static", "--model", "ffnn", "--data", log, "--out", str(run), "--epochs", "300",
                 "--lr", "3e-3", "--hidden", "64", "--no-progress", *split]) == 0
    assert main(["eval", "--task", "static", "--data", log, "--runs", str(run), "--model", "analytic", "--urdf",
                 str(urdf), "--json", str(out), *split]) == 0
    return json.loads(out.read_text())


def test_linear_weights_are_the_pendulum_and_its_friction():
    """Least squares on phi = [1, q, sin q, cos q, qd, sign qd, qdd] of exact torques: the weights
    are the physics (the torque is linear in these features for one joint about a horizontal axis)."""
    import tempfile
    from pathlib import Path

    from dynlearn_ros.datasets.format import load_npz
    from dynlearn_ros.learning.evaluation.linear_baselines import inverse_features, lstsq

    with tempfile.TemporaryDirectory() as d:
        urdf = Path(d) / "p.urdf"
        urdf.write_text(URDF)
        data = load_npz(_log(Path(d) / "l.npz", urdf, 500, seed=3))
    w = lstsq(inverse_features(data.q, data.qd, data.qdd), data.tau)[:, 0]
    # [1, q, sin q, cos q, qd, sign qd, qdd]: gravity m g l on cos q (sign by the axis convention),
    # inertia Iyy + m l^2 on qdd; float64 least squares on exact data: 1e-8 is rounding
    np.testing.assert_allclose(w[[0, 1, 2]], 0.0, atol=1e-8)
    assert abs(w[3]) == pytest.approx(MASS * G * LENGTH, abs=1e-8)
    np.testing.assert_allclose(w[4:], [FV, FC, IYY + MASS * LENGTH**2], atol=1e-8)


def test_static_task_recovers_the_known_torque_and_a_broken_qdd_fails(pendulum):
    root, urdf, test_file = pendulum
    clean = _train_eval(root, urdf, test_file, None)
    m = clean["models"]
    assert clean["test_rows"] == 1000 and clean["task"] == "static"
    # the analytic model misses exactly the friction: RMSE = rms(FV qd + FC sign qd) over the test rows
    from dynlearn_ros.datasets.format import load_npz

    te = load_npz(test_file)
    fric = FV * te.qd + FC * np.sign(te.qd)
    assert m["analytic (Pinocchio)"]["rmse"] == pytest.approx(float(np.sqrt(np.mean(fric**2))), rel=1e-9)
    # linear: exact features, exact data -> rounding only
    assert m["linear (least squares)"]["rmse"] < 1e-6
    # FFNN: torque std here ~7 N*m (gravity 9.81 cos q dominates). Recovering the map means
    # explaining > 99.9 % of its variance: RMSE < 3 % of the std (0.21 N*m; the Coulomb step of
    # 0.3 N*m at qd = 0, which a ReLU net smears over a band of qd, and the finite 2,400 rows set
    # the floor), while a one-row error in qdd costs the inertia term 0.51 N*m s^2 x |qdd| (uniform
    # on +-5 rad/s^2): >= 30 % of the std (below), 10x the bar
    std = float(te.tau.std())
    ffnn = next(v for k, v in m.items() if k.startswith("ffnn (static)"))
    assert ffnn["rmse"] < 0.03 * std, (ffnn["rmse"], std)
    assert m["training mean"]["rmse"] > 0.9 * std
    for corrupt in ("shift", "flip"):
        bad = _train_eval(root, urdf, test_file, corrupt)["models"]
        ffnn_bad = next(v for k, v in bad.items() if k.startswith("ffnn (static)"))
        # shift: qdd independent of the torque, the best fit drops the inertia term, error
        # I std(qdd) = 0.51 x 2.89 = 1.5 N*m (21 % of the std); flip: the fit learns -I, error on
        # clean rows 2 I |qdd| rms = 2.9 N*m (42 %); both >= 0.15 of the std
        assert bad["linear (least squares)"]["rmse"] > 0.15 * std, corrupt
        assert ffnn_bad["rmse"] > 0.15 * std, corrupt
