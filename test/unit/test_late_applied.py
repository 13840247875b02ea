"""Lateness the stamps do not show (core/safety.py AppliedCommandMatch): a state's effort, the
command the plant ran, compared bitwise with the commands sent (docs/safety.md, "Realtime under
load", item 1)."""

from __future__ import annotations

import array

import numpy as np
import pytest

from dynlearn_ros.core.safety import AppliedCommandMatch

T = 1e-3


def _cmds(k: int, n: int = 7) -> list[np.ndarray]:
    rng = np.random.default_rng(k)
    return [rng.normal(0.0, 20.0, n) for _ in range(k)]


def test_the_newest_command_is_on_time_and_older_ones_are_holds():
    m = AppliedCommandMatch(depth=4)
    c = _cmds(4)
    assert m.held_delay(c[0], T) is None   # nothing sent yet: no information
    for tau in c:
        m.record(tau)
    assert m.held_delay(c[3], T) is None                  # the newest ran: on time
    assert m.held_delay(c[2], T) == pytest.approx(2 * T)  # one period late: the previous ran 2 T
    assert m.held_delay(c[0], T) == pytest.approx(4 * T)
    assert m.late == 2


def test_a_measured_effort_or_a_brake_torque_gives_no_information():
    m = AppliedCommandMatch()
    c = _cmds(3)
    for tau in c:
        m.record(tau)
    # a real driver's measured torque is never bit-equal to a command: the stamp rule stands
    assert m.held_delay(c[1] + 1e-12, T) is None
    assert m.held_delay(np.zeros(7), T) is None
    assert m.held_delay(array.array("d"), T) is None   # a driver that sends no effort
    assert m.late == 0


def test_the_message_array_and_numpy_compare_alike_and_resends_are_not_new_commands():
    m = AppliedCommandMatch(depth=2)
    a, b = _cmds(2)
    m.record(array.array("d", a.tolist()))   # what the node publishes (array.array('d'))
    m.record(b)
    m.record(b.copy())                       # re-sent (a repeated state): not a new command
    # the effort arrives as array.array('d'): the previous command, one period late
    assert m.held_delay(array.array("d", a.tolist()), T) == pytest.approx(2 * T)
    assert m.held_delay(array.array("d", b.tolist()), T) is None


def test_depth_is_bounded():
    with pytest.raises(ValueError):
        AppliedCommandMatch(depth=1)
    m = AppliedCommandMatch(depth=2)
    c = _cmds(3)
    for tau in c:
        m.record(tau)
    assert m.held_delay(c[0], T) is None   # fell out of the ring: no information, not a guess
