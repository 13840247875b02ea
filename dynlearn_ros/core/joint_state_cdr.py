"""sensor_msgs/JointState decoded from its serialized CDR bytes with numpy views (no ROS import).

The controller's tick starts from a joint state. rclpy's subscription turns each message into a
Python ``JointState`` (header, a list of str, three ``array('d')``) before the callback runs:
~21 us of CPU per 7-joint state in one process (``deserialize_message``, thread time, min of 5 x
20 000 at load ~7), outside the tick's own timer. With a raw subscription (``raw=True``: the
callback gets the bytes) :class:`JointStateCdr` reads the same fields in a few us: the stamp
with one ``struct.unpack_from``, the names compared against the last message's, position /
velocity / effort as ``np.frombuffer`` views of the bytes.

Wire format (XCDR1, the encoding rmw_fastrtps and rmw_cyclonedds use for ROS 2 messages): a
4-byte encapsulation header (0x00 0x01 = CDR little-endian), then the fields, each aligned to its
size relative to the end of the header: ``int32 sec, uint32 nanosec``; ``string frame_id``
(uint32 length including the NUL, the bytes, the NUL); ``string[] name`` (uint32 count, then
each string aligned to 4); ``float64[] position, velocity, effort`` (uint32 count, the values
aligned to 8 when the count is not 0). Padding bytes carry no meaning (the serializer leaves
them uninitialised): the names are matched byte for byte with the last message's (padding
included) first, then name by name.

:meth:`JointStateCdr.decode` returns False for anything it does not read exactly (another
encapsulation, a length past the end, a name that is not UTF-8 or not NUL-terminated): the
caller then deserializes with rclpy, so a message rclpy accepts is never lost to this decoder,
and one rclpy refuses is refused as before. What it accepts equals rclpy's decoding field by
field (test/unit/test_joint_state_cdr.py: NaN, short and empty arrays, unknown, extra and
reordered names, frame ids of every length mod 8).

``nodes/computed_torque.py`` subscribes ``joint_states`` raw and reads each state with this class
(test/ros/test_joint_state_raw_tick.py: the same torques, bit for bit, as from rclpy's messages).
"""

from __future__ import annotations

import struct

import numpy as np

_STAMP = struct.Struct("<iII")   # sec, nanosec, frame_id length
_U32 = struct.Struct("<I")
_CDR_LE = b"\x00\x01"
_HEADER = 4   # encapsulation bytes: alignment counts from their end
_EMPTY = np.zeros(0)


class JointStateCdr:
    """One decoder per subscription; after a True :meth:`decode` the fields of that message:

    sec, nanosec: the header stamp (int);  name: list[str] (the same list object while the names
    do not change, so a name-order cache can compare it cheaply);  position, velocity, effort:
    read-only float64 views (m,) of the bytes given (rad, rad/s, N*m; valid while those bytes
    live). Nothing is allocated for the names while they repeat."""

    def __init__(self) -> None:
        self.sec = 0
        self.nanosec = 0
        self.name: list[str] = []
        self.position = self.velocity = self.effort = _EMPTY
        # the last names and where each string's bytes started, relative to the names' count
        self._name_bytes: list[bytes] = []
        # the last message's name sequence as bytes, padding included: a sender whose padding
        # repeats (the bridge's does) is matched with one comparison
        self._block = b""
        self.decoded = 0
        self.names_parsed = 0   # messages whose names differed from the previous message's

    def decode(self, raw: bytes) -> bool:
        """Read ``raw`` (the CDR bytes of one JointState); False: not read (see the module doc)."""
        size = len(raw)
        if size < 16 or not raw.startswith(_CDR_LE):
            return False
        sec, nanosec, flen = _STAMP.unpack_from(raw, 4)
        off = 16 + flen
        if flen == 0 or off + 4 > size or raw[off - 1] != 0 or (flen > 1 and not _is_text(raw[16:off - 1])):
            return False
        off = _align(off, 4)
        if off + 4 > size:
            return False
        off = self._names(raw, off, size)
        if off < 0:
            return False
        arrays = []
        for _ in range(3):
            off = _align(off, 4)
            if off + 4 > size:
                return False
            (count,) = _U32.unpack_from(raw, off)
            off += 4
            if count == 0:
                arrays.append(_EMPTY)
                continue
            off = _align(off, 8)
            end = off + 8 * count
            if end > size:
                return False
            arrays.append(np.frombuffer(raw, dtype="<f8", count=count, offset=off))
            off = end
        self.sec, self.nanosec = sec, nanosec
        self.position, self.velocity, self.effort = arrays
        self.decoded += 1
        return True

    def _names(self, raw: bytes, off: int, size: int) -> int:
        """Read the name sequence at ``off`` into ``self.name``; the offset after it, -1 if unreadable."""
        block = self._block
        if block and raw.startswith(block, off):   # the same bytes as last time: the same names
            return off + len(block)
        start = off
        (count,) = _U32.unpack_from(raw, off)
        off += 4
        if count > (size - off) // 5:   # each name takes at least 5 bytes (length + NUL)
            return -1
        last = self._name_bytes
        same = count == len(last)
        parts: list[bytes] = []
        for i in range(count):
            off = _align(off, 4)
            if off + 4 > size:
                return -1
            (length,) = _U32.unpack_from(raw, off)
            off += 4
            end = off + length
            if length == 0 or end > size or raw[end - 1] != 0:
                return -1
            part = raw[off:end - 1]
            if same and part != last[i]:
                same = False
            parts.append(part)
            off = end
        if not same:
            if not all(_is_text(p) for p in parts):
                return -1
            names = [p.decode("utf-8") for p in parts]
            self.name, self._name_bytes = names, parts
            self.names_parsed += 1
        self._block = raw[start:off]
        return off


def _align(off: int, size: int) -> int:
    """``off`` (bytes from the start of the message) rounded up to a multiple of ``size`` counted
    from the end of the encapsulation header."""
    body = off - _HEADER
    return off + (-body % size)


def _is_text(b: bytes) -> bool:
    """UTF-8 without a NUL inside (what a ROS string holds; anything else goes to rclpy)."""
    if b"\x00" in b:
        return False
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
