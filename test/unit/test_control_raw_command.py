"""The controller publishes its command as raw CDR bytes (nodes/computed_torque.py
``_raw_prefix``): the constant serialized prefix of the Float64MultiArray + the torques' float64
bytes must deserialize to exactly the message the node used to publish. No graph is needed
(serialization only), so this is a unit test; it imports rclpy's serializer."""

from __future__ import annotations

import array

import numpy as np

from dynlearn_ros.nodes.computed_torque import _raw_prefix


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
            # and the same bytes the message itself serializes to
            view[:] = tau
            msg.data = data
            assert serialize_message(msg) == raw
