"""StepTrace (dynlearn_ros/sim/trace.py): rows across block boundaries, flags, the saved arrays."""

from __future__ import annotations

import numpy as np

from dynlearn_ros.sim.trace import BRAKE, FRESH, STALL, StepTrace


def test_rows_across_blocks_are_saved_in_order(tmp_path):
    tr = StepTrace(2, block=3)  # 7 rows: two full blocks and one partial
    for k in range(7):
        tr.add(1_000_000_000 + k * 1_000_000, FRESH if k % 2 else BRAKE, k, np.array([k, -k]), np.array([0.5 * k, 1.0]))
    tr.mark_stall()
    tr.save(tmp_path / "t.npz")
    d = np.load(tmp_path / "t.npz")
    assert d["t_wall_s"].shape == (7,) and d["qd"].shape == (7, 2) and d["tau"].shape == (7, 2)
    np.testing.assert_allclose(d["t_wall_s"], np.arange(7) * 1e-3)  # from the first step
    assert d["steps_on_cmd"].tolist() == list(range(7))
    np.testing.assert_array_equal(d["qd"][:, 1], -np.arange(7))
    assert d["flags"][:6].tolist() == [BRAKE, FRESH, BRAKE, FRESH, BRAKE, FRESH]
    assert d["flags"][6] == BRAKE | STALL  # the re-anchor marks the last step


def test_an_empty_trace_saves_empty_arrays(tmp_path):
    tr = StepTrace(3)
    tr.save(tmp_path / "e.npz")
    d = np.load(tmp_path / "e.npz")
    assert d["qd"].shape == (0, 3) and d["flags"].shape == (0,)


def test_fastest_moment_names_the_step_and_joint_of_the_largest_velocity_over_its_limit(tmp_path):
    """faults.matrix.fastest_moment: the peak is taken relative to each joint's own limit (joint 0
    moves faster in rad/s, joint 1 is closer to its limit), signed, with the steps before it."""
    from dynlearn_ros.faults.matrix import fastest_moment
    from dynlearn_ros.sim.trace import VSTOP

    vmax = np.array([3.0, 1.0])
    tr = StepTrace(2)
    for k in range(40):
        qd = np.array([2.0, -0.02 * k])     # joint 1 peaks at the last step: -0.78 of its limit
        flags = FRESH if k % 5 == 0 else 0
        if k == 39:
            flags |= VSTOP
        tr.add(k * 1_000_000, flags, k % 5, qd, np.array([1.0, -2.5]))
    tr.save(tmp_path / "t.npz")
    r = fastest_moment(tmp_path / "t.npz", vmax, before=4, after=3)
    assert (r["step"], r["joint"]) == (39, 1)
    assert abs(r["qd_over_limit"] - 0.78) < 1e-6
    assert len(r["lines"]) == 5                        # 4 before, the peak, none after the end
    assert r["lines"][-1] == "39 V 4 -0.78 | 1.0 -2.5"
    assert r["lines"][0].startswith("35 F 0 -0.70")
    tr2 = StepTrace(2)
    tr2.save(tmp_path / "e.npz")
    assert fastest_moment(tmp_path / "e.npz", vmax) == {}
