"""The realized-error estimator (core/residual.py) on synthetic data with a known answer.

The synthetic plant is exactly tau = tau_ff + M(q) (a - qdd_des) + r_true with M from the same
URDF, so the estimator's innovation must equal r_true to float precision. The accelerations
jump every step (std 5 rad/s^2), so pairing the torque with the wrong step's acceleration (a
one-step shift) leaves |M (a_t - a_{t-1})| ~ several N*m, and a wrong sign of the M term leaves
2 M a: either fails the "zero before the step" check by orders of magnitude.
"""

from __future__ import annotations

import numpy as np
import pytest

from dynlearn_ros.core.analytic import RigidBodyModel
from dynlearn_ros.core.residual import DEFAULT_FILTER_S, DEFAULT_WINDOW_S, ResidualSigma
from dynlearn_ros.core.robots import robot_spec

DT = 1e-3


def _synthetic(r_true: np.ndarray, step_at: int, steps: int, seed: int = 0, step_off: int = 10**9):
    spec = robot_spec("iiwa")
    rbd = RigidBodyModel(spec.urdf_path, spec.joint_names)
    rng = np.random.default_rng(seed)
    n = spec.n
    q, qd = spec.home.astype(float).copy(), np.zeros(n)
    rows = []
    for k in range(steps):
        a = rng.normal(0.0, 5.0, n)
        qdd_des = rng.normal(0.0, 5.0, n)
        tau_ff = rng.normal(0.0, 20.0, n)
        tau = tau_ff + rbd.mass_matrix(q) @ (a - qdd_des) + (r_true if step_at <= k < step_off else 0.0)
        rows.append((q.copy(), qd.copy(), k * DT, tau, tau_ff, qdd_des))
        qd = qd + DT * a
        q = q + DT * qd
    return spec, rows


def _run(spec, rows, **kw):
    est = ResidualSigma(spec.urdf_path, spec.joint_names, DT, **kw)
    rms, mean = [], []
    for q, qd, t, tau, tau_ff, qdd_des in rows:
        est.observe(qd, t)
        est.record(q, qd, t, tau, tau_ff, qdd_des)
        rms.append(np.sqrt(est.mean_square))
        mean.append(est.mean.copy())
    return est, np.array(rms), np.array(mean)


def test_step_in_true_residual_is_seen_with_sign_and_in_the_derived_time():
    r_true = np.array([3.0, -8.0, 2.0, -4.0, 1.0, 0.5, 0.02])   # N*m, both signs
    step_at, steps = 200, 600
    spec, rows = _synthetic(r_true, step_at, steps)
    est, rms, mean = _run(spec, rows)
    # record at tick k is observed at tick k + 1: the step at row 200 enters at index 201
    # before the step: the plant is the model -> zero to float precision (1e-9 N*m: the
    # finite-difference of qd recovers a to ~1e-13 rad/s^2 relative, times M ~ 3)
    assert np.abs(rms[5:step_at + 1]).max() < 1e-9
    # long after (400 ms = 80 filter_s, 4 window_s): the filtered mean is r_true with its sign
    np.testing.assert_allclose(mean[-1], r_true, rtol=1e-6)
    # and the RMS -> |r_true| with the window's memory: 1 - exp(-0.4 / 0.1) = 0.982 of the square
    # at 400 ms after the step (plus the filter's start-up); within 2 % on the RMS
    np.testing.assert_allclose(rms[-1], np.abs(r_true), rtol=0.02)
    # rise time: sigma reaches R/2 (an error 2 sigma_f: the case the time constants were derived
    # for) after T ln(4/3) = 28.8 ms plus the squared first-order filter's lag ~1.5 filter_s =
    # 7.5 ms: 36 ms. Checked at 40 ms (4 ms margin for the small-t approximations), and not
    # already at 10 ms (there v <= R^2 (1 - exp(-0.1)) -> RMS <= 0.31 R < R/2: a window of 0.1 s,
    # not an instantaneous jump)
    k40 = step_at + 1 + int(round(0.040 / DT))
    k10 = step_at + 1 + int(round(0.010 / DT))
    assert np.all(rms[k40] >= 0.5 * np.abs(r_true))
    assert np.all(rms[k10] < 0.5 * np.abs(r_true))
    assert DEFAULT_FILTER_S == 0.005 and DEFAULT_WINDOW_S == 0.1  # the values the margins assume


def test_fall_after_the_model_fits_again():
    # the error disappears (a new model fits): sigma falls with window_s / 2 = 50 ms (square root
    # of an exponential with 0.1 s): after 0.3 s, RMS <= R exp(-0.3 / 0.2) = 0.22 R (+ filter lag)
    r_true = np.full(7, 6.0)
    spec, rows = _synthetic(r_true, 0, 700, step_off=400)
    est, rms, _ = _run(spec, rows)
    assert rms[399].min() > 0.9 * 6.0
    assert rms[-1].max() < 0.25 * 6.0


