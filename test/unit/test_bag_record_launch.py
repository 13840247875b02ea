"""record:=true in the vgain_control graph: the recorder's scheduling follows the loop's
``rt_priority`` (launch_graph.recorder_rt_priority). Beside a SCHED_FIFO 50 loop a recorder at
normal priority recorded 53 %, 0 % and 0 % of the states on a loaded machine (in two runs it had
not finished starting when the 10 s run ended), under SCHED_FIFO 10 all of them (docs/bags.md)."""

from __future__ import annotations

from dynlearn_ros.launch_graph import recorder_rt_priority, vgain_control


def _specs(**args):
    return {s.name: s for s in vgain_control({"record": "true", **args})}


def test_without_rt_priority_the_recorder_runs_at_normal_priority():
    specs = _specs()
    assert specs["recorder"].prefix == [] and specs["computed_torque"].prefix == []
    assert not specs["recorder"].required          # a recorder that fails must not stop the robot


def test_beside_a_fifo_loop_the_recorder_runs_fifo_below_it():
    specs = _specs(rt_priority="50")
    assert specs["computed_torque"].prefix == specs["sim_bridge"].prefix == ["chrt", "-f", "50"]
    assert specs["recorder"].prefix == ["chrt", "-f", "10"]


def test_the_recorder_priority_stays_below_the_loop_and_is_never_fifo_0():
    for loop in range(0, 100):
        rec = recorder_rt_priority(loop)
        assert rec == 0 or 1 <= rec < loop, (loop, rec)
    assert _specs(rt_priority="4")["recorder"].prefix == []     # no FIFO priority below 4 worth having
