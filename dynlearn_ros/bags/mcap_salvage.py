"""Read the complete records of an MCAP file whose end is missing (a recorder killed with
SIGKILL, a file cut by a full disk or a copy): everything up to the last complete top-level
record.

An MCAP file is the magic ``\\x89MCAP0\\r\\n``, then records ``opcode (u8) | length (u64 LE) |
body``; a finished file ends with a summary, a footer and the magic again. The ``rosbags`` reader
needs that end; this scanner walks the records from the start instead and stops at the first one
that is cut (or whose chunk does not decompress or fails its CRC), reporting why. Records used:
schema (0x03), channel (0x04), message (0x05) and chunk (0x06, its records parsed the same way);
the data section ends at data-end (0x0F) or the footer (0x02).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

MAGIC = b"\x89MCAP0\r\n"
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


@dataclass
class Channel:
    id: int
    topic: str
    msgtype: str       # the schema name, e.g. "sensor_msgs/msg/JointState"
    encoding: str      # "cdr" for ROS 2


@dataclass
class Salvage:
    """What :func:`scan` found: channels by id, messages ``(channel id, log time ns, data)`` in
    file order, ``complete`` (the data section ended normally) or ``problem`` (why it stopped)."""

    channels: dict[int, Channel] = field(default_factory=dict)
    messages: list[tuple[int, int, bytes]] = field(default_factory=list)
    complete: bool = False
    problem: str = ""
    bytes_read: int = 0


class _Cut(Exception):
    """A record runs past the end of its buffer."""


def _string(buf: memoryview, pos: int) -> tuple[str, int]:
    (n,) = _U32.unpack_from(buf, pos)
    end = pos + 4 + n
    if end > len(buf):
        raise _Cut
    return bytes(buf[pos + 4:end]).decode("utf-8"), end


def _records(buf: memoryview, pos: int) -> Iterator[tuple[int, memoryview, int]]:
    """(opcode, body, end offset) of each complete record from ``pos``; raises _Cut at a partial one."""
    size = len(buf)
    while pos < size:
        if pos + 9 > size:
            raise _Cut
        op = buf[pos]
        (length,) = _U64.unpack_from(buf, pos + 1)
        end = pos + 9 + length
        if end > size:
            raise _Cut
        yield op, buf[pos + 9:end], end
        pos = end


def _decompress(compression: str, data: bytes, size: int, crc: int) -> bytes:
    # the rosbags library's decoder: '' / 'zstd' / 'lz4' and the CRC check (ros2 bag record
    # writes zstd chunks by default)
    from rosbags.rosbag2.storage_mcap import decompress

    return decompress(data, compression, size, crc)


def _handle(op: int, body: memoryview, out: Salvage, schemas: dict[int, str]) -> bool:
    """Apply one record to ``out``; False at the end of the data section."""
    if op == 0x03:                                      # schema
        (sid,) = _U16.unpack_from(body, 0)
        name, _ = _string(body, 2)
        schemas[sid] = name
    elif op == 0x04:                                    # channel
        cid, sid = struct.unpack_from("<HH", body, 0)
        topic, pos = _string(body, 4)
        encoding, _ = _string(body, pos)
        out.channels[cid] = Channel(cid, topic, schemas.get(sid, ""), encoding)
    elif op == 0x05:                                    # message
        if len(body) < 22:
            raise _Cut
        (cid,) = _U16.unpack_from(body, 0)
        (log_time,) = _U64.unpack_from(body, 6)
        out.messages.append((cid, log_time, bytes(body[22:])))
    elif op == 0x06:                                    # chunk: its records, decompressed
        _start, _end, usize = struct.unpack_from("<QQQ", body, 0)
        (crc,) = _U32.unpack_from(body, 24)
        compression, pos = _string(body, 28)
        (clen,) = _U64.unpack_from(body, pos)
        if pos + 8 + clen > len(body):
            raise _Cut
        raw = _decompress(compression, bytes(body[pos + 8:pos + 8 + clen]), usize, crc)
        inner = Salvage(channels=out.channels)
        for iop, ibody, _ in _records(memoryview(raw), 0):
            _handle(iop, ibody, inner, schemas)
        out.messages.extend(inner.messages)   # only once the whole chunk decoded
    elif op in (0x0F, 0x02):                            # data end, footer
        return False
    return True


def scan(path: str | Path) -> Salvage:
    """Scan ``path`` (an MCAP file, finished or not). Raises ValueError if it is not MCAP."""
    data = Path(path).read_bytes()
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise ValueError(f"not an MCAP file (no MCAP magic at the start; {len(data)} bytes)")
    out = Salvage()
    schemas: dict[int, str] = {}
    buf = memoryview(data)
    pos = len(MAGIC)
    try:
        for op, body, end in _records(buf, pos):
            pos = end
            try:
                go_on = _handle(op, body, out, schemas)
            except (_Cut, struct.error) as exc:
                raise ValueError(f"record 0x{op:02x} at byte {end - len(body) - 9} is malformed") from exc
            if not go_on:
                out.complete = True
                break
        else:
            out.problem = f"the file ends after {pos} bytes without its summary (recording not finished)"
    except _Cut:
        out.problem = (f"the file is cut inside the record at byte {pos} of {len(data)}: "
                       f"read up to the last complete record")
    except Exception as exc:   # a chunk that does not decompress or fails its CRC: keep what came before
        out.problem = f"stopped at byte {pos}: {exc}"
    out.bytes_read = pos
    return out