def test_combine_takes_the_larger_and_breaks_are_skipped():
    spec, rows = _synthetic(np.full(7, 2.0), 0, 300)
    est, rms, _ = _run(spec, rows)
    out = np.zeros(7)
    est.combine(np.full(7, 0.5), out)
    np.testing.assert_allclose(out, rms[-1])              # realized error above the model's std
    est.combine(np.full(7, 50.0), out)
    np.testing.assert_allclose(out, 50.0)                 # a larger model std stays the floor
    before = est.mean_square.copy()
    est.invalidate()                                      # a hold tick: its torque is not the law's
    assert not est.observe(rows[0][1], 10.0)
    est.record(*rows[0])
    assert not est.observe(rows[0][1] + np.nan, 10.0)     # non-finite velocity: skipped
    est.record(*rows[0])
    assert not est.observe(rows[0][1], rows[0][2])        # no time step: skipped
    np.testing.assert_array_equal(est.mean_square, before)
    with pytest.raises(ValueError):
        ResidualSigma(spec.urdf_path, spec.joint_names, DT, window_s=0.0)


def test_snapshot_returns_the_newest_recorded_steps_in_order():
    r_true = np.array([3.0, -8.0, 2.0, -4.0, 1.0, 0.5, 0.02])
    spec, rows = _synthetic(r_true, 0, 40)
    est, _, _ = _run(spec, rows, samples=16)
    assert est.sample_total == 39                     # every row after the first is observed
    snap = est.snapshot(10)
    # the newest 10 observed steps: records of rows 29..38 (row 39 is recorded, not yet observed)
    np.testing.assert_allclose(snap["t"], [rows[k][2] for k in range(29, 39)])
    np.testing.assert_allclose(snap["q"][-1], rows[38][0])
    np.testing.assert_allclose(snap["tau"][-1], rows[38][3])
    np.testing.assert_allclose(snap["r"], np.broadcast_to(r_true, (10, 7)), atol=1e-9)   # the innovation
    assert len(est.snapshot(100)["t"]) == 15          # capacity 16, one position kept free for a writer


class _RneaModel:
    """A real inverse model of a plant: the URDF + a payload (sim/plant.py payload_model) + viscous
    friction; std 0 (an InverseModel in all but the base class, as the slot's check calls it)."""

    def __init__(self, payload_kg: float, friction: np.ndarray) -> None:
        from dynlearn_ros.sim.plant import payload_model

        self.rbd, self.friction = payload_model("iiwa", payload_kg), friction
        self.n = self.rbd.n
        self.calls = 0

    def predict(self, query, mean, std) -> bool:
        self.calls += 1
        self.rbd.rnea(query.q, query.qd, query.qdd_des, mean)
        mean += self.friction * query.qd
        std[:] = 0.0
        return True

    def commit(self, tau) -> None:
        pass

    def reset(self) -> None:
        pass


def test_plant_check_refuses_a_model_of_another_plant_and_passes_one_of_this():
    from dynlearn_ros.runtime.slot import PLANT_FIT_FACTOR, PlantFitRefused, check_plant_fit
    from dynlearn_ros.sim.plant import payload_model

    # recent steps of a plant with a 5 kg payload and viscous friction, smooth motion
    fric = np.array([0.3, 0.3, 0.3, 0.3, 0.05, 0.05, 0.02])
    plant = payload_model("iiwa", 5.0)
    m = 300
    t = np.arange(m) * DT
    spec = robot_spec("iiwa")
    q = spec.home + 0.3 * np.sin(2.0 * t[:, None] + np.arange(7))
    qd = 0.6 * np.cos(2.0 * t[:, None] + np.arange(7))
    a = -1.2 * np.sin(2.0 * t[:, None] + np.arange(7))
    tau = np.array([plant.rnea(q[i], qd[i], a[i], np.zeros(7)) for i in range(m)]) + fric * qd
    sigma_n = np.array([0.28, 0.58, 0.27, 0.35, 0.064, 0.059, 0.00026])   # the shipped SVDKL's
    # the running model: this plant but for its friction (its realized error: the friction torque)
    samples = {"t": t, "q": q, "qd": qd, "a": a, "tau": tau, "r": fric * qd}
    # the motion as the reference (no recorded reference here; a == qdd_des, so ma = 0)
    exact = check_plant_fit(_RneaModel(5.0, fric), samples, sigma_n, DT, replay="measured")
    assert exact["score"].max() < 1e-9 and exact["rows"] == m     # the plant itself: no error
    # a candidate of the same plant without friction: exactly the running model's error
    same = check_plant_fit(_RneaModel(5.0, 0 * fric), samples, sigma_n, DT, replay="measured")
    np.testing.assert_allclose(same["score"], same["running"], rtol=1e-9)
    # a model of the plant with 15 kg: the 10 kg difference, ~10 * 9 N*m on joint 2 against a
    # running error of 0.18 N*m (friction) or sigma_n 0.58: ~100x, far beyond the factor
    wrong = _RneaModel(15.0, fric)
    with pytest.raises(PlantFitRefused, match="does not fit the running plant") as info:
        check_plant_fit(wrong, samples, sigma_n, DT, replay="measured")
    assert "against the running model's" in str(info.value)
    ratio = float(str(info.value).split("): ")[1].split("x")[0])
    assert ratio > 10 * PLANT_FIT_FACTOR, info.value                 # by a wide margin
    # too few steps: skipped, said so
    few = {k: v[:50] for k, v in samples.items()}
    assert "skipped" in check_plant_fit(wrong, few, sigma_n, DT, replay="measured")
    with pytest.raises(ValueError, match="recorded reference"):   # the swap's replay needs the reference
        check_plant_fit(wrong, samples, sigma_n, DT)


