"""Open a rosbag2 (MCAP or sqlite3) and read its raw messages, never crashing on a damaged one.

Accepted paths: a rosbag2 folder (with ``metadata.yaml``, as ``ros2 bag record`` and the
recorder node write it; or without it, as a killed recorder leaves it: then its one ``.mcap`` /
``.db3`` file is read), its ``metadata.yaml``, or a single ``.mcap`` / ``.db3`` file.

A finished bag is read with the ``rosbags`` library. An MCAP file without its summary (SIGKILL,
a cut copy) is scanned record by record (:mod:`dynlearn_ros.bags.mcap_salvage`) up to its last
complete chunk; the :class:`Bag` says so in ``complete`` / ``problem``. Anything else that cannot
be read is a :class:`~dynlearn_ros.errors.DataFileError` naming the file and the reason.

Messages are decoded with the ``rosbags`` type store of ROS 2 Kilted (:data:`TYPESTORE`), whose
definitions of sensor_msgs/JointState, std_msgs/Float64MultiArray, std_msgs/String,
trajectory_msgs/JointTrajectory and diagnostic_msgs/DiagnosticArray are those rclpy's Kilted
messages serialize (checked in test/ros/test_recorder.py against bytes a real graph published).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from dynlearn_ros.errors import DataFileError

STORAGE_SUFFIXES = {".mcap": "mcap", ".db3": "sqlite3"}


@lru_cache(maxsize=1)
def typestore():
    """The rosbags type store of ROS 2 Kilted (built once)."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_KILTED)


def decode(raw: bytes, msgtype: str):
    """Deserialize CDR ``raw`` of ``msgtype`` ("sensor_msgs/msg/JointState"). Trailing bytes
    after the message are ignored: rmw_fastrtps pads some messages (a one-point JointTrajectory
    serialized by rclpy measured 92 bytes for 84 of content), which rosbags' own check refuses.
    Raises ValueError when the bytes do not hold the message."""
    import struct

    ts = typestore()
    if len(raw) < 4 or bytes(raw[:2]) not in (b"\x00\x00", b"\x00\x01"):
        raise ValueError(f"{msgtype}: not CDR (encapsulation {bytes(raw[:4]).hex()})")
    msgdef = ts.get_msgdef(msgtype)
    func = msgdef.deserialize_cdr_le if raw[1] else msgdef.deserialize_cdr_be
    try:
        message, _pos = func(memoryview(raw)[4:], 0, msgdef.cls, ts)
    except (struct.error, UnicodeDecodeError, ValueError, IndexError) as exc:
        raise ValueError(f"{msgtype}: cannot decode {len(raw)} bytes ({exc})") from exc
    return message


@dataclass
class TopicInfo:
    name: str
    msgtype: str
    count: int


@dataclass
class Bag:
    """A bag read whole: per-topic raw messages ``(log time ns, data)`` in log-time order.

    ``complete``: the file(s) ended as a finished recording; otherwise ``problem`` says what is
    missing and the messages are those read before it."""

    path: Path
    storage: str
    topics: dict[str, TopicInfo]
    messages: dict[str, list[tuple[int, bytes]]] = field(repr=False)
    complete: bool = True
    problem: str = ""

    def topic(self, name: str) -> TopicInfo:
        """The topic ``name`` (``/joint_states``; a name without the leading / is accepted);
        DataFileError naming it and listing the bag's topics when absent."""
        key = name if name.startswith("/") else f"/{name}"
        if key not in self.topics:
            have = ", ".join(f"{t.name} ({t.msgtype}, {t.count})" for t in self.topics.values()) or "none"
            raise DataFileError(self.path, f"topic {key} is not in the bag; its topics: {have}")
        return self.topics[key]

    def decoded(self, name: str) -> Iterator[tuple[int, object]]:
        """(log time ns, message) of topic ``name``; undecodable messages are skipped (counted
        in :attr:`undecodable`)."""
        info = self.topic(name)
        for t, raw in self.messages.get(info.name, []):
            try:
                yield t, decode(raw, info.msgtype)
            except (ValueError, KeyError):
                self.undecodable[info.name] = self.undecodable.get(info.name, 0) + 1

    def __post_init__(self) -> None:
        self.undecodable: dict[str, int] = {}

    @property
    def start_ns(self) -> int:
        return min((m[0][0] for m in self.messages.values() if m), default=0)

    @property
    def end_ns(self) -> int:
        return max((m[-1][0] for m in self.messages.values() if m), default=0)


def _storage_file(folder: Path) -> Path | None:
    files = [p for p in sorted(folder.iterdir()) if p.suffix in STORAGE_SUFFIXES]
    return files[0] if len(files) == 1 else None


