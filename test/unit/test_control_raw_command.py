"""The controller publishes its command as raw CDR bytes (nodes/computed_torque.py
``_raw_prefix``): the constant serialized prefix of the Float64MultiArray + the torques' float64
bytes must deserialize to exactly the message the node used to publish. No graph is needed
(serialization only), so this is a unit test; it imports rclpy's serializer."""

from __future__ import annotations

import array

import numpy as np

from dynlearn_ros.nodes.computed_torque import _raw_prefix, multiarray_prefix


def _message(n: int):
    from std_msgs.msg import Float64MultiArray, MultiArrayDimension

    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label="joint", size=n, stride=n)]
    data = array.array("d", bytes(8 * n))
    msg.data = data
    return msg, data, np.frombuffer(data, dtype=np.float64)


def test_prefix_plus_torque_bytes_is_the_message():
    from rclpy.serialization import deserialize_message, serialize_message
    from std_msgs.msg import Float64MultiArray

    for n in (7, 9):
        msg, data, view = _message(n)
        prefix = _raw_prefix(msg, data, view)
        assert prefix is not None
        assert not view.any()   # the probe values are cleared again
        rng = np.random.default_rng(n)
        for tau in (rng.normal(0.0, 50.0, n), np.zeros(n), np.full(n, -0.0), np.array([1e-300] * n)):
            raw = prefix + tau.tobytes()
            back = deserialize_message(raw, Float64MultiArray)
            # bit for bit the values, the layout unchanged
            assert np.asarray(back.data).tobytes() == tau.tobytes()
            assert [(d.label, d.size, d.stride) for d in back.layout.dim] == [("joint", n, n)]
            assert back.layout.data_offset == 0
            # and the bytes the message itself serializes to, except the two padding bytes
            # after the label: encapsulation 0-3, dim count 4-7, label length 8-11, "joint\0"
            # 12-17, then size must start 4-aligned from byte 4: 18-19 are padding, which
            # rclpy leaves uninitialised (they differ between runs) and the prefix sets to 0
            view[:] = tau
            msg.data = data
            theirs = serialize_message(msg)
            assert len(theirs) == len(raw)
            assert raw[18:20] == b"\x00\x00"
            assert theirs[:18] == raw[:18] and theirs[20:] == raw[20:]


def test_prefix_layouts_of_every_padding():
    """multiarray_prefix for labels of every length mod 4 (0-3 padding bytes after each), one or
    two dimensions, a data offset and 0 / 1 / 7 values: rclpy deserializes prefix + values to
    the message, and its own serialization differs from the prefix only in bytes the prefix
    holds as 0 (the padding), at most 3 per label plus 4 before the values."""
    from rclpy.serialization import deserialize_message, serialize_message
    from std_msgs.msg import Float64MultiArray, MultiArrayDimension

    rng = np.random.default_rng(0)
    for dims in ([("j", 7, 7)], [("ab", 2, 14), ("joint", 7, 7)], [("abc", 3, 3), ("abcd", 1, 1)], [], [("", 0, 0)]):
        for n in (0, 1, 7):
            msg = Float64MultiArray()
            msg.layout.dim = [MultiArrayDimension(label=lb, size=sz, stride=st) for lb, sz, st in dims]
            msg.layout.data_offset = 3
            values = rng.normal(0.0, 10.0, n)
            msg.data = values.tolist()
            raw = multiarray_prefix(dims, 3, n) + values.tobytes()
            back = deserialize_message(raw, Float64MultiArray)
            assert [(d.label, d.size, d.stride) for d in back.layout.dim] == dims
            assert back.layout.data_offset == 3
            assert np.asarray(back.data, dtype=np.float64).tobytes() == values.tobytes()
            theirs = serialize_message(msg)
            # with no values rclpy's buffer may end in up to 7 more (uninitialised) bytes: its
            # size rounded up to the 8-byte alignment the values would have had
            assert len(theirs) == len(raw) if n else 0 <= len(theirs) - len(raw) < 8
            theirs = theirs[: len(raw)]
            differ = [i for i, (a, b) in enumerate(zip(raw, theirs, strict=True)) if a != b]
            assert all(raw[i] == 0 for i in differ)
            assert len(differ) <= 3 * len(dims) + 4
