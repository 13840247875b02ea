"""dynlearn_ros.learning.evaluation.inverse_table: learning-core and GP runs scored on the same rows with one
NLL unit and one coverage definition."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from arm_data import sine_arm

from dynlearn_ros.datasets.format import TrajectoryData, save_npz
from dynlearn_ros.datasets.windows import inverse_rows
from dynlearn_ros.learning.evaluation import inverse_table as it
from dynlearn_ros.reporting.tables import inverse_table


def test_eval_rows_drop_first_and_last_row_of_each_episode():
    ep = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2])
    assert inverse_rows(ep).tolist() == [1, 2, 7]


def test_score_coverage_uses_1_96_not_2_std():
    y = np.zeros((4, 1))
    std = np.ones((4, 1))
    mean = np.array([[1.95], [1.97], [-1.97], [0.1]])
    s = it.score(y, mean, std, np.ones(1))
    assert s["coverage95"] == pytest.approx(0.5)      # 1.97 std is outside the 95 % interval
    assert s["within_2std"] == pytest.approx(1.0)     # ... but inside 2 std


def test_score_nll_is_standardized_and_unit_free():
    rng = np.random.default_rng(0)
    y = rng.normal(0, 1, (500, 3))
    mean = y + rng.normal(0, 0.3, y.shape)
    std = np.full(y.shape, 0.3)
    y_std = np.array([1.0, 2.0, 5.0])
    base = it.score(y, mean, std, y_std)
    # the N*m NLL is the learning core's definition (evaluate.torque_errors)
    from dynlearn_ros.learning.evaluation.sequence import torque_errors

    assert base["nll_nm"] == pytest.approx(torque_errors(mean, y, std)["nll"], rel=1e-12)
    assert base["nll"] == pytest.approx(base["nll_nm"] - np.log(y_std).mean(), rel=1e-12)
    # torques 10x larger (N*m -> 0.1 N*m units): the standardized NLL does not move, the raw one does
    c = 10.0
    scaled = it.score(c * y, c * mean, c * std, c * y_std)
    assert scaled["nll"] == pytest.approx(base["nll"], abs=1e-9)
    assert scaled["nll_nm"] == pytest.approx(base["nll_nm"] + math.log(c), abs=1e-9)
    assert scaled["rmse"] == pytest.approx(c * base["rmse"])
    # ... and equals the GP report's NLL
    from dynlearn_ros.learning.training.gp import gaussian_metrics

    assert base["nll"] == pytest.approx(gaussian_metrics(y, mean, std, y_std)["nll"], rel=1e-12)


def test_score_without_std_has_no_calibration_columns():
    s = it.score(np.zeros((3, 2)), np.ones((3, 2)), None, np.ones(2))
    assert s["rmse"] == pytest.approx(1.0) and "nll" not in s and "coverage95" not in s


@pytest.fixture(scope="module")
def arm(tmp_path_factory):
    """10 episodes x 120 rows of a 2-joint arm (episode kinds: 0-4 fourier, 5-9 pick_place), one
    tiny FFNN (learning core) and one tiny SVGP (GP helper) trained on its split."""
    rng = np.random.default_rng(5)
    n_ep = 10
    t, ep, q, qd, qdd = sine_arm(rng, n_ep, 120, [2.3, 3.1])
    tau = np.stack([1.5 * qdd[:, 0] + 6.0 * np.cos(q[:, 0]), 0.3 * qdd[:, 1] + 0.2 * qd[:, 1]], 1)
    tau += rng.normal(0, 0.05, tau.shape)
    stats = [{"episode": e, "kind": "fourier" if e < 5 else "pick_place"} for e in range(n_ep)]
    data = TrajectoryData(t=t, q=q, qd=qd, qdd=qdd, tau=tau, episode=ep, joint_names=("a1", "a2"), dt=0.01,
                          meta={"source": "test", "episode_stats": repr(stats)})
    root = tmp_path_factory.mktemp("it")
    path = str(save_npz(root / "arm.npz", data))

    from dynlearn_ros.datasets.splits import load_splits
    from dynlearn_ros.datasets.splits import train_val_test as split
    from dynlearn_ros.learning.models.gp import GPConfig
    from dynlearn_ros.learning.training.gp import inputs_targets, save_checkpoint, train_gp
    from dynlearn_ros.learning.training.sequence import TrainConfig, fit
    from dynlearn_ros.learning.training.sequence import save_checkpoint as save_core

    _, tr, va, _te = load_splits(path, 0)
    torch.set_num_threads(1)
    ck = fit(*split(data, 0)[:2], TrainConfig(kind="ffnn", direction="inverse", epochs=2, window=20, stride=10,
                                              hidden=16), progress=False)
    (root / "ffnn").mkdir()
    save_core(ck, root / "ffnn" / "checkpoint.pt")
    res = train_gp(GPConfig(kind="svgp", num_inducing=16), *inputs_targets(tr), *inputs_targets(va), epochs=2,
                   batch_size=128, lr=2e-2)
    (root / "svgp").mkdir()
    save_checkpoint(root / "svgp" / "checkpoint.pt", res.model, {"best_epoch": res.best_epoch, "epochs": 2})
    return path, str(root / "ffnn"), str(root / "svgp")


def test_table_scores_every_model_on_the_same_rows(arm):
    path, ffnn, svgp = arm
    from dynlearn_ros.datasets.catalog import load_dataset as load_data
    from dynlearn_ros.datasets.normalize import Stats
    from dynlearn_ros.datasets.splits import train_val_test as split
    from dynlearn_ros.learning.evaluation.sequence import inverse_eval
    from dynlearn_ros.learning.training.gp import load_checkpoint as load_gp
    from dynlearn_ros.learning.training.sequence import load_checkpoint as load_core

    assert it.run_family(ffnn) == "core" and it.run_family(svgp) == "gp"
    res = it.build_table(path, [("ffnn", ffnn), ("svgp", svgp)], seed=0, analytic=False)
    _tr, _va, te = split(load_data(path), 0)
    n_test = sum(int((te.episode == e).sum()) - 2 for e in np.unique(te.episode))
    assert res["test_rows"] == n_test
    for m in res["models"].values():
        assert m["test"]["rows"] == n_test
        assert sum(g["rows"] for g in m["test_by_kind"].values()) == n_test
    # the learning core's own evaluation: same per-joint RMSE and within-2-std, NLL = its N*m NLL
    model, ck = load_core(f"{ffnn}/checkpoint.pt")
    own = inverse_eval(model, Stats.from_dict(ck["stats"]), te)
    got = res["models"]["ffnn"]["test"]
    np.testing.assert_allclose(got["rmse_per_joint"], own["rmse_per_joint"], rtol=1e-10)
    assert got["rmse"] == pytest.approx(own["rmse"], rel=1e-10)      # "all" is the pooled RMSE everywhere
    assert got["within_2std"] == pytest.approx(own["within_2std"])
    assert got["nll_nm"] == pytest.approx(own["nll"], rel=1e-10)
    # the GP scored on rows 1..T-2 only (not on every test row), with its own y_std
    gp, _ = load_gp(f"{svgp}/checkpoint.pt")
    np.testing.assert_allclose(res["y_std"], gp.y_std.numpy(), rtol=1e-6)
    rows = inverse_rows(te.episode)
    from dynlearn_ros.learning.training.gp import gaussian_metrics, inputs_targets

    mean, std = gp.predict(inputs_targets(te)[0])
    ref = gaussian_metrics(te.tau[rows], mean[rows], std[rows], gp.y_std.numpy())
    assert res["models"]["svgp"]["test"]["nll"] == pytest.approx(ref["nll"], rel=1e-9)
    assert res["models"]["svgp"]["test"]["coverage95"] == pytest.approx(ref["coverage95"])
    # previous torque: tau_{t-1}
    prev = res["models"]["previous torque"]["test"]
    err = te.tau[rows - 1] - te.tau[rows]
    assert prev["rmse"] == pytest.approx(float(np.sqrt((err**2).mean())))
    assert prev["rmse_mean_joint"] == pytest.approx(float(np.sqrt((err**2).mean(0)).mean()))
    # regimes: the sequence run in both, its fed-back row only in (i), previous torque only in (ii),
    # the models that read no torque in both
    assert res["models"]["ffnn"]["regime"] == "ii" and res["models"]["ffnn, own tau fed back"]["regime"] == "i"
    reg_i, reg_ii = it.regime_rows(res, "i"), it.regime_rows(res, "ii")
    assert "previous torque" not in reg_i and "previous torque" in reg_ii
    assert {"svgp", "training mean", "linear (least squares)"} <= set(reg_i) & set(reg_ii)
    assert "ffnn, own tau fed back" in reg_i and "ffnn, own tau fed back" not in reg_ii
    assert reg_ii["previous torque"]["ratio"] == pytest.approx(1.0)
    assert reg_i["svgp"]["ratio"] is None                    # analytic=False: no reference row
    mean_row = res["models"]["training mean"]["test"]
    tau_bar = _tr.tau.mean(0)
    assert mean_row["rmse"] == pytest.approx(float(np.sqrt(((te.tau[rows] - tau_bar) ** 2).mean())))
    md = inverse_table(res)
    assert "| ffnn |" in md and "| svgp |" in md and "fourier RMSE" in md and "(i) controller form" in md
    # every table row has as many cells as its header
    for block in md.split("\n\n"):
        table = [ln for ln in block.splitlines() if ln.startswith("|")]
        assert len({ln.count("|") for ln in table}) <= 1, table


def test_own_action_mode_never_reads_the_measured_torque_after_tau0(arm, tmp_path):
    path, ffnn, _svgp = arm
    from dynlearn_ros.datasets.catalog import load_dataset as load_data
    from dynlearn_ros.datasets.splits import train_val_test as split
    from dynlearn_ros.learning.training.sequence import TrainConfig, fit
    from dynlearn_ros.learning.training.sequence import save_checkpoint as save_core

    data = load_data(path)
    tr, va, te = split(data, 0)
    torch.set_num_threads(1)
    ck = fit(tr, va, TrainConfig(kind="acrkn-inv", direction="inverse", epochs=1, window=20, stride=10, lod=4,
                                 num_basis=3, hidden=16, act_target="absolute", own_action_frac=0.5),
             progress=False)
    save_core(ck, tmp_path / "checkpoint.pt")
    own = it.predict_core(tmp_path, te, own=True)
    forced = it.predict_core(tmp_path, te, own=False)
    assert np.array_equal(own[2], inverse_rows(te.episode)) and "own previous" in own[3]["inputs"]
    # measured torques replaced after the first row of every episode: free-running unchanged,
    # teacher-forced not
    first = np.zeros(len(te), dtype=bool)
    first[np.flatnonzero(np.r_[True, np.diff(te.episode) != 0])] = True
    te2 = te.select(np.ones(len(te), dtype=bool))
    te2.tau = np.where(first[:, None], te.tau, te.tau + 3.0)
    own2, forced2 = it.predict_core(tmp_path, te2, own=True), it.predict_core(tmp_path, te2, own=False)
    np.testing.assert_allclose(own2[0], own[0], rtol=1e-6, atol=1e-6)
    assert np.abs(forced2[0] - forced[0]).max() > 1e-3
    # ... and the first predicted row of each episode is the same in both modes (both read tau_0)
    starts = np.flatnonzero(np.r_[True, np.diff(te.episode[own[2]]) != 0])
    np.testing.assert_allclose(own[0][starts], forced[0][starts], rtol=1e-6, atol=1e-6)



@pytest.mark.parametrize("kind,target", [("ffnn", "difference"), ("lstm", "difference"), ("acrkn-inv", "difference"),
                                         ("ffnn", "absolute"), ("lstm", "absolute"), ("acrkn-inv", "absolute")])
def test_fed_back_run_is_the_teacher_forced_run_on_its_own_torques(arm, tmp_path, kind, target):
    """A fixed point that pins the controller form's alignment: replace the measured torques of
    rows 1 .. T-2 by the fed-back predictions tau_hat; the teacher-forced run on that data must
    then reproduce tau_hat row for row (row t reads tau_hat_{t-1}, row 1 the measured tau_0).
    Feeding back tau_hat one step late or early breaks it by a whole step's torque change."""
    path, _ffnn, _svgp = arm
    from dynlearn_ros.datasets.catalog import load_dataset as load_data
    from dynlearn_ros.datasets.normalize import Stats
    from dynlearn_ros.datasets.splits import train_val_test as split
    from dynlearn_ros.learning.evaluation.sequence import inverse_predict, inverse_predict_fed_back
    from dynlearn_ros.learning.training.sequence import TrainConfig, fit

    tr, va, te = split(load_data(path), 0)
    torch.set_num_threads(1)
    ck = fit(tr, va, TrainConfig(kind=kind, direction="inverse", epochs=1, window=20, stride=10, lod=4, num_basis=3,
                                 hidden=16, act_target=target), progress=False)
    from dynlearn_ros.learning.models.sequence import ModelConfig, build_model

    model = build_model(ModelConfig.from_dict(ck["model_config"]))
    model.load_state_dict(ck["state_dict"])
    stats = Stats.from_dict(ck["stats"])
    tau_hat, _std, rows = inverse_predict_fed_back(model, stats, te)
    assert np.array_equal(rows, inverse_rows(te.episode))
    te2 = te.select(np.ones(len(te), dtype=bool))
    te2.tau = te.tau.copy()
    te2.tau[rows] = tau_hat
    forced, _, rows2 = inverse_predict(model, stats, te2)
    assert np.array_equal(rows2, rows)
    # float32 network, torques of a few N*m: agreement to 1e-4 N*m is rounding; a one-step slip
    # moves a row by a step's torque change
    np.testing.assert_allclose(forced, tau_hat, atol=1e-4)
    # ... and the test can see a slip: the largest one-step change is 100x the tolerance
    assert np.abs(tau_hat[1:] - tau_hat[:-1]).max() > 1e-2


def test_static_run_sits_in_both_regimes_on_the_same_rows(arm, tmp_path):
    path, ffnn, _svgp = arm
    from dynlearn_ros.datasets.catalog import load_dataset as load_data
    from dynlearn_ros.datasets.splits import train_val_test as split
    from dynlearn_ros.learning.training.static import StaticTrainConfig, load_static, static_run

    static_run(path, StaticTrainConfig(epochs=3, hidden=16), tmp_path / "st")
    assert it.run_family(tmp_path / "st") == "static"
    res = it.build_table(path, [("ffnn", ffnn), ("ffnn-static", str(tmp_path / "st"))], seed=0, analytic=False)
    row = res["models"]["ffnn-static"]
    assert row["regime"] == "both" and row["inputs"] == it.GP_INPUTS
    _tr, _va, te = split(load_data(path), 0)
    rows = inverse_rows(te.episode)
    model, _ = load_static(tmp_path / "st")
    from dynlearn_ros.learning.training.gp import inputs_targets

    mean, _std = model.predict(inputs_targets(te)[0])
    assert row["test"]["rmse"] == pytest.approx(float(np.sqrt(np.mean((mean[rows] - te.tau[rows]) ** 2))), rel=1e-9)
