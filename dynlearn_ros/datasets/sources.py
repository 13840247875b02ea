"""Loaders for the real robot data sets in the shared data root (numpy/scipy only).

Each loader reads the files in place (read-only), converts them to :class:`TrajectoryData` and
fills ``episode``, ``dt`` and ``meta`` (source folder, the README's license statement, units,
how derived columns were computed). A missing file raises :class:`FileNotFoundError` naming the
file and the data root (set ``DYNLEARN_DATA`` to point elsewhere).

The column layouts were checked against the values, not only the READMEs:

* Panda (Gaz 2019): 5.5 % of the logged rows (1131 of 20544) repeat the previous row exactly (the logger
  sampled faster than the state updated) and the log time stamps jitter (0.7 .. 8.8 ms). The
  repeated rows are dropped and the rest are interpolated linearly onto a uniform 1 kHz grid
  using the logged times; with the logged times, finite differences of q agree with the logged
  qd about twice as well as with a row-count clock (RMS 0.10 vs 0.21 rad/s).
* UR10: columns 0-5 q, 6-11 qd, 12-17 qdd, 18-23 tau; a least-squares fit of the position
  differences against the mean velocity gives dt = 8.0 ms (the UR controller's 125 Hz).
  ``urPicknPlaceHyper`` (2000 rows) is a subset of ``urPicknPlace`` and is not loaded.
* KUKA LWR / Baxter: columns 0-6 q, 7-13 qd, 14-20 torque command, 21-27 q(t+1), 28-34 qd(t+1);
  columns 21-34 equal the next row's 0-13 exactly, so they are redundant. dt = 10 ms (fit as
  above: 0.0100 s).
* SARCOS test split: columns 0-6 q, 7-13 qd, 14-20 qdd, 21-27 tau. The rows are consecutive in
  time; the fit gives 0.104-0.112 s, so dt is set to 0.1 s (consistent with every 10th row of a
  100 Hz recording) and marked as inferred in ``meta``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from dynlearn_ros.datasets.filtering import acceleration_from_velocity
from dynlearn_ros.datasets.format import TrajectoryData
from dynlearn_ros.paths import data_root

UNITS_INVERSE = {"t": "s", "q": "rad", "qd": "rad/s", "qdd": "rad/s^2", "tau": "N*m"}

#: cut-off of the zero-phase velocity low-pass used for the Panda accelerations (Hz). The
#: commanded excitation (gen_dq.txt) has no power above ~2 Hz; the measured velocity shows a flat
#: noise/vibration floor from 2 to ~50 Hz. Differentiation multiplies that floor by (2 pi f)^2, so
#: the acceleration noise grows like fc^1.5: 10 Hz keeps the commanded motion untouched (the
#: 4th-order filter run forward and backward passes 2 Hz with gain 1/(1+(2/10)^8) = 0.99997)
#: while admitting only the floor up to 10 Hz.
PANDA_CUTOFF_HZ = 10.0
PANDA_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
UR10_JOINTS = (
    "shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint",
    "wrist_1_joint", "wrist_2_joint", "wrist_3_joint",
)
SARCOS_JOINTS = tuple(f"sarcos_joint{i}" for i in range(1, 8))
KUKA_LWR_JOINTS = tuple(f"lwr_a{i}" for i in range(1, 8))
BAXTER_JOINTS = ("s0", "s1", "e0", "e1", "w0", "w1", "w2")


def resolve_root(root: Path | str | None) -> Path:
    """The data root: ``root`` if given, else :func:`dynlearn_ros.paths.data_root`."""
    return Path(root).expanduser() if root is not None else data_root()


def require_file(path: Path, root: Path) -> Path:
    """``path`` if it is a file, else FileNotFoundError naming it and the data root."""
    if not path.is_file():
        raise FileNotFoundError(
            f"missing data file {path} (data root {root}; set the environment variable DYNLEARN_DATA "
            "to the folder that holds the data sets)"
        )
    return path


def readme_license(folder: Path) -> str:
    """The sentences of ``folder/README.md`` that state a license (joined), or a note if none."""
    readme = folder / "README.md"
    if not readme.is_file():
        return "unknown (README.md missing)"
    text = readme.read_text(encoding="utf-8")
    found: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        flat = " ".join(para.split())
        for sentence in re.split(r"(?<=\.)\s+", flat):
            if re.search(r"licen[cs]e", sentence, re.IGNORECASE):
                found.append(sentence)
    return " ".join(found) if found else "not stated in README.md"


def _base_meta(folder: Path, dataset: str, robot: str, kind: str) -> dict:
    return {
        "dataset": dataset,
        "robot": robot,
        "kind": kind,  # "inverse" (tau from q, qd, qdd) or "forward" (next state from state, action)
        "source": str(folder),
        "license": readme_license(folder),
        "units": dict(UNITS_INVERSE),
    }


def _loadmat(path: Path) -> dict:
    from scipy.io import loadmat

    return loadmat(str(path))


def _read_column_file(path: Path, n: int) -> np.ndarray:
    """A text file with one number per line, reshaped to (-1, n)."""
    values = np.loadtxt(path, dtype=np.float64).reshape(-1)
    if values.size % n:
        raise ValueError(f"{path}: {values.size} values is not a multiple of {n}")
    return values.reshape(-1, n)


def load_panda_gaz2019(root: Path | str | None = None, cutoff_hz: float = PANDA_CUTOFF_HZ) -> TrajectoryData:
    """Franka Panda exciting trajectory (Gaz et al. 2019), inverse dynamics, 1 kHz, one episode.

    q (N, 7) rad, qd (N, 7) rad/s as measured (resampled), qdd (N, 7) rad/s^2 from the velocity
    low-passed at ``cutoff_hz`` (zero phase) and central differences, tau (N, 7) N*m measured.
    """
    root = resolve_root(root)
    folder = root / "panda_gaz2019"
    log = folder / "Trajectory_1" / "rbt_log"
    files = {k: require_file(log / f"exciting_traj_{k}.txt", root) for k in ("positions", "velocity", "torques", "time")}
    q = _read_column_file(files["positions"], 7)
    qd = _read_column_file(files["velocity"], 7)
    tau = _read_column_file(files["torques"], 7)
    t_log = np.loadtxt(files["time"], dtype=np.float64).reshape(-1)
    if not (q.shape[0] == qd.shape[0] == tau.shape[0] == t_log.shape[0]):
        raise ValueError(f"{log}: row counts differ: {q.shape[0]}, {qd.shape[0]}, {tau.shape[0]}, {t_log.shape[0]}")
    n_raw = q.shape[0]
    # a row identical to its predecessor in q, qd and tau is the same state logged twice
    repeat = np.all(q[1:] == q[:-1], axis=1) & np.all(qd[1:] == qd[:-1], axis=1) & np.all(tau[1:] == tau[:-1], axis=1)
    keep = np.r_[True, ~repeat]
    q, qd, tau, t_log = q[keep], qd[keep], tau[keep], t_log[keep]
    if np.any(np.diff(t_log) <= 0):
        raise ValueError(f"{files['time']}: time stamps not strictly increasing after removing repeats")
    dt = 1e-3
    t = np.arange(0.0, t_log[-1] - t_log[0] + 0.5 * dt, dt)
    tq = t + t_log[0]

    def resample(x: np.ndarray) -> np.ndarray:
        return np.stack([np.interp(tq, t_log, x[:, j]) for j in range(x.shape[1])], axis=1)

    q, qd, tau = resample(q), resample(qd), resample(tau)
    qdd = acceleration_from_velocity(qd, dt, cutoff_hz)
    meta = _base_meta(folder, "panda_gaz2019", "panda", "inverse")
    meta.update(
        rows_raw=int(n_raw), rows_repeated_dropped=int(repeat.sum()),
        resampling="linear interpolation of the non-repeated rows onto a uniform 1 kHz grid (logged time)",
        qdd=f"zero-phase Butterworth order 4 (filtfilt) low-pass of qd at {cutoff_hz} Hz, then central differences",
        qdd_cutoff_hz=float(cutoff_hz),
        tau_note="measured joint torques, unfiltered",
    )
    return TrajectoryData(t=t, q=q, qd=qd, tau=tau, episode=np.zeros(t.size, np.int64),
                          joint_names=PANDA_JOINTS, dt=dt, qdd=qdd, meta=meta)


def load_ur10(root: Path | str | None = None) -> TrajectoryData:
    """UR10 pick and place of a 5 kg object (Polydoros), inverse dynamics, 125 Hz, one episode.

    q, qd, qdd (N, 6) rad, rad/s, rad/s^2 and tau (N, 6) N*m as in the file (columns 0-5, 6-11,
    12-17, 18-23); rows of the single continuous recording.
    """
    root = resolve_root(root)
    folder = root / "polydoros_robot_dynamics"
    path = require_file(folder / "URpickNplace.mat", root)
    x = np.asarray(_loadmat(path)["urPicknPlace"], dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 24:
        raise ValueError(f"{path}: urPicknPlace has shape {x.shape}, expected (N, 24)")
    dt = 0.008
    meta = _base_meta(folder, "ur10", "ur10", "inverse")
    meta.update(
        file=path.name, variable="urPicknPlace", columns="0-5 q, 6-11 qd, 12-17 qdd, 18-23 tau",
        dt_note="8 ms fitted from position differences vs velocity (UR controller 125 Hz)",
        payload="5 kg object picked and placed (not in the analytic model)",
    )
    return TrajectoryData(t=np.arange(x.shape[0]) * dt, q=x[:, 0:6], qd=x[:, 6:12], qdd=x[:, 12:18],
                          tau=x[:, 18:24], episode=np.zeros(x.shape[0], np.int64),
                          joint_names=UR10_JOINTS, dt=dt, meta=meta)


def load_sarcos(root: Path | str | None = None) -> TrajectoryData:
    """SARCOS inverse dynamics, test split only (4449 rows), one episode, dt 0.1 s (inferred).

    q, qd, qdd (N, 7) and tau (N, 7) from columns 0-6, 7-13, 14-20, 21-27.
    """
    root = resolve_root(root)
    folder = root / "sarcos"
    path = require_file(folder / "sarcos_inv_test.mat", root)
    x = np.asarray(_loadmat(path)["sarcos_inv_test"], dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 28:
        raise ValueError(f"{path}: sarcos_inv_test has shape {x.shape}, expected (N, 28)")
    dt = 0.1
    meta = _base_meta(folder, "sarcos", "sarcos", "inverse")
    meta.update(
        file=path.name, columns="0-6 q, 7-13 qd, 14-20 qdd, 21-27 tau", split="test file only",
        dt_note="inferred: least-squares fit of position differences vs mean velocity gives 0.104-0.112 s",
        leakage_note="the test file is reported to be every 10th row of the (missing) train file",
    )
    return TrajectoryData(t=np.arange(x.shape[0]) * dt, q=x[:, 0:7], qd=x[:, 7:14], qdd=x[:, 14:21],
                          tau=x[:, 21:28], episode=np.zeros(x.shape[0], np.int64),
                          joint_names=SARCOS_JOINTS, dt=dt, meta=meta)


def _load_polydoros_forward(root: Path | str | None, filename: str, prefix: str, dataset: str,
                            robot: str, joints: tuple[str, ...]) -> TrajectoryData:
    root = resolve_root(root)
    folder = root / "polydoros_robot_dynamics"
    path = require_file(folder / filename, root)
    mat = _loadmat(path)
    keys = sorted((k for k in mat if re.fullmatch(rf"{prefix}\d+", k)), key=lambda k: int(k[len(prefix):]))
    if not keys:
        raise ValueError(f"{path}: no variables named {prefix}<i>")
    dt = 0.01
    parts = []
    for ep, key in enumerate(keys):
        x = np.asarray(mat[key], dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != 35:
            raise ValueError(f"{path}: {key} has shape {x.shape}, expected (N, 35)")
        parts.append((ep, x))
    x_all = np.concatenate([x for _, x in parts])
    episode = np.concatenate([np.full(x.shape[0], ep, np.int64) for ep, x in parts])
    t = np.concatenate([np.arange(x.shape[0]) * dt for _, x in parts])
    meta = _base_meta(folder, dataset, robot, "forward")
    meta["units"]["tau"] = "N*m (commanded joint torque, the action)"
    meta.update(
        file=path.name, variables=keys,
        columns="0-6 q, 7-13 qd, 14-20 torque (action), 21-34 next q, qd (equal to the next row; dropped)",
        dt_note="10 ms fitted from position differences vs velocity",
        next_state_note="the target of row i is row i+1 of the same episode",
    )
    return TrajectoryData(t=t, q=x_all[:, 0:7], qd=x_all[:, 7:14], tau=x_all[:, 14:21], episode=episode,
                          joint_names=joints, dt=dt, meta=meta)


def load_kuka_lwr(root: Path | str | None = None) -> TrajectoryData:
    """KUKA LWR forward dynamics (Polydoros), 10 trajectories (episodes 0-9), 100 Hz.

    q (N, 7) rad, qd (N, 7) rad/s, tau (N, 7) N*m commanded torque (the action)."""
    return _load_polydoros_forward(root, "KukaDirectDynamics.mat", "kukatraj", "kuka_lwr", "kuka_lwr", KUKA_LWR_JOINTS)


def load_baxter(root: Path | str | None = None) -> TrajectoryData:
    """Rethink Baxter arm forward dynamics (Polydoros), 10 trajectories (episodes 0-9), 100 Hz.

    q (N, 7) rad, qd (N, 7) rad/s, tau (N, 7) N*m commanded torque (the action)."""
    return _load_polydoros_forward(root, "BaxterDirectDynamics.mat", "baxtertraj", "baxter", "baxter", BAXTER_JOINTS)
