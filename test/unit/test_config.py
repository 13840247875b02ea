"""The computed_torque parameter spec: defaults, validation into a frozen config, refusals that
name the parameter; the controller built from it; a staged tuning applied between two ticks."""

import dataclasses

import numpy as np
import pytest

from dynlearn_ros.core.assembly import build_analytic, build_controller, build_tuning, builtin_reference
from dynlearn_ros.core.config import COMPUTED_TORQUE_SPEC, ConfigError, robot_context, spec_defaults, validate
from dynlearn_ros.core.schedule import default_gains

CTX = robot_context("iiwa")
N = CTX.n


def test_defaults_validate_and_follow_the_robot():
    cfg = validate({}, CTX)
    k_min, k_max, zeta = default_gains(CTX.inertia)
    np.testing.assert_array_equal(cfg.k_min, k_min)
    np.testing.assert_array_equal(cfg.k_max, k_max)
    np.testing.assert_array_equal(cfg.zeta, zeta)
    np.testing.assert_array_equal(cfg.torque_limits, CTX.spec.effort_limits)
    assert cfg.joint_names == CTX.spec.joint_names and cfg.waypoints.shape[1] == N
    assert cfg.stale_timeout_s == pytest.approx(0.05)
    # one value broadcasts to every joint
    assert validate({"sigma_f": [7.0]}, CTX).sigma_f.tolist() == [7.0] * N
    # the panda's defaults come from the panda
    panda = robot_context("panda")
    assert validate({"robot": "panda"}, panda).joint_names == panda.spec.joint_names


def test_config_is_frozen_and_its_arrays_read_only():
    cfg = validate({}, CTX)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.gain_mode = "fixed"
    with pytest.raises(ValueError):
        cfg.k_max[0] = 1.0


@pytest.mark.parametrize("values, names", [
    ({"k_min": [0.0], "k_max": [0.0]}, "'k_max'"),                      # issue 13 item 9: limp
    ({"gain_mode": "bogus"}, "parameter 'gain_mode' = 'bogus': must be one of"),
    ({"model_kind": "foo"}, "parameter 'model_kind' = 'foo': must be one of"),
    ({"k_max": [100.0, 200.0]}, "parameter 'k_max' = [100.0, 200.0]: expected 1 or 7 values"),
    ({"k_min": [500.0], "k_max": [100.0]}, "k_min must be <= k_max"),
    ({"sigma_n": [5.0], "sigma_f": [1.0]}, "sigma_f must be > sigma_n"),
    ({"torque_limits": [1000.0]}, "parameter 'torque_limits'"),           # above the URDF's limits
    ({"torque_limits": [0.0]}, "parameter 'torque_limits'"),
    ({"max_tracking_error": [-1.0]}, "parameter 'max_tracking_error'"),
    ({"k_max": ["a"]}, "parameter 'k_max'"),
    ({"status_decimation": 1.5}, "parameter 'status_decimation'"),
    ({"joint_names": ["a", "a", "b", "c", "d", "e", "f"]}, "parameter 'joint_names'"),
    ({"waypoints": [0.1] * 8}, "parameter 'waypoints'"),
    ({"model_kind": "svdkl"}, "parameter 'model_dir'"),
    ({"nonsense": 1}, "unknown parameters ['nonsense']"),
])
def test_bad_values_are_refused_naming_the_parameter(values, names):
    with pytest.raises(ConfigError, match=None) as exc:
        validate(values, CTX)
    assert names in str(exc.value), str(exc.value)


def test_every_parameter_is_dynamic_or_says_why_not():
    for s in COMPUTED_TORQUE_SPEC:
        assert s.dynamic or s.reason, s.name
        assert ("settable at run time" in s.constraints()) == s.dynamic
    fixed = {s.name for s in COMPUTED_TORQUE_SPEC if not s.dynamic}
    assert {"robot", "joint_names", "urdf_path", "control_period_s", "state_qos", "time_source"} <= fixed
    assert {"k_min", "k_max", "zeta", "sigma_n", "sigma_f", "schedule_c", "gain_mode", "torque_limits",
            "max_tracking_error", "stale_timeout_ms", "status_decimation", "sigma_release_s",
            "model_kind", "model_dir"}.isdisjoint(fixed)
    assert set(spec_defaults(COMPUTED_TORQUE_SPEC, CTX)) == {s.name for s in COMPUTED_TORQUE_SPEC}


def test_staged_tuning_applies_between_two_ticks_only():
    cfg = validate({"gain_mode": "fixed", "reference": "hold"}, CTX)
    analytic = build_analytic(cfg)
    ctl = build_controller(cfg, analytic, analytic, builtin_reference(cfg, CTX.spec.home))
    q, qd = CTX.spec.home.copy(), np.zeros(N)
    ctl.step(q, qd, 0.0, 0.0)
    np.testing.assert_allclose(ctl.kp, cfg.k_max)
    new = validate({**cfg.params, "k_min": [10.0], "k_max": [50.0]}, CTX)
    ctl.stage_tuning(build_tuning(new, analytic))
    np.testing.assert_allclose(ctl.kp, cfg.k_max)     # nothing changes until the next tick
    ctl.step(q, qd, 0.001, 0.0)
    np.testing.assert_allclose(ctl.kp, 50.0)          # fixed mode: K_P = k_max
    assert ctl.schedule is ctl.tuning.schedule


def test_status_row_round_trip():
    from dynlearn_ros.core.status import STATUS_FIELDS, STATUS_TAIL, fill_status, split_status, status_width

    cfg = validate({"reference": "sine"}, CTX)
    analytic = build_analytic(cfg)
    ctl = build_controller(cfg, analytic, analytic, builtin_reference(cfg, CTX.spec.home))
    for k in range(3):
        ctl.step(CTX.spec.home + 0.01 * k, np.full(N, 0.1), k * 1e-3, 0.0)
    row = np.zeros(status_width(N))
    fill_status(ctl, 12.5, 3, 7, row)
    st = split_status(row[None, :], N)
    assert set(STATUS_FIELDS) | set(STATUS_TAIL) <= set(st)
    for name, arr in zip(STATUS_FIELDS, (ctl.query.q_des, ctl.query.q, ctl.err, ctl.kp, ctl.kd, ctl.std,
                                         ctl.tau_ff, ctl.tau), strict=True):
        np.testing.assert_array_equal(st[name][0], arr)
    assert (st["mode"][0], st["tick_us"][0], st["t_ref"][0], st["model_version"][0], st["model_swaps"][0]) == (
        float(ctl.mode), 12.5, ctl.t_ref, 3.0, 7.0)
