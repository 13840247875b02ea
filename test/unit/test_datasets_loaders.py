"""Every data set loader on the real data in the data root (skips naming the missing data set,
fails instead when CI is set)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest
from data_required import require

from dynlearn_ros.datasets import pneumatic
from dynlearn_ros.datasets.catalog import DATASETS, list_datasets, load_dataset
from dynlearn_ros.datasets.filtering import episode_bounds
from dynlearn_ros.datasets.format import save_npz

pytestmark = pytest.mark.data

#: name -> (data set folder, rows, episodes, joints, tau columns, dt s). Row and episode counts
#: are the ones the folders' READMEs state (Panda: 20.999 s at 1 ms after resampling).
EXPECTED = {
    "panda_gaz2019": ("panda_gaz2019", 21000, 1, 7, 7, 1e-3),
    "ur10": ("polydoros_robot_dynamics", 12349, 1, 6, 6, 8e-3),
    "sarcos": ("sarcos", 4449, 1, 7, 7, 0.1),
    "kuka_lwr": ("polydoros_robot_dynamics", 20068, 10, 7, 7, 0.01),
    "baxter": ("polydoros_robot_dynamics", 19295, 10, 7, 7, 0.01),
    # pneumatic: 329,878 recorded rows, less each file's last row (the jump back to the start pose)
    "pneumatic": ("acrkn_pneumatic_muscle_arm", 329878 - 3076, 3076, 4, 8, 0.01),
    "pneumatic_pressure": ("acrkn_pneumatic_muscle_arm", 329878 - 3076, 3076, 4, 8, 0.01),
    "pneumatic_raw": ("acrkn_pneumatic_muscle_arm", 329878, 3076, 4, 8, 0.01),
}


@pytest.fixture(scope="session")
def pneumatic_data():
    """The pneumatic set, converted once per session (first run extracts the archive, ~6 s)."""
    require("acrkn_pneumatic_muscle_arm")
    return load_dataset("pneumatic")


_cache: dict = {}


def load(name: str):
    require(EXPECTED[name][0])
    if name not in _cache:
        _cache[name] = load_dataset(name)
    return _cache[name]


def test_registry_lists_every_loader():
    assert set(list_datasets()) == set(DATASETS) == set(EXPECTED)
    assert all(isinstance(d, str) and d for d in list_datasets().values())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loader_shapes_dt_episodes(name, request):
    _, rows, n_ep, n_j, n_tau, dt = EXPECTED[name]
    # only the pneumatic sets pull in the session fixture (a missing archive must not skip others)
    data = request.getfixturevalue("pneumatic_data") if name == "pneumatic" else load(name)
    assert len(data) == rows
    assert data.q.shape == data.qd.shape == (rows, n_j)
    assert data.tau.shape == (rows, n_tau)
    assert len(data.joint_names) == n_j and len(set(data.joint_names)) == n_j
    assert data.dt == pytest.approx(dt)
    for key in ("t", "q", "qd", "tau"):
        assert np.all(np.isfinite(getattr(data, key))), key
    if data.qdd is not None:
        assert np.all(np.isfinite(data.qdd))
    # episodes: each id occupies exactly one contiguous run of rows
    bounds = episode_bounds(data.episode)
    assert len(bounds) == n_ep == data.episodes().size
    for a, b in bounds:
        # t restarts at 0 in each episode and advances by dt
        np.testing.assert_allclose(data.t[a:b], np.arange(b - a) * data.dt, rtol=0, atol=1e-9)
    for key in ("source", "license", "units", "dataset", "kind"):
        assert key in data.meta, key
    assert data.meta["license"] and "licen" in data.meta["license"].lower()


@pytest.mark.parametrize("name", ["panda_gaz2019", "ur10", "sarcos", "kuka_lwr", "baxter"])
def test_dt_matches_position_velocity_consistency(name):
    """dt fitted from the data: sum(dq * v_mean) / sum(v_mean^2) over all episodes, per row pair.

    A wrong sample period shows up as a wrong scale of the position differences against the
    logged velocity. Tolerance 15 %: the neighbouring candidate rates differ by >= 20 % (100 vs
    125 Hz, 0.1 vs 0.08 s), and velocity filtering or subsampling in the logs (SARCOS keeps every
    10th row, so the trapezoid over 0.1 s is a coarse integral) biases the fit by a few %.
    """
    data = load(name)
    num = den = 0.0
    for a, b in episode_bounds(data.episode):
        dq = np.diff(data.q[a:b], axis=0)
        vm = 0.5 * (data.qd[a + 1:b] + data.qd[a:b - 1])
        num += float(np.sum(dq * vm))
        den += float(np.sum(vm * vm))
    assert num / den / data.dt == pytest.approx(1.0, rel=0.15)


def test_panda_repeats_dropped_and_qdd_consistent():
    data = load("panda_gaz2019")
    assert data.meta["rows_raw"] == 20544  # README: 143,808 values / 7
    assert data.joint_names == tuple(f"panda_joint{i}" for i in range(1, 8))
    # the resampled grid holds no exactly repeated state (those were logger duplicates)
    assert not np.any(np.all(data.q[1:] == data.q[:-1], axis=1) & np.all(data.tau[1:] == data.tau[:-1], axis=1))
    # integrating the filtered acceleration over 1 s of fast motion (qd std ~0.7 rad/s) must
    # reproduce the logged velocity up to the noise the filter removed (~0.01 rad/s RMS above
    # 10 Hz). A qdd off by a factor 2 either way leaves errors of the order of the velocity
    # swing itself (> 0.2 rad/s); the bound 0.05 rad/s sits between the two.
    for a in (5000, 12000):
        vel_int = data.qd[a] + np.cumsum(data.qdd[a + 1:a + 1001], axis=0) * data.dt
        err = vel_int - data.qd[a + 1:a + 1001]
        assert np.sqrt(np.mean(err**2)) < 0.05


def test_forward_sets_next_state_is_next_row():
    """KUKA LWR / Baxter: columns 21-34 of the file are the next row's q, qd (so dropping them
    loses nothing); checked on the raw .mat."""
    from scipy.io import loadmat

    folder = require("polydoros_robot_dynamics")
    for fname, prefix in (("KukaDirectDynamics.mat", "kukatraj"), ("BaxterDirectDynamics.mat", "baxtertraj")):
        mat = loadmat(str(folder / fname))
        for i in (1, 10):
            x = mat[f"{prefix}{i}"]
            np.testing.assert_array_equal(x[:-1, 21:35], x[1:, 0:14])


def test_pneumatic_layout_and_cache(pneumatic_data, monkeypatch):
    data = pneumatic_data
    assert data.meta["kind"] == "forward"
    assert data.tau.shape[1] == 8 and data.q.shape[1] == 4
    # episodes are files of 83..152 rows (README), each without its last row
    lengths = np.diff([a for a, _ in episode_bounds(data.episode)] + [len(data)])
    assert lengths.min() >= 82 and lengths.max() <= 151
    cache = Path(data.meta["cache"])
    assert cache.is_file()
    assert not str(cache).startswith(str(Path(__file__).resolve().parents[2]))  # never in the repo

    # a second load reads the converted cache and never opens the archive again
    def forbidden(*args, **kwargs):
        raise AssertionError("archive reopened although the cache exists")

    monkeypatch.setattr(tarfile, "open", forbidden)
    again = pneumatic.load_pneumatic()
    np.testing.assert_array_equal(again.q, data.q)
    pres = pneumatic.load_pneumatic(tau_source="pressure")
    # measured pressures are normalized to about 0..1 (README: "near 0.5")
    assert pres.tau.min() > -0.5 and pres.tau.max() < 1.5
    assert np.median(pres.tau) == pytest.approx(0.5, abs=0.25)


def test_pneumatic_drops_only_the_reset_row(pneumatic_data):
    """'pneumatic' = 'pneumatic_raw' without each file's last row, and that row is a reset: its
    step from the row before is far larger than any step the arm makes inside a recording."""
    raw, data = load("pneumatic_raw"), pneumatic_data
    starts = np.array([a for a, _ in episode_bounds(raw.episode)] + [len(raw)])
    last = starts[1:] - 1
    keep = np.ones(len(raw), dtype=bool)
    keep[last] = False
    np.testing.assert_array_equal(data.q, raw.q[keep])
    np.testing.assert_array_equal(data.tau, raw.tau[keep])
    np.testing.assert_array_equal(data.episode, raw.episode[keep])
    jump = np.abs(raw.q[last] - raw.q[last - 1]).max(axis=1)    # (3076,) largest joint step, rad
    inner = np.abs(np.diff(data.q, axis=0))[np.diff(data.episode) == 0].max(axis=1)
    # measured: median reset 1.20 rad, median inner step < 0.02 rad; a factor 20 leaves margin
    # on both sides and fails if the dropped row were an ordinary one
    assert np.median(jump) > 20 * np.median(inner)
    assert np.median(inner) < 0.05


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_missing_data_names_file_and_root(name, tmp_path):
    with pytest.raises(FileNotFoundError) as exc:
        load_dataset(name, root=tmp_path)
    msg = str(exc.value)
    assert str(tmp_path) in msg and "DYNLEARN_DATA" in msg
    assert EXPECTED[name][0] in msg  # the missing file's path names the data set folder


def test_unknown_name_and_npz_path(tmp_path):
    with pytest.raises(KeyError, match="known"):
        load_dataset("no_such_set")
    with pytest.raises(FileNotFoundError):
        load_dataset(str(tmp_path / "absent.npz"))
    data = load("sarcos")
    path = save_npz(tmp_path / "mine.npz", data)
    back = load_dataset(str(path))
    np.testing.assert_array_equal(back.tau, data.tau)
    np.testing.assert_array_equal(back.qdd, data.qdd)
    assert back.joint_names == data.joint_names and back.meta["dataset"] == "sarcos"


@pytest.mark.parametrize("name", ["kuka_lwr", "panda_gaz2019"])
def test_real_splits_have_no_episode_or_time_overlap(name):
    from dynlearn_ros.datasets.splits import train_val_test

    data = load(name)
    parts = train_val_test(data, seed=0)
    assert sum(len(p) for p in parts) == len(data)
    if data.episodes().size >= 5:  # KUKA: whole trajectories per part
        sets = [set(p.episodes().tolist()) for p in parts]
        assert all(sets) and not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    else:  # Panda: one trajectory, three blocks in time order
        assert parts[0].t.max() < parts[1].t.min() and parts[1].t.max() < parts[2].t.min()
