"""The realtime loop's sensitivity to late commands (docs/safety.md, "Realtime under load"):
the replay of dynlearn_ros/faults/late_commands.py, PyBullet plant + the controller's law with
its default gains, each command late (applied one period later) with a given probability.

The bound used is the controller's own plausibility gate: a joint faster than twice its
velocity limit gets its states rejected in the real graph (then no command, the bridge brakes),
so crossing it is what turns late commands into the run-away seen under load."""

from __future__ import annotations

import numpy as np
import pytest

from dynlearn_ros.faults.late_commands import coupled_rates, default_config, replay

pytestmark = pytest.mark.sim


def test_coupled_rates_are_far_above_the_per_joint_design():
    c = default_config()
    r = coupled_rates(c)
    np.testing.assert_allclose(r["omega_diag"], 40.0, rtol=1e-9)   # K = I omega^2, omega = 40 rad/s per joint
    # but M is coupled: the fastest damping mode times the 1 ms period is close to 1 (the limit of a
    # one-period delay), far above the 0.08 each joint alone would give
    assert r["damping"][0] * c.control_period_s > 0.5
    assert r["omega"][0] > 2 * 40.0


def test_without_the_guard_on_time_commands_stay_calm_and_half_late_ones_chatter():
    on_time = replay(0.0, seconds=3.0, guard=False)
    assert on_time["first_over_2x_s"] is None and on_time["max_abs_err_rad"] < 1e-3
    late = replay(0.5, seconds=3.0, guard=False)
    assert late["late_ticks"] > 1000
    assert late["first_over_2x_s"] is not None   # states the controller would reject as implausible


def test_the_chatter_guard_keeps_late_commands_calm_and_stays_off_on_time():
    on_time = replay(0.0, seconds=3.0)
    assert on_time["chatter_ticks"] == 0   # on time the law is untouched (lockstep figures unchanged)
    for fraction in (0.5, 1.0):
        r = replay(fraction, seconds=5.0)
        # below the velocity limit itself, half the plausibility bound: calm, not just accepted
        assert r["first_over_2x_s"] is None and r["max_qd_over_limit"] < 1.0, (fraction, r)
        assert r["chatter_ticks"] > 0


def test_a_third_of_the_damping_keeps_half_late_commands_calm():
    c = default_config()
    calm = replay(0.5, seconds=3.0, guard=False, zeta=(c.zeta / 3.0).tolist())
    assert calm["first_over_2x_s"] is None and calm["max_abs_err_rad"] < 1e-3
