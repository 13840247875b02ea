"""The online report's windows and goal (scenarios/online_inproc.py): T_a from the mechanism and the
goal judged on the adapted window only. Synthetic logged series (no simulation): the numbers are
chosen so that each window gives a different verdict, so a table that used the wrong window fails."""

from __future__ import annotations

import numpy as np
import pytest

from dynlearn_ros.core.control import Mode
from dynlearn_ros.scenarios.online_inproc import GOAL_KP_CUT, adaptation_time, goal_rows, phase_table


def test_adaptation_time_is_one_reference_period_plus_the_gate_window_and_a_cycle():
    # 10 s pick-and-place loop, 200 held-out samples at 1 kHz (0.2 s), a cycle every 0.5 s
    assert adaptation_time(10.0, 200, 1e-3, 0.5) == pytest.approx(10.7)
    assert adaptation_time(8.0, 100, 1e-3, 0.25) == pytest.approx(8.35)


def _run(phases, err, kp, mode=None, swaps=()):
    t = np.arange(0.0, sum(s for _, s in phases), 0.01)
    n = len(t)
    return {"phases": phases, "t_adapt_s": 4.0, "swaps": [{"t": s, "version": 2} for s in swaps],
            "series": {"t": t, "err": np.tile(err(t)[:, None], (1, 2)), "kp": np.tile(kp(t)[:, None], (1, 2)),
                       "sigma": np.ones((n, 2)), "version": np.ones(n, dtype=int),
                       "mode": np.full(n, int(Mode.NORMAL)) if mode is None else mode(t)}}


def test_the_goal_is_judged_after_adaptation_and_needs_all_three_conditions():
    phases = [(5.0, 10.0), (0.0, 10.0)]
    fixed = _run(phases, lambda t: np.full_like(t, 1e-3), lambda t: np.full_like(t, 100.0))
    # online: 10x worse than fixed for the first 4 s of each phase (before T_a), 2x better after;
    # K_P cut 50 %; phase 1 additionally has a FAULT tick after T_a
    def err(t):
        return np.where(t % 10.0 < 4.0, 1e-2, 5e-4)
    online = _run(phases, err, lambda t: np.full_like(t, 50.0), swaps=(0.0, 10.0, 10.7, 13.0),
                  mode=lambda t: np.where(np.isclose(t, 17.0), int(Mode.FAULT), int(Mode.NORMAL)))
    table = phase_table({"fixed": fixed, "online": online})
    rows = {(r["config"], r["phase"], r["window"]): r for r in table}
    ad = rows[("online", 0, "adapted")]
    assert ad["t0_s"] == pytest.approx(4.0) and ad["t1_s"] == pytest.approx(10.0)
    assert ad["rmse_mrad"] == pytest.approx(0.5) and ad["rmse_ref_mrad"] == pytest.approx(1.0)
    assert ad["kp_cut"] == pytest.approx(0.5)
    assert rows[("online", 0, "phase")]["rmse_mrad"] > 1.0            # the whole phase includes the transient
    # the first swap after a change: a swap at the change itself was fitted before it
    assert rows[("online", 1, "adapted")]["first_swap_s"] == pytest.approx(0.7)
    goals = {g["phase"]: g for g in goal_rows(table)}
    assert goals[0]["met"] and goals[0]["rmse_ok"] and goals[0]["cut_ok"]
    assert not goals[1]["met"] and goals[1]["rmse_ok"] and goals[1]["cut_ok"]     # the FAULT tick
    assert not any(g["met"] for g in goal_rows(table, window="phase"))           # transient: worse
    # a cut just under the goal fails it
    low = _run(phases, err, lambda t: np.full_like(t, 100.0 * (1.0 - GOAL_KP_CUT) + 0.1))
    assert not any(g["cut_ok"] for g in goal_rows(phase_table({"fixed": fixed, "online": low})))


def test_realized_table_takes_the_medians_of_the_adapted_cycles_per_phase():
    # two 10 s phases, T_a 5 s: only the cycles in [5, 10) and [15, 20) count; rows without
    # "exact" (too few recent steps for the replay) are skipped
    from dynlearn_ros.scenarios.online_inproc import realized_table

    rows = [{"t": float(t), "exact": [t, 1.0], "linearized": [2 * t, 1.0], "std": [0.5, 0.5], "sigma": [t, 1.0]}
            for t in range(20)]
    rows.append({"t": 6.5, "version": 3, "std": [0.5, 0.5], "sigma": [1.0, 1.0]})
    table = realized_table({"phases": [(0.0, 10.0), (5.0, 10.0)], "realized_check": rows}, 5.0)
    assert [(r["phase"], r["payload_kg"], r["cycles"]) for r in table] == [(0, 0.0, 5), (1, 5.0, 5)]
    assert table[0]["exact"] == [7.0, 1.0] and table[0]["linearized"] == [14.0, 1.0]
    assert table[1]["exact"] == [17.0, 1.0] and table[1]["sigma"] == [17.0, 1.0]


def test_learner_options_parse_each_kind_and_refuse_a_bad_one_with_its_name():
    from dynlearn_ros.scenarios.online_inproc import parse_learner

    opts = parse_learner("features=0, linear=0,ridge=1e-3,base=analytic,k_max=900;900;500;500;100;100;50")
    assert opts == {"features": 0, "linear": False, "ridge": 1e-3, "base": "analytic",
                    "k_max": (900.0, 900.0, 500.0, 500.0, 100.0, 100.0, 50.0)}
    assert parse_learner("") == {}
    with pytest.raises(ValueError, match="'kmax'"):
        parse_learner("kmax=1")
    with pytest.raises(ValueError, match=r"features='x': not a int"):
        parse_learner("features=x")
    with pytest.raises(ValueError, match=r"k_max='900;a'.*separated by ';'"):
        parse_learner("k_max=900;a")


def test_report_online_refuses_a_bad_learner_option_in_one_line_before_any_run(capsys):
    """Before, k_max could not be given at all (its commas split the option list) and a bad
    value surfaced deep inside the first run; now: exit 2, one line naming the option, no run."""
    from dynlearn_ros.cli import main

    rc = main(["report", "online", "--configs", "fixed", "--phases", "0:0.1", "--learner", "k_max=900;oops"])
    err = capsys.readouterr().err
    assert rc == 2
    lines = [ln for ln in err.strip().splitlines() if "error" in ln]
    assert len(lines) == 1 and "k_max='900;oops'" in lines[0] and "Traceback" not in err
