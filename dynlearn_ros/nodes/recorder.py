"""recorder: writes the run's topics into a rosbag2 (MCAP by default) in its own process, so
recording never runs in the controller's or the bridge's process.

Topics (parameter ``topics``, names relative to the node's namespace): joint_states,
effort_controller/commands, reference_trajectory, predictor/prediction, predictor/prediction_std,
computed_torque/status, trainer/metrics, /diagnostics. A topic is subscribed once a publisher of
it appears (checked every ``discovery_period_s``), with that publisher's type and, as ``ros2 bag
record`` does, reliable only if every publisher offers reliable (best effort otherwise) and
transient-local only if every publisher is, keep last ``reader_depth`` (10 s at 1 kHz by
default): the middleware's receive threads queue what arrives while Python is off the CPU.

No executor callback per message: the subscriptions live on a second node that no executor
spins, and a drain thread takes every queued message of every topic each ``drain_period_s`` as
raw CDR bytes with its MessageInfo (``take_message``), handing the bytes and the bag time (the
publisher's send time, the DDS source timestamp, ns since the epoch; with ``bag_time`` receive
the middleware's receive time, as ``ros2 bag record``) to
:class:`dynlearn_ros.bags.writer.BagWriter`, whose thread writes and flushes a chunk every
``chunk_period_s`` - a take never waits for the disk. A SingleThreadedExecutor callback per
message (the first design) cost ~30 % of a core at 2,000 messages/s and, on a loaded machine,
recorded 1-44 % of the states (none when niced); docs/bags.md. SIGINT / SIGTERM finalize a
complete, indexed bag with ``metadata.yaml``; a SIGKILL loses at most the chunk being filled.

A topic whose type the Kilted type store does not know, or whose publisher's type hash differs
from the store's (its bytes would not decode with the definition the bag stores), is not recorded
and is named in the summary. The summary (``summary_path``, JSON, at exit) names the bag and counts
the messages written per topic, dropped ones and skipped topics.
"""

from __future__ import annotations

if __name__ == "__main__":  # a signal during the imports below must end the process cleanly too
    from dynlearn_ros.nodes.runner import catch_signals_early

    catch_signals_early()

import importlib  # noqa: E402
import os  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from rclpy.node import Node  # noqa: E402
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402

from dynlearn_ros.bags.reader import typestore  # noqa: E402
from dynlearn_ros.bags.writer import BagWriter  # noqa: E402
from dynlearn_ros.core.config import ConfigError, ParamSpec  # noqa: E402
from dynlearn_ros.nodes.params import declare_spec, on_set_parameters, write_json_atomic  # noqa: E402
from dynlearn_ros.nodes.runner import run_node  # noqa: E402

_FIXED = "the bag and its subscriptions are set up at start-up"
#: topics subscribed at start-up, before any publisher is seen (reliable and transient local, as
#: this package's publishers offer them: a reader matched late still gets the writer's last 1,000
#: messages), so the first states and commands of a run are in the bag; a publisher that offers
#: less (best effort, or volatile as ros2_control's) makes the recorder re-subscribe as it offers
JOINT_STATE_TYPE = "sensor_msgs/msg/JointState"
EAGER_TYPES = {"joint_states": "sensor_msgs/msg/JointState",
               "effort_controller/commands": "std_msgs/msg/Float64MultiArray"}
#: after SIGINT / SIGTERM the drain thread goes on until nothing arrived for QUIET_S seconds, at
#: most LINGER_S (a launch stops the whole graph at once: the last messages are still in flight)
QUIET_S, LINGER_S = 0.3, 3.0
DEFAULT_TOPICS = ("joint_states", "effort_controller/commands", "reference_trajectory", "predictor/prediction",
                  "predictor/prediction_std", "computed_torque/status", "trainer/metrics", "/diagnostics")

