"""The fault matrix (docs/safety.md), one test per row: the injected fault, the expected counter,
log line and torque bound are in each row's checks (dynlearn_ros/faults/matrix.py); a row is OK
when every check holds. The same rows run from ``dynlearn-ros faults --json PATH``.

Each ROS row claims a ROS_DOMAIN_ID and an rclpy context of its own (``run_row``, through
``dynlearn_ros.procs.ros_domain``): rows never share a graph with each other or with the
test/ros tests of the same pytest process, whose environment is restored after every row.

Slow rows (realtime with a CPU hog, training a model to export) are marked ``slow``
(``-m "not slow"`` leaves them out); the others take 3-5 minutes together on 2 cores (8 at
load average 17). Rows that are known NOT OK today (``Row.known_open``: open items of issue 13) are expected failures
that still run (non-strict: on a quiet machine they may pass), so the suite shows them as xfail
with the reason instead of hiding them.
"""

from __future__ import annotations

import pytest

from dynlearn_ros.faults.matrix import ROWS, run_row

pytestmark = pytest.mark.ros


def _marks(r) -> list:
    marks = [pytest.mark.slow] if r.slow else []
    if r.known_open:
        marks.append(pytest.mark.xfail(reason=r.known_open, strict=False))
    return marks


@pytest.mark.parametrize("row", [pytest.param(r, id=r.name, marks=_marks(r)) for r in ROWS])
def test_fault_row(row, tmp_path):
    result = run_row(row, tmp_path)
    report = "\n".join(f"  {'ok ' if c.ok else 'BAD'} {c.name}: {c.detail}" for c in result.checks)
    assert result.ok, f"{row.name} ({row.fault}): {result.error}\n{report}\nfigures: {result.figures}"
