"""The bare rclpy echo baseline of ``bench loop`` runs through a real ROS graph and reports
what the bridge reports (round trip, deadline misses) on the same definitions."""

from __future__ import annotations

import pytest

from dynlearn_ros.benchmarks.loop import LoopBenchConfig, run_rclpy_echo

pytestmark = pytest.mark.ros


def test_rclpy_echo_pair_exchanges_every_tick(tmp_path, ros_env):
    seconds = 1.0
    stats = run_rclpy_echo(LoopBenchConfig(seconds=seconds), ros_env, tmp_path, "t")
    # the ping stops after exactly seconds * 1 kHz ticks
    assert stats["ticks"] == 1000
    rt = stats["round_trip_us"]
    # every tick whose reply came before its deadline has a round trip, except the last
    # published state's, whose reply arrives after the loop ended
    assert rt["n"] >= stats["ticks"] - stats["deadline_misses"] - 1
    # an inter-process DDS round trip takes more than a microsecond and, when answered before
    # the deadline, less than the 1 ms period: p50 must lie in between on any machine this runs
    assert 1.0 < rt["p50"] < 1000.0 or stats["deadline_miss_ratio"] > 0.5
    assert 0.0 <= stats["deadline_miss_ratio"] <= 1.0
    # the echo's callback durations (an empty tick), written by the echo when it was stopped:
    # every reply the ping timed was published by one callback
    cb = stats["echo_callback_us"]
    assert cb is not None and cb["n"] >= rt["n"]
    assert 0.0 < cb["p50"] <= cb["p99"] <= cb["max"]
