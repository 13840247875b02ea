"""The package's generic trajectory format.

One ``.npz`` file (numpy ``savez``) per data set, rows sampled at a fixed period:

======== ============ =========================================================
key      shape        meaning
======== ============ =========================================================
t        (N,)         time of the row within its episode (s)
q        (N, n)       joint position (rad; m for prismatic joints)
qd       (N, n)       joint velocity (rad/s)
qdd      (N, n)       joint acceleration (rad/s^2); optional, NaN-filled if absent
tau      (N, n)       joint torque actually applied (N*m); for forward data sets
                      with other actions (pressures, ...) it holds those actions
episode  (N,)         integer episode id; rows of one episode are contiguous
joint_names (n,)      joint names, URDF order (str)
dt       ()           sample period (s)
meta     ()           JSON string: source, robot, payload, friction, ... (free form)
======== ============ =========================================================

A user's own logs train without code changes once written in this layout
(``save_npz``). Splits are made by episode or contiguous block, never by random rows.
"""

from __future__ import annotations

import ast
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dynlearn_ros.errors import DataFileError

REQUIRED_KEYS = ("t", "q", "qd", "tau", "episode", "joint_names", "dt")


@dataclass
class TrajectoryData:
    """Time-indexed joint data. Arrays are float64 except ``episode`` (int64)."""

    t: np.ndarray
    q: np.ndarray
    qd: np.ndarray
    tau: np.ndarray
    episode: np.ndarray
    joint_names: tuple[str, ...]
    dt: float
    qdd: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.t = np.asarray(self.t, dtype=np.float64).reshape(-1)
        n_rows = self.t.shape[0]
        for key in ("q", "qd", "tau"):
            arr = np.asarray(getattr(self, key), dtype=np.float64)
            if arr.ndim != 2 or arr.shape[0] != n_rows:
                raise ValueError(f"{key}: expected shape ({n_rows}, n), got {arr.shape}")
            setattr(self, key, arr)
        if self.q.shape != self.qd.shape:
            raise ValueError(f"q {self.q.shape} and qd {self.qd.shape} differ in shape")
        if self.qdd is not None:
            self.qdd = np.asarray(self.qdd, dtype=np.float64)
            if self.qdd.shape != self.q.shape:
                raise ValueError(f"qdd {self.qdd.shape} must match q {self.q.shape}")
        self.episode = np.asarray(self.episode, dtype=np.int64).reshape(-1)
        if self.episode.shape[0] != n_rows:
            raise ValueError(f"episode: expected {n_rows} rows, got {self.episode.shape[0]}")
        self.joint_names = tuple(str(s) for s in self.joint_names)
        if len(self.joint_names) != self.q.shape[1]:
            raise ValueError(f"{len(self.joint_names)} joint names for {self.q.shape[1]} columns")
        self.dt = float(self.dt)
        if not self.dt > 0:
            raise ValueError(f"dt must be > 0, got {self.dt}")

    def __len__(self) -> int:
        return int(self.t.shape[0])

    @property
    def n_joints(self) -> int:
        return int(self.q.shape[1])

    def episodes(self) -> np.ndarray:
        """Episode ids in order of first appearance."""
        _, first = np.unique(self.episode, return_index=True)
        return self.episode[np.sort(first)]

    def select(self, mask: np.ndarray) -> TrajectoryData:
        """Rows where ``mask`` is true (boolean (N,) array), metadata kept."""
        return TrajectoryData(
            t=self.t[mask], q=self.q[mask], qd=self.qd[mask], tau=self.tau[mask],
            episode=self.episode[mask], joint_names=self.joint_names, dt=self.dt,
            qdd=None if self.qdd is None else self.qdd[mask], meta=dict(self.meta),
        )


def save_npz(path: str | Path, data: TrajectoryData) -> Path:
    """Write ``data`` in the generic format; returns the path written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    qdd = data.qdd if data.qdd is not None else np.full_like(data.q, np.nan)
    np.savez(
        path, t=data.t, q=data.q, qd=data.qd, qdd=qdd, tau=data.tau, episode=data.episode,
        joint_names=np.array(data.joint_names, dtype=str), dt=np.float64(data.dt),
        meta=np.array(json.dumps(data.meta)),
    )
    return path


def load_npz(path: str | Path) -> TrajectoryData:
    """Read a file written by :func:`save_npz` (or by hand in the same layout).

    Raises :class:`dynlearn_ros.errors.DataFileError` (a ValueError) naming the file and the
    problem: missing or unreadable file, not an .npz (e.g. truncated), missing keys, wrong shapes,
    non-finite values in t, q, qd or tau (with the number of such rows and the first one)."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "no such file")
    if not zipfile.is_zipfile(path):
        raise DataFileError(path, f"not an .npz archive ({path.stat().st_size} bytes; truncated or another format)")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in REQUIRED_KEYS if k not in z.files]
            if missing:
                raise DataFileError(path, f"missing keys {missing}; required {list(REQUIRED_KEYS)}")
            qdd = z["qdd"] if "qdd" in z.files else None
            if qdd is not None and np.isnan(qdd).all():
                qdd = None
            meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
            arrays = {k: z[k] for k in ("t", "q", "qd", "tau", "episode")}
            names, dt = tuple(z["joint_names"].tolist()), float(z["dt"])
    except DataFileError:
        raise
    except (OSError, EOFError, zipfile.BadZipFile, ValueError, KeyError, TypeError) as exc:
        raise DataFileError(path, f"not a readable .npz data set ({type(exc).__name__}: {exc})") from exc
    for key in ("t", "q", "qd", "tau"):
        arr = arrays[key]
        if not np.issubdtype(arr.dtype, np.number):
            raise DataFileError(path, f"'{key}' is not numeric ({arr.dtype})")
        if arr.ndim in (1, 2) and not np.isfinite(arr).all():
            bad = ~np.isfinite(arr) if arr.ndim == 1 else ~np.isfinite(arr).all(axis=1)
            rows = np.flatnonzero(bad)
            raise DataFileError(path, f"'{key}' has non-finite values in {rows.size} rows (first: row {rows[0]}); "
                                "remove or repair those rows")
    try:
        return TrajectoryData(**arrays, joint_names=names, dt=dt, qdd=qdd, meta=meta)
    except ValueError as exc:
        raise DataFileError(path, f"inconsistent arrays: {exc}") from exc


def episode_kinds(data: TrajectoryData) -> dict[int, str]:
    """Episode index -> kind ("fourier", "pick_place", ...) from the data set's metadata
    (``episode_stats``, written by dynlearn_ros.scenarios.vgain_data); empty when absent
    or unreadable."""
    stats = data.meta.get("episode_stats")
    if isinstance(stats, str):
        try:
            stats = ast.literal_eval(stats)  # stored as text in .npz metadata
        except (ValueError, SyntaxError):
            return {}
    if not isinstance(stats, list):
        return {}
    return {int(e["episode"]): str(e["kind"]) for e in stats if isinstance(e, dict) and "kind" in e}
