"""The realtime loop's sensitivity to late commands (docs/safety.md, "Realtime under load"):
the replay of dynlearn_ros/faults/late_commands.py, PyBullet plant + the controller's law with
its default gains, each command late (applied one period later) with a given probability.

The bound used is the controller's own plausibility gate: a joint faster than twice its
velocity limit gets its states rejected in the real graph (then no command, the bridge brakes),
so crossing it is what turns late commands into the run-away seen under load."""

from __future__ import annotations

import numpy as np
import pytest

from dynlearn_ros.faults.late_commands import coupled_rates, default_config, replay, replay_starved

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
    assert late["late_commands"] > 1000
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


# -- the starved loop of the CPU-hog fault row (replay_starved) ---------------------------------
# Bounds: |qd| below the velocity limit itself (the fault row's "no run-away" check, half the
# gate's plausibility bound) and the tracking error below half the following-error limit
# (0.5 rad), so a run is calm with margin, not just short of a fault. Without the late law the
# same gaps drive a joint far past twice its velocity limit (measured 36-41 x v_max over 3 s).
@pytest.mark.parametrize("median_gap", [3, 10])
def test_starved_loop_runs_away_without_the_late_law(median_gap):
    r = replay_starved(median_gap, seconds=3.0, late_law=False)
    assert r["max_qd_over_limit"] > 2.0, r


@pytest.mark.parametrize("median_gap,lag,seed", [(2, 1, 0), (3, 2, 1), (10, 2, 2), (25, 4, 3)])
def test_the_late_law_keeps_a_starved_loop_calm(median_gap, lag, seed):
    r = replay_starved(median_gap, seconds=4.0, lag=lag, seed=seed)
    assert r["late_ticks"] > 0.5 * r["ticks"]
    assert r["max_qd_over_limit"] < 1.0 and r["tracking_faults"] == 0 and r["max_abs_err_rad"] < 0.25, r
    # the reference paused for exactly the braked time: the brakes end every gap past the watchdog
    assert r["reference_paused_s"] == pytest.approx(r["brake_steps"] * 1e-3, abs=0.05), r


def test_the_late_law_is_the_designed_law_when_every_state_is_on_time():
    # on time the late path changes nothing: bitwise the same run as without it
    on = replay_starved(1, seconds=1.0, on_time=1.0)
    off = replay_starved(1, seconds=1.0, on_time=1.0, late_law=False)
    assert on["late_ticks"] == 0 and on == {**off, "late_ticks": 0}


def test_the_late_feedback_goes_through_the_mass_matrix():
    from dynlearn_ros.core.assembly import build_analytic, build_controller, builtin_reference
    from dynlearn_ros.core.config import robot_context

    c = default_config(reference="hold", gain_mode="fixed")
    ctx = robot_context("iiwa", "")
    analytic = build_analytic(c)
    q0 = ctx.spec.home.copy()
    rng = np.random.default_rng(0)
    q = q0 + rng.normal(0.0, 0.02, q0.size)
    qd = rng.normal(0.0, 0.1, q0.size)
    taus = {}
    for omega in (np.inf, 30.0):
        ctl = build_controller(c, analytic, analytic, builtin_reference(c, q0))
        ctl.enable_late_law(ctx.inertia)
        ctl.step(q0, np.zeros(q0.size), 0.0, 0.0)   # first state: the reference holds q0
        ctl.set_late_bandwidth(omega)
        ctl.step(q, qd, 1e-3, 1e-3)
        taus[omega] = (ctl.tau.copy(), ctl.tau_ff.copy(), ctl.kp.copy(), ctl.kd.copy())
    tau, ff, kp, kd = taus[np.inf]
    np.testing.assert_allclose(tau, ff + kp * (q0 - q) - kd * qd, rtol=1e-12, atol=1e-9)
    tau_l, ff_l, kp_l, kd_l = taus[30.0]
    i = ctx.inertia
    a = np.minimum(kp / i, 30.0**2)
    b = np.minimum(kd / i, 60.0)
    np.testing.assert_allclose(kp_l, i * a, rtol=1e-12)
    np.testing.assert_allclose(kd_l, i * b, rtol=1e-12)
    m = analytic.rbd.mass_matrix(q)
    np.testing.assert_allclose(tau_l, ff_l + m @ (a * (q0 - q) - b * qd), rtol=1e-9, atol=1e-9)


def test_an_unknown_payload_under_starvation_stays_inside_the_following_error_limit():
    # 3 kg the analytic model does not know, 7 % of the states: the late law is softer than the
    # designed one, so the payload's sag grows (0.25-0.36 rad here), but no fault trips (0.5 rad)
    r = replay_starved(10, seconds=4.0, lag=2, seed=1, payload_kg=3.0)
    assert r["tracking_faults"] == 0 and r["max_abs_err_rad"] < 0.5, r


def test_the_chatter_guard_does_not_stack_on_the_late_law():
    from dynlearn_ros.core.assembly import build_analytic, build_controller, builtin_reference
    from dynlearn_ros.core.config import robot_context

    c = default_config(reference="hold")
    ctx = robot_context("iiwa", "")
    analytic = build_analytic(c)
    q0 = ctx.spec.home.copy()
    for omega, expect_guard in ((np.inf, True), (30.0, False)):
        ctl = build_controller(c, analytic, analytic, builtin_reference(c, q0))
        ctl.set_chatter_guard(ctx.spec.velocity_limits)
        ctl.enable_late_law(ctx.inertia)
        for k in range(60):   # velocities alternating tick to tick at 0.2 v_max: chatter
            ctl.set_late_bandwidth(omega)
            ctl.step(q0, 0.2 * ctx.spec.velocity_limits * (-1.0) ** k, k * 1e-3, k * 1e-3)
        assert ctl.chatter > 0.1   # measured either way
        assert (ctl.counters.chatter_ticks > 0) is expect_guard and (ctl.damping_scale < 1.0) is expect_guard


# -- lateness the stamps do not show (every state seen; commands a period late) ----------------
def test_effort_matching_engages_the_late_law_behind_on_time_stamps():
    # without the guard and without detection every-command-late chatters past twice the
    # velocity limit (measured 2.2 s in); the effort shows each late command, the late law
    # engages and the run stays below the velocity limit itself (the fault row's bound)
    blind = replay(1.0, seconds=3.0, guard=False)
    assert blind["first_over_2x_s"] is not None and blind["detected_late"] == 0
    seen = replay(1.0, seconds=3.0, guard=False, detect=True)
    # the first late command has no older one to match against: all but it are seen
    assert seen["detected_late"] == seen["late_commands"] - 1
    assert seen["late_ticks"] >= seen["detected_late"]
    assert seen["max_qd_over_limit"] < 1.0 and seen["tracking_faults"] == 0
    half = replay(0.5, seconds=3.0, guard=False, detect=True)
    assert half["detected_late"] > 1000 and half["max_qd_over_limit"] < 1.0


def test_effort_matching_changes_nothing_when_every_command_is_on_time():
    # lockstep and a quiet machine: the effort is always the newest command, bit for bit the same run
    assert replay(0.0, seconds=1.0, detect=True) == replay(0.0, seconds=1.0)
