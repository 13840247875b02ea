"""``bench online``'s verdict per part of a swap (benchmarks/online.py ``summarize_rounds``): the
part's over-budget ticks pooled over rounds against the no-swap expectation, judged against
placebo windows of the same lengths shifted into the no-swap stretch. Synthetic rounds with known
answers (the tick loop itself is the bench's, timed, and not run here)."""

import numpy as np

from dynlearn_ros.benchmarks.online import TICK_PARTS, _pooled, summarize_rounds


def _part(over, ticks, p0, placebo_over):
    return {"ticks": ticks, "over_budget": over, "expected_over_budget": ticks * p0,
            "over_budget_fraction": over / ticks if ticks else 0.0, "compute_us_p50": 1.0,
            "placebo": [(o, ticks * p0) for o in placebo_over]}


def _round(over, placebo_over, ticks=400, p0=0.5):
    r = {"no_swap": {"over_budget_fraction": p0, "compute_us_p50": 1.0, "ticks": 19000}}
    for part in TICK_PARTS:
        r[part] = _part(over, ticks, p0, placebo_over)
    return r


def test_a_part_like_its_placebos_is_within_noise_and_one_above_all_of_them_is_not():
    rng = np.random.default_rng(0)
    # 41 placebo windows per round, 400 ticks at p0 = 0.5 with a spread (bursts) of +-30 ticks
    placebo = [list(200 + rng.integers(-30, 31, 41)) for _ in range(3)]
    same = [_round(205, pl) for pl in placebo]
    s = summarize_rounds(same)["loading"]["pooled"]
    assert s["placebo_n"] == 41 and abs(s["ratio"] - 1.025) < 1e-9
    assert s["within_noise"] and 0.05 < s["p_value"] < 0.95
    # 20 % more over-budget ticks than expected: beyond the placebos' +-30 / 200 = 15 % spread
    worse = [_round(240, pl) for pl in placebo]
    w = summarize_rounds(worse)["loading"]["pooled"]
    assert not w["within_noise"] and w["p_value"] == 0.0 and abs(w["ratio"] - 1.2) < 1e-9


def test_pooling_weighs_rounds_by_their_ticks_and_a_part_without_ticks_has_no_verdict():
    # round 1: 100 ticks, all over budget at p0 0.5 (expected 50); round 2: 300 ticks, 150 (expected 150)
    r1, r2 = _round(100, [50] * 41, ticks=100), _round(150, [150] * 41, ticks=300)
    s = _pooled([r1, r2], "warm_tick")
    assert abs(s["ratio"] - 250 / 200) < 1e-12 and abs(s["placebo_p95"] - 1.0) < 1e-12
    assert not s["within_noise"]
    empty = _round(0, [0] * 41, ticks=0)
    assert _pooled([empty], "warm_tick") == {"n": 0}
