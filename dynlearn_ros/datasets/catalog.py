"""Data sets by name: ``load_dataset("panda_gaz2019")``, or any ``.npz`` in the generic format.

The list is printed by ``dynlearn-ros data list``.

>>> from dynlearn_ros.datasets.catalog import load_dataset, list_datasets
>>> data = load_dataset("ur10")            # TrajectoryData, read from the data root
>>> data = load_dataset("/logs/mine.npz")  # a user's own logs (see datasets.format)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dynlearn_ros.datasets import pneumatic, sources
from dynlearn_ros.datasets.format import TrajectoryData, load_npz

#: name -> (loader(root), one-line description)
DATASETS: dict[str, tuple[Callable[[Path | None], TrajectoryData], str]] = {
    "panda_gaz2019": (
        sources.load_panda_gaz2019,
        "Franka Panda, real, inverse: 21 s exciting trajectory at 1 kHz, 7 joints (q, qd, filtered qdd, tau)",
    ),
    "ur10": (
        sources.load_ur10,
        "UR10, real, inverse: pick and place of 5 kg, 12,349 rows at 125 Hz, 6 joints (q, qd, qdd, tau)",
    ),
    "sarcos": (
        sources.load_sarcos,
        "SARCOS arm, real, inverse: test split only, 4,449 rows, 7 joints (q, qd, qdd, tau)",
    ),
    "kuka_lwr": (
        sources.load_kuka_lwr,
        "KUKA LWR, real, forward: 10 trajectories, 20,068 rows at 100 Hz, 7 joints (q, qd, torque action)",
    ),
    "baxter": (
        sources.load_baxter,
        "Baxter arm, real, forward: 10 trajectories, 19,295 rows at 100 Hz, 7 joints (q, qd, torque action)",
    ),
    "pneumatic": (
        pneumatic.load_pneumatic,
        "pneumatic muscle arm (ac-RKN), real, forward: 3,076 episodes at 100 Hz, 4 joints, 8 action increments"
        " (each episode's last row, a jump back to the start pose, dropped)",
    ),
    "pneumatic_raw": (
        lambda root=None: pneumatic.load_pneumatic(root, drop_last_row=False),
        "as 'pneumatic' with each episode's last row kept, as recorded (every pneumatic table measured before 2026-12-01 used it)",
    ),
    "pneumatic_pressure": (
        lambda root=None: pneumatic.load_pneumatic(root, tau_source="pressure"),
        "as 'pneumatic' but tau = the 8 measured muscle pressures (normalized) instead of the actions",
    ),
}


def list_datasets() -> dict[str, str]:
    """Known data set names -> one-line descriptions."""
    return {name: desc for name, (_, desc) in DATASETS.items()}


def load_dataset(name_or_path: str | Path, root: Path | str | None = None) -> TrajectoryData:
    """Load a named data set from the data root (``root`` or ``$DYNLEARN_DATA`` or
    ``../shared/data``), or a ``.npz`` file in the generic format (``root`` is then unused).

    Raises FileNotFoundError naming the missing file and the data root, KeyError for an unknown
    name (the message lists the known ones).
    """
    text = str(name_or_path)
    if text.endswith(".npz"):
        path = Path(text).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"no such data file: {path}")
        return load_npz(path)
    if text not in DATASETS:
        raise KeyError(f"unknown data set '{text}'; known: {sorted(DATASETS)} or a path ending in .npz")
    loader, _ = DATASETS[text]
    return loader(None if root is None else Path(root))