RECORDER_SPEC: tuple[ParamSpec, ...] = (
    ParamSpec("bag_path", "string", "", "folder of the rosbag2 to write (must not exist; required)",
              dynamic=False, reason=_FIXED),
    ParamSpec("storage", "string", "mcap", "storage format", choices=("mcap", "sqlite3"), dynamic=False,
              reason=_FIXED),
    ParamSpec("topics", "string_array", list(DEFAULT_TOPICS), "topics to record (relative names follow the "
              "namespace)", dynamic=False, reason=_FIXED),
    ParamSpec("chunk_period_s", "double", 0.5, "seconds between flushes of a chunk to the file: what a "
              "SIGKILL can lose at most", lo=0.02, hi=60.0, dynamic=False, reason=_FIXED),
    ParamSpec("discovery_period_s", "double", 0.2, "seconds between looks for publishers of topics not "
              "yet recorded", lo=0.01, hi=10.0, dynamic=False, reason=_FIXED),
    ParamSpec("max_queue", "int", 200000, "messages waiting for the writer beyond this are dropped (counted)",
              lo=100, hi=100_000_000, dynamic=False, reason=_FIXED),
    ParamSpec("summary_path", "string", "", "write a JSON summary here at exit", dynamic=False, reason=_FIXED),
    ParamSpec("bag_time", "string", "send", "the bag's time of a message: send (the publisher's DDS source "
              "timestamp; keeps the order state -> command -> next state) or receive (the middleware's "
              "receive time, as ros2 bag record)", choices=("send", "receive"),
              dynamic=False, reason=_FIXED),
    ParamSpec("niceness", "int", 0, "CPU niceness of every thread of the recorder, applied at start-up; 0 "
              "leaves it as started (docs/bags.md: niced to 19 on a loaded machine it recorded nothing)",
              lo=0, hi=19, dynamic=False,
              reason="applied once at start-up (a process may not lower its niceness again)"),
    ParamSpec("drain_period_s", "double", 0.005, "seconds between two takes of every queued message",
              lo=0.0005, hi=1.0, dynamic=False, reason=_FIXED),
    ParamSpec("reader_depth", "int", 10000, "keep-last depth of a reliable topic's subscription: messages the "
              "middleware holds while the drain thread is off the CPU (best-effort topics: a tenth)",
              lo=10, hi=1_000_000, dynamic=False, reason=_FIXED),
)


def message_class(msgtype: str):
    """The rclpy message class of ``msgtype`` ("sensor_msgs/msg/JointState"); None if not installed."""
    pkg, kind, name = (msgtype.split("/") + ["", "", ""])[:3]
    try:
        return getattr(importlib.import_module(f"{pkg}.{kind}"), name)
    except (ImportError, AttributeError, ValueError):
        return None


def hash_text(type_hash) -> str:
    """rclpy's TypeHash as the RIHS01_<hex> text rosbags uses ('' when unknown)."""
    if isinstance(type_hash, dict):
        version, value = type_hash.get("version", -1), type_hash.get("value", b"")
    else:
        version, value = getattr(type_hash, "version", -1), getattr(type_hash, "value", b"")
    if version != 1 or not value:
        return ""
    return "RIHS01_" + bytes(value).hex()



def lower_priority(niceness: int) -> int:
    """Raise every thread of this process (the DDS threads started before the node, the writer
    thread, the executor) to at least ``niceness``; threads created later inherit it from their
    creator. Linux keeps a niceness per thread, so ``os.nice`` alone would leave the DDS threads
    at 0. Returns the niceness of the calling thread afterwards."""
    if niceness > 0:
        for tid in os.listdir("/proc/self/task"):
            try:
                if os.getpriority(os.PRIO_PROCESS, int(tid)) < niceness:
                    os.setpriority(os.PRIO_PROCESS, int(tid), niceness)
            except (ProcessLookupError, PermissionError):   # a thread that has just ended
                continue
    return os.getpriority(os.PRIO_PROCESS, 0)


