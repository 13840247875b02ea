"""Train / validation / test splits without leakage: whole episodes, or contiguous time blocks.

Rows are never shuffled individually: neighbouring rows of a robot log are nearly identical, so
a random-row split puts near copies of every test row into the training set.
Each returned part records how it was made in ``meta["split"]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dynlearn_ros.datasets.filtering import episode_bounds
from dynlearn_ros.datasets.format import TrajectoryData

#: fewest episodes for which :func:`train_val_test` splits by episode
MIN_EPISODES_FOR_EPISODE_SPLIT = 5
#: split protocols of :class:`SplitSpec`
PROTOCOLS = ("episode", "paper-leaky")


def _check_fractions(fractions: tuple[float, float, float]) -> np.ndarray:
    f = np.asarray(fractions, dtype=np.float64)
    if f.shape != (3,) or np.any(f < 0) or not np.isclose(f.sum(), 1.0):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    return f


def _counts(total: int, f: np.ndarray) -> tuple[int, int, int]:
    """Split ``total`` items into three counts proportional to ``f`` (largest remainder)."""
    raw = f * total
    n = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - n), kind="stable")[: total - int(n.sum())]:
        n[i] += 1
    return int(n[0]), int(n[1]), int(n[2])


def _tag(data: TrajectoryData, part: str, info: dict) -> TrajectoryData:
    data.meta = dict(data.meta)
    data.meta["split"] = {"part": part, **info}
    return data


def split_by_episode(
    data: TrajectoryData, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15), seed: int = 0
) -> tuple[TrajectoryData, TrajectoryData, TrajectoryData]:
    """(train, val, test): whole episodes assigned at random (``seed``) in the given proportions
    of the episode count; rows keep their original order. With at least 3 episodes and non-zero
    fractions every part gets at least one episode."""
    f = _check_fractions(fractions)
    episodes = data.episodes()
    n_ep = episodes.size
    n_train, n_val, n_test = _counts(n_ep, f)
    if n_ep >= 3:  # never leave a requested part empty
        n = [n_train, n_val, n_test]
        for i in range(3):
            if f[i] > 0 and n[i] == 0:
                j = int(np.argmax(n))
                n[j] -= 1
                n[i] += 1
        n_train, n_val, n_test = n
    order = np.random.default_rng(seed).permutation(episodes)
    groups = (order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:])
    info = {"method": "episode", "seed": int(seed), "fractions": [float(x) for x in f]}
    parts = []
    for name, ids in zip(("train", "val", "test"), groups, strict=True):
        sub = data.select(np.isin(data.episode, ids))
        parts.append(_tag(sub, name, {**info, "episodes": sorted(int(e) for e in ids)}))
    return parts[0], parts[1], parts[2]


def split_contiguous(
    data: TrajectoryData, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15), gap: int = 0
) -> tuple[TrajectoryData, TrajectoryData, TrajectoryData]:
    """(train, val, test): three consecutive blocks of rows in time order (train first).

    With several episodes the blocks follow the row order, so a block boundary may cut one
    episode in two (the two pieces then sit in different parts, without overlapping rows).

    ``gap`` rows are dropped before the validation and before the test block, so that a model
    reading a history of up to ``gap`` rows never sees the rows of the preceding part.
    """
    f = _check_fractions(fractions)
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap}")
    n_rows = len(data)
    usable = n_rows - 2 * gap
    if usable < 3:
        raise ValueError(f"{n_rows} rows are too few for three blocks with gap {gap}")
    n_train, n_val, _ = _counts(usable, f)
    bounds = (
        (0, n_train),
        (n_train + gap, n_train + gap + n_val),
        (n_train + 2 * gap + n_val, n_rows),
    )
    info = {"method": "contiguous", "fractions": [float(x) for x in f], "gap": int(gap)}
    parts = []
    rows = np.arange(n_rows)
    for name, (a, b) in zip(("train", "val", "test"), bounds, strict=True):
        sub = data.select((rows >= a) & (rows < b))
        parts.append(_tag(sub, name, {**info, "rows": [int(a), int(b)]}))
    return parts[0], parts[1], parts[2]


def train_val_test(
    data: TrajectoryData, seed: int = 0, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
) -> tuple[TrajectoryData, TrajectoryData, TrajectoryData]:
    """By episode when the data has at least 5 episodes, else contiguous blocks in time."""
    if data.episodes().size >= MIN_EPISODES_FOR_EPISODE_SPLIT:
        return split_by_episode(data, fractions, seed)
    return split_contiguous(data, fractions)


#: the ac-RKN paper's window length for its leaky protocol (official loader, pneumatic arm)
PAPER_WINDOW = 40
#: default (train, val, test) fractions of the leaky protocol: the paper's 80 / 20 windows, with a
#: tenth of its training windows held out for the best-epoch choice (the paper picks it on test)
PAPER_FRACTIONS = (0.72, 0.08, 0.2)


def window_episodes(data: TrajectoryData, window: int) -> TrajectoryData:
    """``data`` cut into consecutive non-overlapping windows of ``window`` rows (from each
    episode's first row; a tail shorter than ``window`` is dropped), each window relabelled as
    its own episode (ids 0, 1, ... in row order). Rows keep their order and values."""
    if window < 2:
        raise ValueError(f"window must be >= 2 rows, got {window}")
    keep = np.zeros(len(data), dtype=bool)
    new_ep = np.full(len(data), -1, dtype=np.int64)
    k = 0
    for a, b in episode_bounds(data.episode):
        for s in range(a, b - window + 1, window):
            keep[s:s + window] = True
            new_ep[s:s + window] = k
            k += 1
    out = data.select(keep)
    out.episode = new_ep[keep]
    return out


def split_paper_leaky(data: TrajectoryData, fractions: tuple[float, float, float] = PAPER_FRACTIONS,
                      seed: int = 0, window: int = PAPER_WINDOW
                      ) -> tuple[TrajectoryData, TrajectoryData, TrajectoryData]:
    """The ac-RKN paper's protocol, **leaky by construction**: every episode cut into consecutive
    non-overlapping windows of ``window`` rows (:func:`window_episodes`), the windows shuffled
    (``seed``) and assigned to train / val / test in the proportions ``fractions``. Windows of one
    recording land on both sides, and a test window's neighbours (the rows just before and after
    it) are training rows: test error is optimistic compared to unseen recordings. For comparison
    with published figures only; use the episode split to measure generalization."""
    if data.episodes().size < 3 and len(data) < 3 * window:
        raise ValueError(f"too few rows ({len(data)}) for three parts of {window}-row windows")
    w = window_episodes(data, window)
    if w.episodes().size < 3:
        raise ValueError(f"only {w.episodes().size} windows of {window} rows fit: need >= 3")
    tr, va, te = split_by_episode(w, fractions, seed)
    info = {"method": "paper-leaky", "seed": int(seed), "window": int(window),
            "fractions": [float(x) for x in fractions]}
    return tuple(_tag(p, p.meta["split"]["part"], {**info, "windows": len(p.meta["split"]["episodes"])})
                 for p in (tr, va, te))


@dataclass(frozen=True)
class SplitSpec:
    """How ``dynlearn-ros train`` / ``eval`` split a data set (recorded in the run's checkpoint so
    that eval uses the training's split).

    fractions: (train, val, test) shares of the episodes (>= 5 episodes) or of the rows in time
    (contiguous blocks); gap: rows dropped before the validation and the test block of a
    contiguous split (ignored by the episode split, whose parts share no episode); test_file: a
    separate data set (name or .npz) used whole as the test split, the data then split into
    train / val in the proportions of the first two fractions; protocol: "episode" (the above,
    default) or "paper-leaky" (:func:`split_paper_leaky`: shuffled 40-row windows, leaky, for
    comparison with the ac-RKN paper's figures only).
    """

    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    gap: int = 0
    test_file: str | None = None
    protocol: str = "episode"

    def __post_init__(self) -> None:
        object.__setattr__(self, "fractions", tuple(float(x) for x in self.fractions))
        _check_fractions(self.fractions)
        if self.gap < 0:
            raise ValueError(f"gap must be >= 0, got {self.gap}")
        if self.test_file is not None and self.fractions[0] + self.fractions[1] <= 0:
            raise ValueError("with a test file the train and validation fractions cannot both be 0")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if self.protocol == "paper-leaky" and (self.test_file is not None or self.gap):
            raise ValueError("the paper-leaky protocol takes neither a test file nor a gap")

    @classmethod
    def parse(cls, fractions: str | None = None, gap: int = 0, test_file: str | None = None,
              protocol: str = "episode") -> SplitSpec:
        """From the command-line forms: ``fractions`` "0.7,0.15,0.15" (or two numbers, train and
        val, with ``test_file``; default :data:`PAPER_FRACTIONS` for "paper-leaky"); ValueError
        with the reason otherwise."""
        if fractions is None:
            f = PAPER_FRACTIONS if protocol == "paper-leaky" else (0.7, 0.15, 0.15)
        else:
            try:
                f = tuple(float(x) for x in fractions.split(","))
            except ValueError as exc:
                raise ValueError(f"--split takes comma-separated numbers, got {fractions!r}") from exc
            if len(f) == 2 and test_file is not None:
                f = (*f, 0.0)
            if len(f) != 3:
                raise ValueError(f"--split takes three fractions train,val,test (two with --test-file), got {fractions!r}")
        return cls(f, int(gap), test_file, protocol)

    def to_dict(self) -> dict:
        return {"fractions": list(self.fractions), "gap": self.gap, "test_file": self.test_file,
                "protocol": self.protocol}

    @classmethod
    def from_dict(cls, d: dict | None) -> SplitSpec:
        return cls() if not d else cls(tuple(d["fractions"]), int(d.get("gap", 0)), d.get("test_file"),
                                       d.get("protocol", "episode"))


def split_data(data: TrajectoryData, seed: int = 0, spec: SplitSpec | None = None
               ) -> tuple[TrajectoryData, TrajectoryData, TrajectoryData]:
    """(train, val, test) of ``data`` as ``spec`` says (default: :func:`train_val_test`'s split)."""
    spec = spec or SplitSpec()
    if spec.protocol == "paper-leaky":
        return split_paper_leaky(data, spec.fractions, seed)
    if spec.test_file is not None:
        from dynlearn_ros.datasets.catalog import load_dataset

        test = _tag(load_dataset(spec.test_file), "test", {"method": "file", "file": spec.test_file})
        f0, f1 = spec.fractions[0], spec.fractions[1]
        fr = (f0 / (f0 + f1), f1 / (f0 + f1), 0.0)
        if data.episodes().size >= MIN_EPISODES_FOR_EPISODE_SPLIT:
            train, val, _ = split_by_episode(data, fr, seed)
        else:
            train, val, _ = split_contiguous(data, fr, spec.gap)
        if tuple(test.joint_names) != tuple(data.joint_names):
            raise ValueError(f"test file joints {test.joint_names} differ from the data's {data.joint_names}")
        return train, val, test
    if data.episodes().size >= MIN_EPISODES_FOR_EPISODE_SPLIT:
        return split_by_episode(data, spec.fractions, seed)
    return split_contiguous(data, spec.fractions, spec.gap)


def load_splits(
    name_or_path: str, seed: int = 0, max_train_samples: int | None = None
) -> tuple[TrajectoryData, TrajectoryData, TrajectoryData, TrajectoryData]:
    """(data, train, val, test) of a named data set or a generic ``.npz``
    (:func:`dynlearn_ros.datasets.catalog.load_dataset`) split by :func:`train_val_test`;
    ``max_train_samples`` keeps only the first N rows of the training split."""
    from dynlearn_ros.datasets.catalog import load_dataset

    data = load_dataset(name_or_path)
    train, val, test = train_val_test(data, seed=seed)
    if max_train_samples is not None and len(train) > max_train_samples:
        mask = np.zeros(len(train), dtype=bool)
        mask[:max_train_samples] = True
        train = train.select(mask)
    return data, train, val, test
