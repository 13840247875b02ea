"""Learning while it controls, lockstep in one process (scenarios/online_inproc.py): the scenario's
plant (friction, pick-and-place) starts with the 5 kg payload the shipped SVDKL model was trained
with and steps to 12 kg after 3 s.

Directions asserted, with the reasoning for each margin:

* sigma sees the payload: +7 kg at the link-7 centre of mass, ~0.5 m from joint 2's axis, adds
  ~7 * 9.81 * 0.5 = 34 N*m of gravity torque there, against a model std of ~0.3-0.6 N*m
  (sigma_n of joint 2: 0.58). With window_s = 0.1 s, 50 ms after the step the RMS estimate is
  >= sqrt(1 - exp(-0.045 / 0.1)) = 0.6 of the step (core/residual.py; 5 ms of filter lag taken
  off): ~20 N*m, so sigma must be > 5x its value before the step (a conservative factor of ~30x
  below the derivation); without the realized error (the fixed model) the std barely moves:
  < 2x (the novelty term only sees input-space distance, and a payload barely moves the inputs).
* the gains follow: mean K_P of joint 2 over 20-100 ms after the step exceeds that of the 0.5 s
  before it (sigma >> sigma_f = 1.47 N*m there puts K_P at the top).
* learning helps: over the last 1.5 s of the 12 kg phase the online controller's joint RMSE is
  below half the fixed learned model's (the quick run measured 22 vs 86 mrad over 4 s phases; a
  factor 2 leaves room for the shorter phase), and at least one version was accepted.
* the issue's goal in this phase, after adaptation: tracking no worse than fixed high gains +
  analytic model (whose feed-forward misses the 7 kg: ~92 mrad in the 16 s report) while
  cutting mean K_P by >= 40 %. The payload's torque is one learned mass (learning/online.py),
  identified within ~1 s of the step; the report measured 2.9 mrad at a 79 % cut over the
  second half of a 16 s phase without the gain floor, 0.19 mrad at a 49 % cut (against 39 mrad
  for fixed, whose wrist the floor stiffens too) with it (``run_online``'s default
  payload_margin_kg 15, as below). Both bounds are the goal itself, not the measured values: a
  learner that did not identify the payload (the previous random-feature correction: 34 mrad
  at a 14 % cut) fails the cut.
"""

from __future__ import annotations

import numpy as np
import pytest

from dynlearn_ros.core.control import Mode
from dynlearn_ros.scenarios.online_inproc import run_online
from dynlearn_ros.scenarios.vgain_config import load_config

pytestmark = [pytest.mark.sim, pytest.mark.slow]

PHASES = [(5.0, 3.0), (12.0, 5.0)]
STEP_T = 3.0


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    cfg = load_config()
    return {k: run_online(cfg, k, PHASES, cycle_s=0.5, seed=0, workdir=tmp_path_factory.mktemp(k))
            for k in ("fixed", "learned", "online")}


def _window(s, lo, hi):
    return (s["t"] >= lo) & (s["t"] < hi)


def test_sigma_and_gains_rise_at_the_payload_step(runs):
    s = runs["online"]["series"]
    before = s["sigma"][_window(s, STEP_T - 0.5, STEP_T), 1].mean()
    after = s["sigma"][_window(s, STEP_T + 0.045, STEP_T + 0.055), 1].mean()
    assert after > 5 * before, (before, after)
    kp_before = s["kp"][_window(s, STEP_T - 0.5, STEP_T), 1].mean()
    kp_after = s["kp"][_window(s, STEP_T + 0.02, STEP_T + 0.1), 1].mean()
    assert kp_after > kp_before, (kp_before, kp_after)
    f = runs["learned"]["series"]
    f_before = f["sigma"][_window(f, STEP_T - 0.5, STEP_T), 1].mean()
    f_after = f["sigma"][_window(f, STEP_T + 0.045, STEP_T + 0.055), 1].mean()
    assert f_after < 2 * f_before, (f_before, f_after)


