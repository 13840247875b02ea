"""ac-RKN pneumatic muscle arm (4 joints, 8 muscles, 100 Hz), forward dynamics.

The archive ``PAMData_Data2.tar.xz`` (41 MB, 3,076 JSON files, 192 MB unpacked) is decompressed
once, streamed member by member (the JSON files are never written out), and converted to one
``.npz`` in :func:`dynlearn_ros.paths.cache_dir`; later loads read that file (≈ 0.1 s). The cache
name carries the archive's size and modification time, so a changed archive is re-converted.

Per file (one episode, files in name = time-stamp order): ``ob`` (T, 24) and ``action`` (T', 8)
with T' = T, T + 1 or T + 2. Rows 0..min(T, T')-1 are kept (trailing actions have no observation).

* q   = ``ob[:, 0:4]``: the 4 joint angles (rad), as the official loader uses them.
* qd  = central differences of q within each episode (``numpy.gradient``, one-sided at the two
  ends), rad/s. The angle sensor sometimes repeats a value for a few steps, so qd is noisy.
* tau = ``action`` (8 per step), as recorded (default), or, with ``tau_source="pressure"``, the
  measured muscle pressures ``ob[:, 8:16]`` (normalized, ~0..1.2).

What the recorded ``action`` is, checked on the data: it is not a pressure level but a per-step
increment: its lag-1 autocorrelation is 0.1-0.25, its values are standardized (std ~1), and its
running sum over time correlates with the measured pressure (r = 0.4-0.7 per muscle) while the raw
value does not (|r| < 0.15). The official ac-RKN loader applies ``cumsum(axis=1)`` (across the 8
channels), which correlates with nothing measured (|r| < 0.16); it is not reproduced here.

The last row of a recording is not part of its motion: in most files it jumps back towards the
start pose (measured over the 3,076 files: the largest joint jump from the second-to-last to the
last row has median 1.20 rad, 95th percentile 1.64 rad; between any other two consecutive rows the
mean |dq| is 0.008 rad). Such a row cannot be predicted from the actions, and a 1.2 rad error at one
row in 100 dominates every RMSE. :func:`load_pneumatic` drops it by default (``drop_last_row``);
the data set name ``pneumatic_raw`` keeps it (the ac-RKN paper's loader keeps it too, when a
recording's length is a multiple of its 40-row windows).

The data set has no train/test division of its own (the official loader shuffles 40-step windows
80/20); split by episode with :func:`dynlearn_ros.datasets.splits.split_by_episode`.
"""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import numpy as np

from dynlearn_ros.datasets.format import TrajectoryData
from dynlearn_ros.datasets.sources import readme_license, require_file, resolve_root
from dynlearn_ros.paths import cache_dir

ARCHIVE = "PAMData_Data2.tar.xz"
FOLDER = "acrkn_pneumatic_muscle_arm"
DT = 0.01
JOINTS = ("pam_joint1", "pam_joint2", "pam_joint3", "pam_joint4")
CACHE_VERSION = 1


def _cache_path(archive: Path) -> Path:
    st = archive.stat()
    return cache_dir() / f"pneumatic_{archive.stem.split('.')[0]}_v{CACHE_VERSION}_{st.st_size}_{int(st.st_mtime)}.npz"