def _resolve(path: Path) -> tuple[Path, str]:
    """(what to open, storage) of a user's path; DataFileError when it is no bag."""
    if not path.exists():
        raise DataFileError(path, "no such bag (a rosbag2 folder, metadata.yaml, .mcap or .db3)")
    if path.is_file() and path.name == "metadata.yaml":
        path = path.parent
    if path.is_dir():
        storage_file = _storage_file(path)
        if (path / "metadata.yaml").is_file():   # one storage file, or several (a split bag: <name>_0, _1, ...)
            kinds = {STORAGE_SUFFIXES[p.suffix] for p in path.iterdir() if p.suffix in STORAGE_SUFFIXES}
            return path, kinds.pop() if len(kinds) == 1 else "?"
        if storage_file is None:
            raise DataFileError(path, "not a rosbag2 folder: no metadata.yaml and not exactly one .mcap / .db3 file")
        return storage_file, STORAGE_SUFFIXES[storage_file.suffix]
    if path.suffix not in STORAGE_SUFFIXES:
        raise DataFileError(path, f"not a bag file (expected .mcap or .db3, got '{path.suffix}')")
    return path, STORAGE_SUFFIXES[path.suffix]


def _read_rosbags(target: Path) -> tuple[dict[str, TopicInfo], dict[str, list[tuple[int, bytes]]], str]:
    """Topics and messages through rosbags; the problem text if reading stopped early."""
    from rosbags.rosbag2 import Reader

    topics: dict[str, TopicInfo] = {}
    messages: dict[str, list[tuple[int, bytes]]] = {}
    problem = ""
    with Reader(target) as reader:
        for conn in reader.connections:
            topics.setdefault(conn.topic, TopicInfo(conn.topic, conn.msgtype, 0))
            messages.setdefault(conn.topic, [])
        try:
            for conn, t, raw in reader.messages():
                messages[conn.topic].append((int(t), bytes(raw)))
        except Exception as exc:   # a damaged chunk or page part-way: keep what was read before it
            problem = f"reading stopped part-way: {type(exc).__name__}: {exc}"
        listed: dict[str, int] = {}
        for conn in reader.connections:
            listed[conn.topic] = listed.get(conn.topic, 0) + int(conn.msgcount or 0)
    # rosbags yields only messages whose storage channel matches metadata.yaml's topic entry
    # (type, serialization, QoS): a bag whose metadata.yaml disagrees with its files reads short
    short = [f"{t}: {listed[t]} listed, {len(messages[t])} read" for t in sorted(listed)
             if len(messages[t]) < listed[t]]
    if short and not problem:
        problem = ("fewer messages than the bag's metadata lists (metadata.yaml and the storage files "
                   "disagree, or files are damaged): " + "; ".join(short))
    return topics, messages, problem


def _read_salvage(mcap: Path) -> tuple[dict[str, TopicInfo], dict[str, list[tuple[int, bytes]]], str, bool]:
    from dynlearn_ros.bags.mcap_salvage import scan

    try:
        found = scan(mcap)
    except (OSError, ValueError) as exc:
        raise DataFileError(mcap, str(exc)) from exc
    topics = {c.topic: TopicInfo(c.topic, c.msgtype, 0) for c in found.channels.values()}
    messages: dict[str, list[tuple[int, bytes]]] = {t: [] for t in topics}
    for cid, t, raw in found.messages:
        ch = found.channels.get(cid)
        if ch is not None:
            messages[ch.topic].append((t, raw))
    for lst in messages.values():
        lst.sort(key=lambda m: m[0])
    return topics, messages, found.problem, found.complete


def open_bag(path: str | Path) -> Bag:
    """Read the bag at ``path`` whole (see the module docstring). DataFileError when nothing
    can be read; a :class:`Bag` with ``complete=False`` and ``problem`` when only a part can."""
    from rosbags.rosbag2 import ReaderError

    path = Path(path).expanduser()
    target, storage = _resolve(path)
    complete, problem = True, ""
    unfinished = path.is_dir() and target != path    # a folder without metadata.yaml
    try:
        topics, messages, problem = _read_rosbags(target)
        complete = not problem and not unfinished
        if unfinished and not problem:
            problem = ("the folder has no metadata.yaml: the recording did not finish (killed?); "
                       f"read what {target.name} holds")
    except (ReaderError, OSError, ValueError, KeyError, EOFError) as exc:
        mcap = target if target.suffix == ".mcap" else (_storage_file(target) if target.is_dir() else None)
        if mcap is None or mcap.suffix != ".mcap":
            raise DataFileError(target, f"cannot read the bag: {type(exc).__name__}: {exc}") from exc
        topics, messages, problem, complete = _read_salvage(mcap)
        if not topics:
            raise DataFileError(mcap, f"no readable MCAP records ({problem or exc})") from exc
        storage = "mcap"
        problem = (f"{problem} (rosbags: {exc})" if not complete else
                   f"the data section is whole but the summary after it is not (rosbags: {exc})")
    for name, lst in messages.items():
        topics[name].count = len(lst)
    return Bag(path=path, storage=storage, topics=topics, messages=messages, complete=complete,
               problem=problem)