@pytest.mark.sim
def test_plant_check_scores_a_copy_of_the_running_model_as_the_running_model(tmp_path):
    """The swap's check replays a candidate on the tick's own queries (replay="reference"): a
    copy of the running SVDKL must score exactly its realized error r on every window (same ONNX
    graph, same float32 inputs: the same prediction; the innovation's arithmetic is repeated, so
    1e-9 relative). Found because the measured replay (the model at measured accelerations, which
    the feedback makes off the model's training inputs) scored such a copy 2.5x its own r on some
    0.3 s windows of this very run (iiwa with 5 kg, the model's plant, on the sine) and the check
    refused it. A model of the plant with 15 kg is refused on the same windows (~90 N*m on joint 2
    against the running ~1-5 N*m)."""
    from dynlearn_ros.core.assembly import build_analytic, build_controller, builtin_reference
    from dynlearn_ros.core.config import robot_context, validate
    from dynlearn_ros.paths import models_dir
    from dynlearn_ros.runtime.registry import load_inverse_model
    from dynlearn_ros.runtime.slot import PLANT_FIT_ROWS, PlantFitRefused, check_plant_fit
    from dynlearn_ros.sim.plant import SimPlant

    spec = robot_spec("iiwa")
    config = validate({"robot": "iiwa", "model_kind": "svdkl", "model_dir": "svdkl_iiwa_sim", "reference": "sine",
                       "residual_window_s": 0.1}, robot_context("iiwa"))
    md = models_dir() / "svdkl_iiwa_sim"
    analytic = build_analytic(config)
    ctl = build_controller(config, load_inverse_model("svdkl", md, spec.joint_names), analytic,
                           builtin_reference(config, spec.home))
    copy = load_inverse_model("svdkl", md, spec.joint_names)
    plant = SimPlant("iiwa", dt=DT, payload_kg=5.0)
    q, qd = np.zeros(spec.n), np.zeros(spec.n)
    ratios_measured = []
    try:
        plant.reset(spec.home, np.zeros(spec.n))
        for k in range(1401):
            plant.state_into(q, qd)
            ctl.step(q, qd, k * DT, 0.0)
            plant.step(ctl.tau)
            if k >= 400 and k % 200 == 0:
                snap = ctl.residual.snapshot(PLANT_FIT_ROWS)
                out = check_plant_fit(copy, snap, ctl.schedule.sigma_n, DT)
                np.testing.assert_allclose(out["score"], out["running"], rtol=1e-9, atol=1e-12)
                ratios_measured.append(check_plant_fit(copy, snap, ctl.schedule.sigma_n, DT, factor=np.inf,
                                                       replay="measured")["ratio"])
                with pytest.raises(PlantFitRefused):
                    check_plant_fit(_RneaModel(15.0, np.zeros(spec.n)), snap, ctl.schedule.sigma_n, DT)
    finally:
        plant.close()
    assert ctl.counters.model_fallback == 0
    # the measured replay differs from r (why it is not the swap's check): by > 5 % on some window
    assert max(abs(r - 1.0) for r in ratios_measured) > 0.05, ratios_measured


def test_the_record_keeps_the_next_reference_also_on_analytic_ticks():
    """A controller running the analytic model (at start, or in a fallback) skips sampling the
    reference at t + dt, which that model does not read - but the realized-error record keeps
    q_des_next for the plant check of a learned candidate, which does read it (the ac-RKN). With
    the record on, every step's q_des_next must be the reference at t + dt, i.e. the next
    step's q_des (the sine moves ~1e-3 rad per step, so a stale or zero q_des_next is far off)."""
    from dynlearn_ros.core.assembly import build_analytic, build_controller, builtin_reference
    from dynlearn_ros.core.config import robot_context, validate

    spec = robot_spec("iiwa")
    config = validate({"robot": "iiwa", "model_kind": "analytic", "reference": "sine", "residual_window_s": 0.1},
                      robot_context("iiwa"))
    analytic = build_analytic(config)
    ctl = build_controller(config, analytic, analytic, builtin_reference(config, spec.home))
    assert ctl.residual is not None and ctl.model is ctl.analytic
    q, qd = spec.home.astype(float).copy(), np.zeros(spec.n)
    for k in range(60):
        ctl.step(q, qd, k * DT, 0.0)
    snap = ctl.residual.snapshot(50)
    assert snap is not None and len(snap["t"]) >= 40
    step = np.abs(np.diff(snap["q_des"], axis=0)).max()
    assert step > 1e-6, step   # the reference moves between steps: the check below can fail
    np.testing.assert_allclose(snap["q_des_next"][:-1], snap["q_des"][1:], rtol=0, atol=1e-12)