def test_online_learning_tracks_better_than_the_fixed_model_after_adaptation(runs):
    rmse = {}
    for k, r in ((k, runs[k]) for k in ("learned", "online")):
        assert not r["diverged"]
        s = r["series"]
        m = _window(s, 8.0 - 1.5, 8.0)
        rmse[k] = float(np.sqrt(np.mean(s["err"][m] ** 2)))
    assert rmse["online"] < 0.5 * rmse["learned"], rmse
    learner = runs["online"]["learner"]
    assert learner["accepted"] >= 1 and runs["online"]["series"]["version"].max() > 1


def test_after_adaptation_no_worse_than_fixed_high_gains_with_40_percent_less_kp(runs):
    out = {}
    for k in ("fixed", "online"):
        s = runs[k]["series"]
        m = _window(s, 8.0 - 1.5, 8.0)
        out[k] = (float(np.sqrt(np.mean(s["err"][m] ** 2))), s["kp"][m].mean(0))
        assert not np.any(s["mode"][m] == int(Mode.FAULT)), k      # no following-error hold in the window
    cut = 1.0 - float(np.mean(out["online"][1] / out["fixed"][1]))
    assert out["online"][0] <= out["fixed"][0], out
    assert cut >= 0.40, cut


# -- a payload that leaves: the gain floor (core/gain_floor.py) ---------------------------------
#: adapted at 12 kg (the learner's dm settles at +7 kg within ~1 s), then the payload drops to 0
DROP = [(5.0, 2.0), (12.0, 5.0), (0.0, 2.0)]
DROP_T = 7.0


@pytest.fixture(scope="module")
def drops(tmp_path_factory):
    cfg = load_config()
    return {margin: run_online(cfg, "online", DROP, cycle_s=0.5, seed=0, payload_margin_kg=margin,
                               workdir=tmp_path_factory.mktemp(f"drop{margin:g}"))
            for margin in (0.0, 15.0)}


def test_a_12_kg_drop_is_held_within_half_the_limit_with_the_floor(drops):
    """With payload_margin_kg = 15 every joint's K_P >= 15 kg * G_j / 0.25 rad, so the linear,
    critically damped bound of the step's error is 12 / 15 * 0.25 = 0.2 rad on the worst joint;
    the limit the floor is designed for, half the 0.5 rad following-error limit, is asserted
    (the linear bound leaves out the coupling through M and the payload's acceleration term).
    The controller never enters FAULT, and after the learner has re-identified the payload
    (the last second) the tracking is back under the fixed-high-gain level of the 0 kg phase
    plus the learned model's noise floor: 5 mrad (the report: 0.3 mrad)."""
    r = drops[15.0]
    s = r["series"]
    assert not r["diverged"]
    assert not np.any(s["mode"] == int(Mode.FAULT))
    after = _window(s, DROP_T, DROP_T + 1.0)
    assert np.abs(s["err"][after]).max() < 0.25, np.abs(s["err"][after]).max(0)
    late = _window(s, DROP_T + 1.0, DROP_T + 2.0)
    assert float(np.sqrt(np.mean(s["err"][late] ** 2))) < 5e-3


def test_without_the_floor_the_wrist_trips_the_limit(drops):
    """The failure the floor removes: without it the adapted controller meets the drop with the
    wrist at K_min (0.88 N*m/rad on joint 6) and K_max 14 N*m/rad cannot hold the 12 kg * ~0.6
    N*m/kg = 7 N*m error within 0.5 rad (static alone 0.52 rad): FAULT within 0.2 s, on joint 6."""
    s = drops[0.0]["series"]
    fault = s["mode"] == int(Mode.FAULT)
    assert fault.any()
    first = int(np.argmax(fault))
    assert DROP_T <= s["t"][first] < DROP_T + 0.2, s["t"][first]
    assert int(np.argmax(np.abs(s["err"][first - 1]))) == 5
