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
