"""A bag to the generic data format, and what a bag holds (``dynlearn-ros bag info|to-npz``).

Default topics: the joint states are the one ``sensor_msgs/msg/JointState`` topic whose name ends
in ``joint_states``, the commands the ``std_msgs/msg/Float64MultiArray`` topic ending in
``effort_controller/commands`` (ros2_control's effort controller; the controller node's own
``~/status`` is also a Float64MultiArray, hence the name). Give ``states_topic`` /
``commands_topic`` to choose others; a named topic absent from the bag is a DataFileError naming
it and listing the bag's topics.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dynlearn_ros.bags.align import CommandSeries, StateSeries, align
from dynlearn_ros.bags.excitation import excitation, excitation_of
from dynlearn_ros.bags.reader import Bag, open_bag
from dynlearn_ros.datasets.format import TrajectoryData
from dynlearn_ros.errors import DataFileError

JOINT_STATE = "sensor_msgs/msg/JointState"
FLOAT_ARRAY = "std_msgs/msg/Float64MultiArray"
BAG_SUFFIXES = (".mcap", ".db3")


def is_bag_path(text: str | Path) -> bool:
    """Whether ``text`` names a bag (.mcap, .db3, a rosbag2 folder or its metadata.yaml); cheap,
    for the ``--data`` hook."""
    p = Path(str(text)).expanduser()
    if p.suffix in BAG_SUFFIXES or p.name == "metadata.yaml":
        return True
    return p.is_dir() and ((p / "metadata.yaml").is_file() or any(p.glob("*.mcap")) or any(p.glob("*.db3")))


def _default_topic(bag: Bag, msgtype: str, suffix: str, what: str) -> str:
    cands = [t.name for t in bag.topics.values() if t.msgtype == msgtype and t.name.endswith(suffix)]
    if len(cands) == 1:
        return cands[0]
    have = ", ".join(f"{t.name} ({t.msgtype})" for t in bag.topics.values()) or "none"
    if not cands:
        raise DataFileError(bag.path, f"no {what} topic ({msgtype} named *{suffix}) in the bag; "
                            f"its topics: {have}; name one with --{what.replace(' ', '-')}-topic")
    raise DataFileError(bag.path, f"several {what} topics {cands}; name one with --{what.replace(' ', '-')}-topic")


def read_states(bag: Bag, topic: str) -> StateSeries:
    """The JointState messages of ``topic``, joints in the first message's order and mapped by
    name; messages missing a joint or of the wrong length are dropped and counted."""
    info = bag.topic(topic)
    if info.msgtype != JOINT_STATE:
        raise DataFileError(bag.path, f"topic {info.name} is {info.msgtype}, not {JOINT_STATE}")
    names: tuple[str, ...] | None = None
    stamp, log, q, qd, eff = [], [], [], [], []
    dropped = {"missing_joint": 0, "bad_length": 0}
    has_effort = True
    for t, msg in bag.decoded(info.name):
        if names is None:
            names = tuple(msg.name)
        pos, vel, effort = np.asarray(msg.position), np.asarray(msg.velocity), np.asarray(msg.effort)
        if len(msg.name) != pos.size or len(msg.name) != vel.size:
            dropped["bad_length"] += 1
            continue
        if tuple(msg.name) == names:
            idx = slice(None)
        else:
            where = {nm: i for i, nm in enumerate(msg.name)}
            if any(nm not in where for nm in names):
                dropped["missing_joint"] += 1
                continue
            idx = np.array([where[nm] for nm in names])
        stamp.append(msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec)
        log.append(t)
        q.append(pos[idx])
        qd.append(vel[idx])
        if effort.size == len(msg.name):
            eff.append(effort[idx])
        else:
            has_effort = False
            eff.append(np.full(len(names), np.nan))
    if names is None or not stamp:
        raise DataFileError(bag.path, f"topic {info.name} has no decodable joint states "
                            f"({info.count} messages, {bag.undecodable.get(info.name, 0)} undecodable)")
    dropped["undecodable"] = bag.undecodable.get(info.name, 0)
    return StateSeries(np.array(stamp), np.array(log, dtype=np.int64), np.array(q), np.array(qd),
                       np.array(eff) if has_effort else None, names, dropped)


def read_commands(bag: Bag, topic: str, n: int) -> tuple[CommandSeries, int]:
    """Float64MultiArray commands of ``topic`` with ``n`` values (others are counted and dropped)."""
    info = bag.topic(topic)
    if info.msgtype != FLOAT_ARRAY:
        raise DataFileError(bag.path, f"topic {info.name} is {info.msgtype}, not {FLOAT_ARRAY}")
    log, tau, bad = [], [], 0
    for t, msg in bag.decoded(info.name):
        data = np.asarray(msg.data, dtype=np.float64)
        if data.size != n:
            bad += 1
            continue
        log.append(t)
        tau.append(data)
    if not log:
        raise DataFileError(bag.path, f"topic {info.name} has no commands of {n} values ({info.count} "
                            f"messages, {bad} of another size)")
    return CommandSeries(np.array(log, dtype=np.int64), np.array(tau)), bad


def bag_to_data(path: str | Path, states_topic: str | None = None, commands_topic: str | None = None,
                torque_source: str = "command", qdd_cutoff_hz: float = 0.0,
                keep_held: bool = False) -> TrajectoryData:
    """The bag at ``path`` as :class:`TrajectoryData` (rows of :mod:`dynlearn_ros.bags.align`).

    DataFileError naming the bag for an unreadable bag, a missing topic or too little data; a
    partly readable bag (killed recorder, cut file) gives its readable part, with ``meta["bag"]``
    saying so."""
    bag = open_bag(path)
    # both topics resolved first: a missing one is reported before any decoding
    st = bag.topic(states_topic or _default_topic(bag, JOINT_STATE, "joint_states", "states")).name
    ct = None
    if torque_source == "command":
        ct = bag.topic(commands_topic or _default_topic(bag, FLOAT_ARRAY, "effort_controller/commands",
                                                        "commands")).name
    states = read_states(bag, st)
    commands, bad = None, 0
    if ct is not None:
        commands, bad = read_commands(bag, ct, len(states.joint_names))
    meta = {"source": f"rosbag2 {bag.path}", "bag": {
        "path": str(bag.path), "storage": bag.storage, "complete": bag.complete, "problem": bag.problem,
        "states_topic": st, "commands_topic": ct,
        "commands_of_wrong_size": bad}, "units": {"t": "s", "q": "rad", "qd": "rad/s", "qdd": "rad/s^2",
                                                  "tau": "N*m"}}
    try:
        data = align(states, commands, torque_source, qdd_cutoff_hz, meta, keep_held)
    except ValueError as exc:
        raise DataFileError(bag.path, str(exc)) from exc
    # which joints the rows excite (bags/excitation.py): kept in the npz's meta, train.json copies it
    data.meta["excitation"] = excitation_of(data)
    return data


def bag_info(path: str | Path, states_topic: str | None = None) -> dict:
    """What ``dynlearn-ros bag info`` prints: storage, completeness, span, per-topic counts and
    ``excitation`` (bags/excitation.py) of the joint-state topic's positions and velocities (None
    when the bag has no single joint-state topic, with the reason under ``excitation_problem``)."""
    bag = open_bag(path)
    span = (bag.end_ns - bag.start_ns) * 1e-9 if bag.topics else 0.0
    exc, problem = None, None
    try:
        states = read_states(bag, bag.topic(states_topic or _default_topic(bag, JOINT_STATE, "joint_states",
                                                                           "states")).name)
        # the raw states (no alignment): the spread of what the arm did, qdd left to the conversion
        exc = excitation(states.q, states.qd, None, states.joint_names)
    except DataFileError as err:
        problem = err.problem
    return {"path": str(bag.path), "storage": bag.storage, "complete": bag.complete, "problem": bag.problem,
            "duration_s": span, "start_ns": bag.start_ns,
            "messages": sum(t.count for t in bag.topics.values()),
            "topics": {t.name: {"type": t.msgtype, "count": t.count} for t in sorted(bag.topics.values(),
                                                                                    key=lambda t: t.name)},
            "excitation": exc, "excitation_problem": problem}
