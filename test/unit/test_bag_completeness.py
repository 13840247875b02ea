"""bags/completeness.py: recorded against published, distinct states only, so that the bridge's
repeats of state 0 (re-sent every 0.1 s until the first command) cannot hide a lost state."""

from __future__ import annotations

from dynlearn_ros.bags.completeness import bag_summary, completeness_line

BRIDGE = {"ticks": 10000}                                   # 10,001 states published
CONTROLLER = {"counters": {"ticks": 9990, "stale_hold": 10}}  # 10,000 commands published


def _recorder(states: int, repeats: int, commands: int = 10000) -> dict:
    return {"bag_path": "/x/bag", "dropped": 0,
            "messages": {"/joint_states": states, "/effort_controller/commands": commands},
            "repeated_stamps": {"/joint_states": repeats}}


def test_repeats_of_state_0_are_not_counted_as_recorded_states():
    # 10,001 distinct states + 8 repeats: every state is in the bag (as measured: 10,009 messages)
    bag = bag_summary(_recorder(10009, 8), BRIDGE, CONTROLLER)
    js = bag["completeness"]["joint_states"]
    assert (js["recorded"], js["published"], js["share"], js["repeats"]) == (10001, 10001, 1.0, 8)
    line = completeness_line(bag)
    assert line.startswith("  bag complete:") and "joint_states 10001 of 10001 (100.0 %) (+8 repeated stamps)" in line


def test_a_lost_state_is_not_hidden_by_a_repeat():
    # 8 states lost and 8 repeats: as many messages as published, but not every state
    bag = bag_summary(_recorder(10001, 8), BRIDGE, CONTROLLER)
    assert bag["completeness"]["joint_states"]["recorded"] == 9993
    assert completeness_line(bag).startswith("  bag INCOMPLETE:")


def test_a_recorder_summary_without_the_count_reads_as_before():
    # a recorder.json of an older recorder: messages as recorded, no repeats
    rec = _recorder(10001, 0)
    del rec["repeated_stamps"]
    bag = bag_summary(rec, BRIDGE, CONTROLLER)
    assert bag["completeness"]["joint_states"] == {"topic": "/joint_states", "recorded": 10001, "published": 10001,
                                                  "share": 1.0, "repeats": 0}
    assert bag["completeness"]["effort_controller/commands"]["share"] == 1.0
    assert "repeated" not in completeness_line(bag)
