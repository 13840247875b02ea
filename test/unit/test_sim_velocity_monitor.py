"""VelocityMonitor (dynlearn_ros/sim/velocity_monitor.py): the bound and the one-step look-ahead."""

from __future__ import annotations

import numpy as np
import pytest

from dynlearn_ros.sim.velocity_monitor import VelocityMonitor


def test_trips_at_the_bound_and_one_step_ahead_at_the_present_acceleration():
    m = VelocityMonitor(np.array([1.0, 2.0]), 0.9)  # bounds 0.9, 1.8 rad/s
    assert not m.check(np.array([0.5, 0.0]))  # first check: |qd| alone (no acceleration known yet)
    assert not m.check(np.array([0.6, 0.0]))  # next step at this acceleration: 0.7 < 0.9
    assert m.check(np.array([0.8, 0.0]))  # 0.8 < 0.9, but 0.8 + 0.2 = 1.0 >= 0.9 next step
    assert m.last_joint == 0 and m.trips == 1
    assert m.check(np.array([0.0, -1.8]))  # at the bound itself, negative side
    assert m.last_joint == 1


def test_a_braked_joint_does_not_trip_by_its_deceleration():
    m = VelocityMonitor(np.array([3.0]), 0.9)
    assert not m.check(np.array([2.0]))
    # the brake stops the joint in one step: the extrapolation 2*0 - 2 = -2 is below 2.7
    assert not m.check(np.array([0.0]))
    assert not m.check(np.array([0.0]))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        VelocityMonitor(np.array([1.0, 0.0]), 0.9)
    with pytest.raises(ValueError):
        VelocityMonitor(np.array([1.0]), 0.0)
    with pytest.raises(ValueError):
        VelocityMonitor(np.array([1.0]), 1.5)
