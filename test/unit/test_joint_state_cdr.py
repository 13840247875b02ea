"""core/joint_state_cdr.py: the numpy decoder of a JointState's CDR bytes reads what rclpy's own
deserialization reads, field by field and bit for bit, and refuses (False: the node then asks
rclpy) whatever it does not read exactly. The bytes come from rclpy's serializer, the reference
from its deserializer: no graph is needed, so a unit test (it imports rclpy's serialization)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dynlearn_ros.core.joint_state_cdr import JointStateCdr

IIWA = [f"iiwa_joint_{i}" for i in range(1, 8)]


def _msg(names, pos, vel, eff, frame_id="", sec=12, nanosec=345_000):
    from sensor_msgs.msg import JointState

    m = JointState()
    m.header.stamp.sec, m.header.stamp.nanosec = sec, nanosec
    m.header.frame_id = frame_id
    m.name = list(names)
    m.position, m.velocity, m.effort = (np.asarray(a, dtype=np.float64).tolist() for a in (pos, vel, eff))
    return m


def _same(dec: JointStateCdr, ref) -> None:
    """The decoder's fields equal rclpy's message's: names exactly, values bit for bit (NaN too)."""
    assert (dec.sec, dec.nanosec) == (ref.header.stamp.sec, ref.header.stamp.nanosec)
    assert dec.name == list(ref.name)
    for mine, theirs in ((dec.position, ref.position), (dec.velocity, ref.velocity), (dec.effort, ref.effort)):
        assert mine.dtype == np.float64
        assert mine.tobytes() == np.asarray(theirs, dtype=np.float64).tobytes()


def _cases():
    rng = np.random.default_rng(7)
    special = np.array([np.nan, np.inf, -np.inf, -0.0, 5e-324, 1e308, 0.0])
    yield _msg(IIWA, rng.normal(size=7), rng.normal(size=7), rng.normal(size=7))
    yield _msg(IIWA, special, special[::-1], special)                       # NaN / inf / -0 / denormal
    yield _msg(IIWA, rng.normal(size=6), rng.normal(size=7), [])            # short position, no effort
    yield _msg(IIWA, rng.normal(size=7), [], [])                             # no velocity
    yield _msg([], [], [], [])                                               # empty
    yield _msg(IIWA[::-1] + ["gripper_finger"], rng.normal(size=8), rng.normal(size=8), rng.normal(size=3))
    yield _msg(IIWA[:5] + ["x", "gelenk_ä"], rng.normal(size=7), rng.normal(size=7), rng.normal(size=7))  # unknown, UTF-8
    yield _msg(IIWA + IIWA[:1], rng.normal(size=8), rng.normal(size=8), rng.normal(size=8))  # a duplicate name
    yield _msg(["a", "bb", "ccc", "dddd"], rng.normal(size=9), rng.normal(size=1), rng.normal(size=2), sec=-3, nanosec=999_999_999)
    # every frame_id length mod 8 moves every later field's alignment
    for k in range(10):
        yield _msg(IIWA[: k % 8], rng.normal(size=k % 8), rng.normal(size=(k + 1) % 8), rng.normal(size=k % 3),
                   frame_id="f" * k)


def test_decoded_fields_equal_rclpy_deserialization():
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import JointState

    dec = JointStateCdr()
    n = 0
    for m in _cases():
        raw = serialize_message(m)
        assert dec.decode(raw), m
        _same(dec, deserialize_message(raw, JointState))
        n += 1
    assert dec.decoded == n


def test_repeated_names_keep_the_same_list_and_a_change_is_seen():
    from rclpy.serialization import serialize_message

    dec = JointStateCdr()
    assert dec.decode(serialize_message(_msg(IIWA, np.zeros(7), np.zeros(7), np.zeros(7))))
    first = dec.name
    for k in range(3):
        assert dec.decode(serialize_message(_msg(IIWA, np.full(7, k), np.zeros(7), [], frame_id="w" * k)))
        assert dec.name is first   # the mapper's name check is then an identity compare
    assert dec.names_parsed == 1
    # a name that changes in one character, same length: a new list
    changed = IIWA[:3] + ["iiwa_joint_X"] + IIWA[4:]
    assert dec.decode(serialize_message(_msg(changed, np.zeros(7), np.zeros(7), [])))
    assert dec.name == changed and dec.name is not first and first == IIWA
    assert dec.names_parsed == 2


def test_truncated_or_foreign_bytes_are_refused_or_read_as_rclpy_reads_them():
    """A prefix of a message, a flipped byte, another encapsulation: decode() is False, or
    rclpy reads the same bytes to the same fields (the decoder never accepts what rclpy refuses)."""
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import JointState

    raw = serialize_message(_msg(IIWA, np.arange(7.0), np.arange(7.0), np.arange(7.0), frame_id="base"))
    rng = np.random.default_rng(3)
    variants = [raw[:cut] for cut in range(len(raw))]
    variants += [b"\x00\x00" + raw[2:], b"\x00\x02" + raw[2:]]   # big-endian CDR, XCDR2: refused
    for i in rng.integers(4, len(raw), 300):
        b = bytearray(raw)
        b[i] = (b[i] + int(rng.integers(1, 256))) % 256
        variants.append(bytes(b))
    accepted = 0
    for v in variants:
        dec = JointStateCdr()
        if not dec.decode(v):
            continue
        accepted += 1
        try:
            ref = deserialize_message(v, JointState)
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"decoder accepted bytes rclpy refuses ({exc})")
        _same(dec, ref)
    assert not JointStateCdr().decode(variants[-302]) and not JointStateCdr().decode(variants[-301])
    assert accepted > 100   # the flipped values and padding bytes are still messages


@pytest.mark.parametrize("names,frame", list(itertools.product([IIWA, IIWA[:2]], ["", "odd", "frame_8b"])))
def test_mapper_gets_the_same_state_from_either_reading(names, frame):
    """JointStateMapper fed the decoder's views or rclpy's message: the same verdict and values."""
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import JointState

    from dynlearn_ros.core.safety import OK, JointStateMapper

    for pos in (np.linspace(-1, 1, len(names)), np.r_[np.nan, np.zeros(len(names) - 1)], np.zeros(len(names) - 1)):
        raw = serialize_message(_msg(names, pos, np.ones(len(names)), [], frame_id=frame))
        a, b = JointStateMapper(IIWA), JointStateMapper(IIWA)
        dec = JointStateCdr()
        assert dec.decode(raw)
        ref = deserialize_message(raw, JointState)
        ra, rb = a.update(dec.name, dec.position, dec.velocity), b.update(ref.name, ref.position, ref.velocity)
        assert ra == rb
        if ra == OK:
            assert a.q.tobytes() == b.q.tobytes() and a.qd.tobytes() == b.qd.tobytes()
