"""recorder: writes the run's topics into a rosbag2 (MCAP by default) in its own process, so
recording never runs in the controller's or the bridge's process.

Topics (parameter ``topics``, names relative to the node's namespace): joint_states,
effort_controller/commands, reference_trajectory, predictor/prediction, predictor/prediction_std,
computed_torque/status, trainer/metrics, /diagnostics. A topic is subscribed once a publisher of
it appears (checked every ``discovery_period_s``), with that publisher's type and, as ``ros2 bag
record`` does, reliable only if every publisher offers reliable (best effort otherwise) and
transient-local only if every publisher is. Subscriptions are raw: the callback receives the CDR
bytes and hands them with the publisher's send time (the DDS source timestamp, ns since the epoch;
the bag's time; ``ros2 bag record`` uses the receive time instead, parameter ``bag_time``) to
:class:`dynlearn_ros.bags.writer.BagWriter`, whose thread writes and flushes a chunk every
``chunk_period_s`` - a callback never waits for the disk. SIGINT / SIGTERM finalize a complete,
indexed bag with ``metadata.yaml``; a SIGKILL loses at most the chunk being filled.

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
import time  # noqa: E402

from rclpy.node import Node  # noqa: E402
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402

from dynlearn_ros.bags.reader import typestore  # noqa: E402
from dynlearn_ros.bags.writer import BagWriter  # noqa: E402
from dynlearn_ros.core.config import ConfigError, ParamSpec  # noqa: E402
from dynlearn_ros.nodes.params import declare_spec, on_set_parameters, write_json_atomic  # noqa: E402
from dynlearn_ros.nodes.runner import run_node  # noqa: E402

_FIXED = "the bag and its subscriptions are set up at start-up"
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
              "timestamp; keeps the order state -> command -> next state; SingleThreadedExecutor) or "
              "receive (as ros2 bag record; EventsExecutor, less CPU)", choices=("send", "receive"),
              dynamic=False, reason=_FIXED),
    ParamSpec("niceness", "int", 19, "CPU niceness of every thread of the recorder, applied at start-up, so "
              "the control loop gets the CPU first (docs/bags.md: on 2 cores an un-niced recorder raised the "
              "realtime loop's deadline misses 12-16x); 0 leaves it as started", lo=0, hi=19, dynamic=False,
              reason="applied once at start-up (a process may not lower its niceness again)"),
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
        self._subs = []
        self.t_start = time.time()
        self.create_timer(p["discovery_period_s"], self._discover)
        self._discover()
        self.niceness = lower_priority(p["niceness"])
        self.get_logger().info(f"recording {sorted(self.wanted)} into {self.writer.path} ({p['storage']}, "
                               f"chunks every {p['chunk_period_s']} s, niceness {self.niceness})")

    def _qos(self, infos) -> QoSProfile:
        reliable = all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos)
        latched = all(i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for i in infos)
        return QoSProfile(depth=1000 if reliable else 100, history=HistoryPolicy.KEEP_LAST,
                          reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)

    def _discover(self) -> None:
        # threads the middleware starts later (a new peer, a new subscription) inherit their
        # creator's niceness, but one created while lower_priority ran may have missed it: re-check
        # (about 20 threads, two system calls each, every discovery period)
        if self.p["niceness"] > 0:
            lower_priority(self.p["niceness"])
        for topic in self.wanted:
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
            idx = self.writer.add_topic(topic, msgtype)
            if self.p["bag_time"] == "send":
                # two parameters: rclpy passes the MessageInfo; its source timestamp is the bag's time
                def callback(data, info, i=idx, push=self.writer.push):
                    push(i, info["source_timestamp"], data)
            else:
                def callback(data, i=idx, push=self.writer.push, now=time.time_ns):
                    push(i, now(), data)
            self._subs.append(self.create_subscription(cls, topic, callback, self._qos(infos), raw=True))
            self.subscribed[topic] = msgtype
            self.get_logger().info(f"recording {topic} ({msgtype})")

    def _skip(self, topic: str, reason: str) -> None:
        self.skipped[topic] = reason
        self.get_logger().warning(f"not recording {topic}: {reason}")

    def run(self, executor, stop) -> int:
        """With ``bag_time`` send: spin on a SingleThreadedExecutor of its own: rclpy's
        EventsExecutor (the package's default, :func:`dynlearn_ros.nodes.params.make_executor`)
        does not pass MessageInfo to callbacks (Kilted: SystemError), and the source timestamps
        are what orders the messages of different publishers correctly. With receive: the
        runner's executor."""
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        from dynlearn_ros.nodes.runner import spin_until_stopped

        if self.p["bag_time"] == "receive":
            spin_until_stopped(executor, self.context)
            return 0

        executor.remove_node(self)
        own = SingleThreadedExecutor(context=self.context)
        own.add_node(self)
        try:
            while not stop.is_set() and rclpy.ok(context=self.context):
                own.spin_once(timeout_sec=0.1)
        finally:
            own.shutdown(timeout_sec=1.0)
        return 0

    def summary(self) -> dict:
        counts = self.writer.counts()
        return {"bag_path": str(self.writer.path), "storage": self.p["storage"], "niceness": self.niceness,
                "messages": {t: counts.get(t, 0) for t in self.subscribed},
                "never_published": sorted(set(self.wanted) - set(self.subscribed) - set(self.skipped)),
                "skipped_topics": self.skipped, "dropped": self.writer.dropped, "flushes": self.writer.flushes,
                "writer_error": self.writer.error, "wall_s": time.time() - self.t_start}

    def write_summary(self) -> None:
        self.writer.close()      # finalize first: the counts below are what the bag holds
        if self.writer.error:
            self.get_logger().error(f"bag writer failed: {self.writer.error}")
        if self.p["summary_path"]:
            write_json_atomic(self.p["summary_path"], self.summary())

    def destroy_node(self) -> None:
        writer = getattr(self, "writer", None)   # None when the start-up was refused
        if writer is not None:
            writer.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Entry point (``recorder`` console script, ``python -m``): exit 0 after SIGINT / SIGTERM
    with a finalized bag, 2 when the configuration is refused (no bag_path, the folder exists)."""
    return run_node(Recorder, args, name="recorder")


if __name__ == "__main__":
    raise SystemExit(main())