def convert_archive(archive: Path, out: Path) -> Path:
    """Stream the JSON files out of ``archive`` and write the arrays to ``out`` (.npz).

    Written to a temporary name first and renamed, so concurrent readers never see half a file.
    """
    names: list[str] = []
    q_parts: list[np.ndarray] = []
    act_parts: list[np.ndarray] = []
    pres_parts: list[np.ndarray] = []
    with tarfile.open(archive, "r:xz") as tf:
        for member in tf:
            if not member.isfile():
                continue
            fh = tf.extractfile(member)
            if fh is None:
                continue
            rec = json.load(fh)
            ob = np.asarray(rec["ob"], dtype=np.float64)
            act = np.asarray(rec["action"], dtype=np.float64)
            if ob.ndim != 2 or ob.shape[1] < 16 or act.ndim != 2 or act.shape[1] != 8:
                raise ValueError(f"{archive}:{member.name}: unexpected shapes ob {ob.shape}, action {act.shape}")
            n = min(ob.shape[0], act.shape[0])
            names.append(member.name)
            q_parts.append(ob[:n, 0:4])
            pres_parts.append(ob[:n, 8:16])
            act_parts.append(act[:n])
    if not names:
        raise ValueError(f"{archive}: no data files found")
    order = np.argsort(names)
    lengths = np.array([q_parts[i].shape[0] for i in order], dtype=np.int64)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.stem}.{os.getpid()}.tmp.npz")
    np.savez(
        tmp, names=np.array([names[i] for i in order], dtype=str), lengths=lengths,
        q=np.concatenate([q_parts[i] for i in order]), action=np.concatenate([act_parts[i] for i in order]),
        pressure=np.concatenate([pres_parts[i] for i in order]),
    )
    os.replace(tmp, out)
    return out


def load_pneumatic(
    root: Path | str | None = None, tau_source: str = "action", drop_last_row: bool = True,
) -> TrajectoryData:
    """The pneumatic muscle arm as :class:`TrajectoryData` (episode = recording file).

    q (N, 4) rad, qd (N, 4) rad/s (finite differences), tau (N, 8): ``tau_source="action"`` the
    recorded action increments (unitless, standardized), ``"pressure"`` the measured normalized
    muscle pressures. dt = 0.01 s. ``drop_last_row`` removes each recording's last row (the jump
    back to the start pose, module docstring). The first call converts the archive (≈ 5-10 s).
    """
    if tau_source not in ("action", "pressure"):
        raise ValueError(f"tau_source must be 'action' or 'pressure', got {tau_source!r}")
    root = resolve_root(root)
    folder = root / FOLDER
    archive = require_file(folder / ARCHIVE, root)
    cache = _cache_path(archive)
    if not cache.is_file():
        convert_archive(archive, cache)
    with np.load(cache, allow_pickle=False) as z:
        names = z["names"].tolist()
        lengths = z["lengths"]
        q = z["q"]
        tau = z[tau_source]
    if drop_last_row:
        keep = np.ones(q.shape[0], dtype=bool)
        keep[np.cumsum(lengths) - 1] = False
        q, tau, lengths = q[keep], tau[keep], lengths - 1
    episode = np.repeat(np.arange(lengths.size, dtype=np.int64), lengths)
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    t = np.arange(q.shape[0], dtype=np.float64) - np.repeat(starts, lengths)
    t *= DT
    qd = np.empty_like(q)
    for s, n in zip(starts, lengths, strict=True):
        qd[s:s + n] = np.gradient(q[s:s + n], DT, axis=0)
    meta = {
        "dataset": ("pneumatic" if tau_source == "action" else "pneumatic_pressure")
        + ("" if drop_last_row else "_raw"),
        "robot": "pneumatic_muscle_arm",
        "kind": "forward",
        "source": str(folder),
        "license": readme_license(folder),
        "units": {
            "t": "s", "q": "rad", "qd": "rad/s",
            "tau": "action increment (unitless, standardized)" if tau_source == "action"
            else "measured muscle pressure (normalized, unitless)",
        },
        "tau_source": tau_source,
        "tau_columns": [f"muscle{i}" for i in range(1, 9)],
        "qd": "central differences of q within each episode (numpy.gradient), not measured",
        "episodes": f"{lengths.size} recording files in name order, first {names[0]}, last {names[-1]}",
        "official_split": "none (the ac-RKN loader shuffles 40-step windows 80/20); split by episode",
        "last_row": "dropped (the jump back to the start pose)" if drop_last_row else "kept (as recorded)",
        "cache": str(cache),
    }
    return TrajectoryData(t=t, q=q, qd=qd, tau=tau, episode=episode, joint_names=JOINTS, dt=DT, meta=meta)
