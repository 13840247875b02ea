"""The fault matrix (docs/safety.md), one test per row: the injected fault, the expected counter,
log line and torque bound are in each row's checks (dynlearn_ros/faults/matrix.py); a row is OK
when every check holds. The same rows run from ``dynlearn-ros faults --json PATH``.

Slow rows (realtime with a CPU hog, training a model to export) are marked ``slow`` and left
out of CI (``-m "not slow"``); the others take about 2 minutes together on 2 cores.
"""

from __future__ import annotations

import pytest

from dynlearn_ros.faults.matrix import ROWS, run_row

pytestmark = pytest.mark.ros


@pytest.mark.parametrize("row", [pytest.param(r, id=r.name, marks=[pytest.mark.slow] if r.slow else [])
                                 for r in ROWS])
def test_fault_row(row, fault_env, tmp_path):
    result = run_row(row, tmp_path, fault_env)
    report = "\n".join(f"  {'ok ' if c.ok else 'BAD'} {c.name}: {c.detail}" for c in result.checks)
    assert result.ok, f"{row.name} ({row.fault}): {result.error}\n{report}\nfigures: {result.figures}"