class Recorder(Node):
    def __init__(self) -> None:
        super().__init__("recorder")
        raw = declare_spec(self, RECORDER_SPEC, None)
        self.p = p = {s.name: s.check(raw[s.name], 0) for s in RECORDER_SPEC}
        if not p["bag_path"]:
            raise ConfigError("parameter 'bag_path' is required (the folder of the bag to write)")
        on_set_parameters(self, RECORDER_SPEC, lambda changes: None)
        # ValueError (the folder exists) refuses the start-up with the reason
        self.writer = BagWriter(p["bag_path"], p["storage"], p["chunk_period_s"], max_queue=p["max_queue"])
        self.wanted = {self.resolve_topic_name(t): t for t in p["topics"]}
        self.subscribed: dict[str, str] = {}      # resolved topic -> type
        self.skipped: dict[str, str] = {}         # resolved topic -> reason
        # subscriptions on a node no executor spins: only the drain thread takes their messages
        self._reader = Node("recorder_reader", context=self.context, start_parameter_services=False,
                            enable_rosout=False)
        self._subs: tuple = ()                    # (subscription, bag topic index); replaced, never mutated
        self._topic_idx: dict[str, int] = {}      # resolved topic -> the writer's topic index
        self._eager: set[str] = set()             # subscribed reliable before a publisher was seen
        self.takes = 0                            # messages taken from the middleware
        # JointState topics: messages whose header stamp repeats the previous one's (bag index ->
        # count; a bridge re-announces state 0 while it waits for the first command), so the
        # completeness counts distinct states (bags/completeness.py)
        self._stamped: dict[int, list] = {}       # bag topic index -> [last stamp bytes, repeats]
        self.t_start = time.time()
        self._stop = threading.Event()
        self._drain_lock = threading.Lock()
        self._drain = threading.Thread(target=self._drain_loop, name="recorder-drain", daemon=True)
        self.create_timer(p["discovery_period_s"], self._discover)
        for rel, msgtype in EAGER_TYPES.items():
            topic = self.resolve_topic_name(rel)
            if topic in self.wanted:
                self._subscribe(topic, msgtype, QoSProfile(depth=p["reader_depth"], history=HistoryPolicy.KEEP_LAST,
                                                           reliability=ReliabilityPolicy.RELIABLE,
                                                           durability=DurabilityPolicy.TRANSIENT_LOCAL))
                self._eager.add(topic)
        self._discover()
        self._drain.start()
        self.niceness = lower_priority(p["niceness"])
        self.get_logger().info(f"recording {sorted(self.wanted)} into {self.writer.path} ({p['storage']}, "
                               f"chunks every {p['chunk_period_s']} s, niceness {self.niceness})")

    def _qos(self, infos) -> QoSProfile:
        reliable = all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos)
        latched = all(i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for i in infos)
        depth = self.p["reader_depth"] if reliable else max(10, self.p["reader_depth"] // 10)
        return QoSProfile(depth=depth, history=HistoryPolicy.KEEP_LAST,
                          reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)

    def _discover(self) -> None:
        # threads the middleware starts later (a new peer, a new subscription) inherit their
        # creator's niceness, but one created while lower_priority ran may have missed it: re-check
        # (about 20 threads, two system calls each, every discovery period)
        if self.p["niceness"] > 0:
            lower_priority(self.p["niceness"])
        for topic in self.wanted:
            if topic in self._eager:
                infos = self.get_publishers_info_by_topic(topic)
                if any(i.qos_profile.reliability != ReliabilityPolicy.RELIABLE
                       or i.qos_profile.durability != DurabilityPolicy.TRANSIENT_LOCAL for i in infos):
                    # a reliable transient-local reader does not match a best-effort or volatile
                    # writer: subscribe as every publisher offers
                    self._eager.discard(topic)
                    self._unsubscribe(topic)
                    self._subscribe(topic, self.subscribed.pop(topic), self._qos(infos))
                continue
            if topic in self.subscribed or topic in self.skipped:
                continue
            infos = self.get_publishers_info_by_topic(topic)
            if not infos:
                continue
            msgtype = infos[0].topic_type
            if any(i.topic_type != msgtype for i in infos):
                self._skip(topic, f"publishers disagree on its type: {sorted({i.topic_type for i in infos})}")
                continue
            cls = message_class(msgtype)
            try:
                store_hash = typestore().hash_rihs01(msgtype)
            except KeyError:
                self._skip(topic, f"type {msgtype} is not in the ROS 2 Kilted type store")
                continue
            if cls is None:
                self._skip(topic, f"type {msgtype} has no Python message package here")
                continue
            pub_hash = hash_text(infos[0].topic_type_hash)
            if pub_hash and pub_hash != store_hash:
                self._skip(topic, f"{msgtype}: the publisher's type hash {pub_hash} differs from the type "
                                  f"store's {store_hash} (its bytes would not decode)")
                continue
            self._subscribe(topic, msgtype, self._qos(infos))

    def _subscribe(self, topic: str, msgtype: str, qos: QoSProfile) -> None:
        """A raw subscription on the reader node (its callback never runs: no executor spins that
        node; the drain thread takes) and the bag topic it is written to."""
        if topic not in self._topic_idx:            # a re-subscription writes to the same bag topic
            self._topic_idx[topic] = self.writer.add_topic(topic, msgtype)
        idx = self._topic_idx[topic]
        if msgtype == JOINT_STATE_TYPE:
            self._stamped.setdefault(idx, [b"", 0])
        sub = self._reader.create_subscription(message_class(msgtype), topic, lambda _msg: None, qos, raw=True)
        self._subs = (*self._subs, (sub, idx))
        self.subscribed[topic] = msgtype
        self.get_logger().info(f"recording {topic} ({msgtype}, {qos.reliability.name.lower()}, depth {qos.depth})")

    def _unsubscribe(self, topic: str) -> None:
        keep = tuple((s, i) for s, i in self._subs if s.topic_name != topic)
        gone = [s for s, _ in self._subs if s.topic_name == topic]
        self._subs = keep
        for s in gone:
            with self._drain_lock:           # not while the drain thread takes from it
                self._reader.destroy_subscription(s)

    def _drain_loop(self) -> None:
        """Every ``drain_period_s``: take every queued message of every subscription (raw bytes and
        MessageInfo) and hand it to the writer with its bag time. After the stop it goes on until
        nothing has arrived for QUIET_S (at most LINGER_S): what was in flight when the graph
        stopped together (a launch's SIGINT) is still taken."""
        key = "source_timestamp" if self.p["bag_time"] == "send" else "received_timestamp"
        push, period, stamped = self.writer.push, self.p["drain_period_s"], self._stamped
        t_stop = t_last = None
        while True:
            if self._stop.is_set() and t_stop is None:
                t_stop = t_last = time.monotonic()
            before = self.takes
            for sub, idx in self._subs:
                try:
                    with self._drain_lock, sub.handle:
                        while (got := sub.handle.take_message(sub.msg_type, True)) is not None:
                            data, info = got
                            push(idx, info.get(key) or time.time_ns(), data)
                            self.takes += 1
                            if (last := stamped.get(idx)) is not None:
                                # CDR: 4 bytes of encapsulation, then header.stamp (int32 sec,
                                # uint32 nanosec); equal bytes = equal stamps in either byte order
                                if data[4:12] == last[0]:
                                    last[1] += 1
                                else:
                                    last[0] = bytes(data[4:12])
                except Exception as exc:  # noqa: BLE001 - a destroyed handle at shutdown; never a crash
                    if t_stop is None:
                        self.get_logger().warning(f"recorder: taking from {sub.topic_name} failed: {exc}",
                                                  throttle_duration_sec=2.0)
            if t_stop is not None:
                now = time.monotonic()
                if self.takes != before:
                    t_last = now
                if now - t_last >= QUIET_S or now - t_stop >= LINGER_S:
                    return
                time.sleep(period)
            else:
                self._stop.wait(period)

    def stop_draining(self) -> None:
        """Stop the drain thread after its last sweeps (idempotent; see :meth:`_drain_loop`)."""
        self._stop.set()
        if self._drain.is_alive() and self._drain is not threading.current_thread():
            self._drain.join(timeout=LINGER_S + 2.0)

    def _skip(self, topic: str, reason: str) -> None:
        self.skipped[topic] = reason
        self.get_logger().warning(f"not recording {topic}: {reason}")

    def summary(self) -> dict:
        counts = self.writer.counts()
        return {"bag_path": str(self.writer.path), "storage": self.p["storage"], "niceness": self.niceness,
                "bag_time": self.p["bag_time"], "taken": self.takes,
                "messages": {t: counts.get(t, 0) for t in self.subscribed},
                "repeated_stamps": {t: self._stamped[i][1] for t, i in self._topic_idx.items() if i in self._stamped},
                "never_published": sorted(set(self.wanted) - set(self.subscribed) - set(self.skipped)),
                "skipped_topics": self.skipped, "dropped": self.writer.dropped, "flushes": self.writer.flushes,
                "writer_error": self.writer.error, "wall_s": time.time() - self.t_start}

    def write_summary(self) -> None:
        self.stop_draining()     # the last sweep takes what the middleware still holds
        self.writer.close()      # finalize first: the counts below are what the bag holds
        if self.writer.error:
            self.get_logger().error(f"bag writer failed: {self.writer.error}")
        counts = self.writer.counts()
        self.get_logger().info("recorded " + ", ".join(f"{t} {counts.get(t, 0)}" for t in sorted(self.subscribed))
                               + f" messages; dropped {self.writer.dropped}")
        if self.p["summary_path"]:
            write_json_atomic(self.p["summary_path"], self.summary())

    def destroy_node(self) -> None:
        writer = getattr(self, "writer", None)   # None when the start-up was refused
        if getattr(self, "_drain", None) is not None:
            self.stop_draining()
        if writer is not None:
            writer.close()
        if getattr(self, "_reader", None) is not None:
            self._reader.destroy_node()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Entry point (``recorder`` console script, ``python -m``): exit 0 after SIGINT / SIGTERM
    with a finalized bag, 2 when the configuration is refused (no bag_path, the folder exists)."""
    return run_node(Recorder, args, name="recorder")


if __name__ == "__main__":
    raise SystemExit(main())
