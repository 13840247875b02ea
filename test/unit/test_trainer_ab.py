"""``bench online --trainer-ab`` (benchmarks/trainer_ab.py): the per-stretch figures and their
aggregation per arm, known answers; the CLI refuses bad stretch settings before starting anything.
The measurement itself (real node processes) is a bench, not a test: no timing is asserted."""

from __future__ import annotations

import pytest

from dynlearn_ros.benchmarks.trainer_ab import KEYS, aggregate, stretch_metrics
from dynlearn_ros.cli import main


def _pair(p50, p99, misses, ticks, timeouts, losses, rt99, ctl_cpu):
    """The slice of run_pair's result that stretch_metrics reads (the nodes' JSON field names)."""
    return {"bridge": {"ticks": ticks, "deadline_misses": misses, "deadline_miss_ratio": misses / ticks,
                       "timeouts": timeouts, "command_losses": losses, "round_trip_us": {"p99": rt99}},
            "controller": {"controller_tick_us": {"p50": p50, "p99": p99, "n": ticks}},
            "cpu_percent": {"computed_torque": ctl_cpu, "sim_bridge": 30.0}}


def test_stretch_metrics_reads_the_nodes_figures_and_the_trainer_cpu():
    m = stretch_metrics(_pair(80.0, 200.0, 5, 10000, 1, 2, 900.0, 40.0), trainer_cpu_s=6.0, stretch_wall_s=12.0)
    assert m["tick_p50_us"] == 80.0 and m["tick_p99_us"] == 200.0
    assert m["deadline_misses"] == 5 and m["deadline_miss_ratio"] == pytest.approx(5e-4, rel=1e-12)
    assert m["late_commands"] == 3          # timeouts + command losses
    assert m["round_trip_p99_us"] == 900.0 and m["cpu_percent_computed_torque"] == 40.0
    assert m["trainer_cpu_percent"] == pytest.approx(50.0, rel=1e-12)   # 6 CPU s in 12 wall s
    assert stretch_metrics(_pair(1, 1, 0, 10, 0, 0, 1, 1), None, 12.0)["trainer_cpu_percent"] is None
    assert set(KEYS) <= set(m)


def _row(arm, p50, p99, misses, trainer_cpu):
    return {"arm": arm, "tick_p50_us": p50, "tick_p99_us": p99, "deadline_misses": misses,
            "deadline_miss_ratio": misses / 10000, "late_commands": 0, "round_trip_p99_us": None,
            "trainer_cpu_percent": trainer_cpu, "cpu_percent_computed_torque": 40.0}


def test_aggregate_medians_per_arm_and_ratios_known_answer():
    rows = [_row("without", 80, 200, 2, 0.1), _row("with", 100, 300, 10, 90.0),
            _row("without", 90, 250, 0, 0.2), _row("with", 120, 500, 4, 95.0),
            _row("without", 70, 210, 4, 0.3), _row("with", 110, 400, 6, 85.0)]
    agg = aggregate(rows)
    wo, w = agg["median"]["without"], agg["median"]["with"]
    assert wo["stretches"] == 3 and w["stretches"] == 3
    assert (wo["tick_p50_us"], wo["tick_p99_us"], wo["deadline_misses"]) == (80.0, 210.0, 2.0)
    assert (w["tick_p50_us"], w["tick_p99_us"], w["deadline_misses"]) == (110.0, 400.0, 6.0)
    r = agg["ratio_with_to_without"]
    assert r["tick_p50_us"] == pytest.approx(110 / 80, rel=1e-12)
    assert r["tick_p99_us"] == pytest.approx(400 / 210, rel=1e-12)
    assert r["deadline_misses"] == pytest.approx(3.0, rel=1e-12)
    # a zero median without (no late command in either arm) gives no ratio: judged on the counts
    assert wo["late_commands"] == 0.0 and r["late_commands"] is None
    # all-None values (no round trip measured) stay None instead of becoming 0
    assert wo["round_trip_p99_us"] is None and r["round_trip_p99_us"] is None


def test_aggregate_skips_missing_values_and_an_empty_arm():
    rows = [_row("without", 80, 200, 2, None), _row("without", 100, 220, 2, 0.4)]
    agg = aggregate(rows)
    assert agg["median"]["without"]["trainer_cpu_percent"] == 0.4      # the None is skipped
    assert agg["median"]["with"]["stretches"] == 0 and agg["median"]["with"]["tick_p50_us"] is None
    assert agg["ratio_with_to_without"]["tick_p50_us"] is None


@pytest.mark.parametrize("bad", [["--ab-seconds", "0"], ["--ab-repeat", "0"], ["--rt-priority", "100"]])
def test_cli_refuses_bad_stretch_settings(bad, tmp_path):
    with pytest.raises(SystemExit, match="--ab-seconds must be > 0"):
        main(["bench", "online", "--trainer-ab", "--json", str(tmp_path / "x.json"), *bad])
