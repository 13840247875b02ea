"""The recorder's bag writer: callbacks hand raw CDR bytes to :meth:`BagWriter.push` (a deque
append: never blocks, never does I/O); a writer thread writes them through the ``rosbags``
library and closes a chunk every ``chunk_period_s`` (MCAP: the chunk record is written and the
file flushed; sqlite3: the transaction is committed). What a SIGKILL loses is therefore what was
pushed since the last flush: at most ``chunk_period_s`` plus one pass of the writer loop
(``poll_s``). :meth:`BagWriter.close` drains the queue and finalizes the bag (summary, index,
``metadata.yaml``), so a SIGINT / shutdown leaves a complete, indexed bag.

Flushes go to the operating system (a killed process loses nothing the kernel has); they are not
fsync'ed, so a power cut may lose more.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from dynlearn_ros.bags.reader import typestore


@dataclass
class TopicCount:
    topic: str
    msgtype: str
    written: int = 0


class BagWriter:
    """A rosbag2 at ``path`` (a new folder; storage "mcap" or "sqlite3").

    Thread use: :meth:`add_topic` and :meth:`push` from any thread (the ROS callbacks); the
    rosbags writer is touched only by the writer thread. ``max_queue``: messages waiting beyond
    this are dropped and counted (memory bound if the disk stalls)."""

    def __init__(self, path: str | Path, storage: str = "mcap", chunk_period_s: float = 0.5,
                 poll_s: float = 0.02, max_queue: int = 200_000) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        plugins = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
        if storage not in plugins:
            raise ValueError(f"storage must be one of {sorted(plugins)}, got {storage!r}")
        self.path = Path(path).expanduser()
        if self.path.exists():
            raise ValueError(f"bag path {self.path} exists already (a recorder never overwrites)")
        self.storage = storage
        self.chunk_period_s, self.poll_s, self.max_queue = float(chunk_period_s), float(poll_s), int(max_queue)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # opened, written and closed in the writer thread only (sqlite3 objects are bound to the
        # thread that made them)
        self._writer = Writer(self.path, version=Writer.VERSION_LATEST, storage_plugin=plugins[storage])
        self._queue: deque = deque()
        self._conns: list = []
        self.topics: list[TopicCount] = []
        self.dropped = 0
        self.flushes = 0
        self.error = ""
        self._stop = threading.Event()
        self._closed = False
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bag-writer", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=60.0)
        if self.error or not self._ready.is_set():
            self._closed = True
            raise ValueError(f"cannot open the bag {self.path}: {self.error or 'timed out'}")

    def add_topic(self, topic: str, msgtype: str) -> int:
        """Register ``topic`` of ``msgtype`` ("sensor_msgs/msg/JointState", known to the Kilted
        type store, KeyError otherwise); returns the index :meth:`push` takes."""
        typestore().get_msgdef(msgtype)   # KeyError for a type the bag could not describe
        with self._lock:
            idx = len(self.topics)
            self.topics.append(TopicCount(topic, msgtype))
            self._queue.append((None, idx, topic, msgtype))
        return idx

    def push(self, idx: int, t_ns: int, data: bytes) -> None:
        """Queue one message of topic ``idx`` received at ``t_ns`` (ns since the epoch)."""
        if self._closed or len(self._queue) >= self.max_queue:
            self.dropped += 1
            return
        self._queue.append((data, idx, t_ns, None))

    def _drain(self) -> int:
        w, q, n = self._writer, self._queue, 0
        while q:
            data, idx, a, b = q.popleft()
            if data is None:
                self._conns.append(w.add_connection(a, b, typestore=typestore()))
                continue
            w.write(self._conns[idx], a, data)
            self.topics[idx].written += 1
            n += 1
        return n

    def _flush(self) -> None:
        st = self._writer.storage
        if st is None:
            return
        if self.storage == "mcap":
            if st.chunk.msgs:          # a chunk with messages: write it out (rosbags' own step)
                st.close_chunk()
            st.bio.flush()
        else:
            st.conn.commit()
        self.flushes += 1

    def _run(self) -> None:
        try:
            self._writer.open()
        except Exception as exc:   # the folder appeared meanwhile, no permission, ...
            self.error = f"{type(exc).__name__}: {exc}"
            self._ready.set()
            return
        self._ready.set()
        last = time.monotonic()
        try:
            while not self._stop.wait(self.poll_s):
                self._drain()
                if time.monotonic() - last >= self.chunk_period_s:
                    self._flush()
                    last = time.monotonic()
            self._drain()
        except Exception as exc:   # disk full, a bad message: stop writing, keep the node alive
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            try:
                self._writer.close()   # summary, index, metadata.yaml
            except Exception as exc:
                self.error = self.error or f"closing: {type(exc).__name__}: {exc}"

    def close(self) -> None:
        """Stop the thread after it has written what is queued and finalized the bag
        (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._thread.join(timeout=120.0)

    def counts(self) -> dict[str, int]:
        return {t.topic: t.written for t in self.topics}
