"""The data checks before training (datasets/check.py) and split control (datasets/splits.py
SplitSpec, ``--split/--gap/--test-file``)."""

import json

import numpy as np
import pytest

from dynlearn_ros.cli import main
from dynlearn_ros.datasets.check import check_time_series, check_windows, velocity_consistency
from dynlearn_ros.datasets.format import TrajectoryData, save_npz
from dynlearn_ros.datasets.splits import SplitSpec, split_data
from dynlearn_ros.learning.synthetic import pendulum_data


def _with(data: TrajectoryData, **kw) -> TrajectoryData:
    d = dict(t=data.t, q=data.q, qd=data.qd, tau=data.tau, episode=data.episode, joint_names=data.joint_names,
             dt=data.dt)
    d.update(kw)
    return TrajectoryData(**d)


def test_a_consistent_log_passes_every_check():
    data = pendulum_data(n_ep=4, T=200)
    vc = velocity_consistency(data)
    # explicit Euler: q_{t+1} - q_t = dt qd_{t+1}, against the trapezoid mean the ratio is ~1
    assert vc["ratio"] == pytest.approx(1.0, abs=0.05) and vc["corr"] > 0.99
    assert check_time_series(data) == []


def test_wrong_dt_shuffled_rows_and_degrees_are_reported():
    data = pendulum_data(n_ep=4, T=200)
    wrong_dt = check_time_series(_with(data, dt=data.dt * 10, t=data.t * 10))
    assert any("dt = 0.1 s looks wrong" in w and "0.01" in w for w in wrong_dt), wrong_dt
    perm = np.random.default_rng(0).permutation(len(data))
    shuffled = check_time_series(_with(data, q=data.q[perm], qd=data.qd[perm]))
    assert any("do not look like one time series" in w for w in shuffled), shuffled
    deg = check_time_series(_with(data, q=np.degrees(data.q) * 10, qd=np.degrees(data.qd) * 10))
    assert any("degrees" in w for w in deg) and any("deg/s" in w for w in deg), deg
    ms = check_time_series(_with(data, dt=10.0, t=data.t * 1000))
    assert any("outside" in w for w in ms), ms


def test_windows_check_counts_unused_rows():
    data = pendulum_data(n_ep=4, T=30)
    assert check_windows(data, 20, 5) == []
    assert "no episode has the 40 rows" in check_windows(data, 40, 10)[0]
    mixed = TrajectoryData(t=np.arange(50) * 0.01, q=np.zeros((50, 1)), qd=np.zeros((50, 1)), tau=np.zeros((50, 1)),
                           episode=np.repeat([0, 1], [40, 10]), joint_names=["a"], dt=0.01)
    w = check_windows(mixed, 20, 5)
    assert "1 of 2 episodes are shorter" in w[0] and "10 rows (20 %)" in w[0]


def test_split_spec_parses_and_refuses_with_a_reason():
    assert SplitSpec.parse("0.8,0.1,0.1").fractions == (0.8, 0.1, 0.1)
    assert SplitSpec.parse("0.8,0.2", test_file="x.npz").fractions == (0.8, 0.2, 0.0)
    for bad in ("0.8,0.1", "a,b,c", "0.5,0.5,0.5"):
        with pytest.raises(ValueError):
            SplitSpec.parse(bad)
    with pytest.raises(ValueError, match="gap"):
        SplitSpec.parse(None, gap=-1)
    assert SplitSpec.from_dict(SplitSpec.parse("0.6,0.2,0.2", 5).to_dict()) == SplitSpec((0.6, 0.2, 0.2), 5)


def test_contiguous_split_with_gap_and_explicit_test_file(tmp_path):
    one = pendulum_data(n_ep=1, T=1000)
    tr, va, te = split_data(one, spec=SplitSpec((0.6, 0.2, 0.2), gap=50))
    # 1000 rows - 2 x 50 gap rows = 900 usable, 60 / 20 / 20 %: 540 / 180 / 180, gaps between
    assert (len(tr), len(va), len(te)) == (540, 180, 180)
    assert va.meta["split"]["rows"][0] == 540 + 50 and te.meta["split"]["rows"][0] == 540 + 50 + 180 + 50
    other = save_npz(tmp_path / "other.npz", pendulum_data(n_ep=2, T=100, seed=9))
    tr, va, te = split_data(pendulum_data(n_ep=10, T=100), spec=SplitSpec((0.8, 0.2, 0.0), test_file=str(other)))
    assert len(te) == 200 and te.meta["split"]["method"] == "file"
    assert len(tr) + len(va) == 1000 and len(va) == 200


def test_train_records_the_split_and_eval_reuses_it(tmp_path):
    npz = str(save_npz(tmp_path / "p.npz", pendulum_data(n_ep=10, T=80)))
    run = tmp_path / "run"
    assert main(["train", "--data", npz, "--model", "ffnn", "--epochs", "1", "--out", str(run), "--lod", "4",
                 "--hidden", "8", "--window", "20", "--split", "0.6,0.2,0.2", "--no-progress"]) == 0
    assert json.loads((run / "train.json").read_text())["split"]["fractions"] == [0.6, 0.2, 0.2]
    js = tmp_path / "r.json"
    assert main(["eval", "--data", npz, "--runs", str(run), "--json", str(js)]) == 0
    res = json.loads(js.read_text())
    assert res["split"]["fractions"] == [0.6, 0.2, 0.2] and res["test_rows"] == 2 * 80
    with pytest.raises(SystemExit, match="three fractions"):
        main(["train", "--data", npz, "--model", "ffnn", "--split", "0.5,0.5", "--out", str(tmp_path / "x")])
