"""The trainer killed with SIGKILL in the middle of exports (issue 10, section 4): a learner process
exports version after version; it is killed at several moments; every ``v*`` directory left
behind must be a whole, valid model (the contract's temporary directories are hidden, ``.v*``,
and never announced). The kill moments are spread over the export loop (0.3-2.5 s after the first
export started: an export takes ~0.3-0.7 s here, so several kills land inside one)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from dynlearn_ros.runtime.validate import validate_model_dir

SCRIPT = r"""
import sys, numpy as np
from pathlib import Path
from dynlearn_ros.learning.online import OnlineConfig, OnlineLearner
from dynlearn_ros.paths import resolve_model_dir
lr = OnlineLearner(resolve_model_dir("svdkl_iiwa_sim"), Path(sys.argv[1]), OnlineConfig(batch=50, holdout=50, keep=100))
nz = lr.meta.normalization
rng = np.random.default_rng(0)
k = 0
print("ready", flush=True)
while True:
    x = np.asarray(nz["x_mean"]) + 0.5 * rng.normal(size=(100, 21)) * np.asarray(nz["x_std"])
    y = lr.base_predict(x)[0] + (1.0 + 0.1 * k)   # a drifting offset: every candidate beats the last
    for xi, yi in zip(x, y):
        lr.add(xi, yi)
    lr.cycle()
    k += 1
"""


@pytest.mark.parametrize("delay_s", [0.3, 0.9, 1.6, 2.5])
def test_sigkill_during_exports_leaves_only_whole_models(tmp_path, delay_s):
    out = tmp_path / "models"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(out)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(delay_s)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    visible = sorted(p for p in out.glob("v*") if p.is_dir()) if out.exists() else []
    for d in visible:
        validate_model_dir(d)       # raises on a partial or inconsistent directory
    # anything else is a hidden temporary directory of an export the kill interrupted
    others = [p.name for p in out.iterdir() if p not in visible] if out.exists() else []
    assert all(name.startswith(".v") for name in others), others


def test_a_restarted_learner_continues_the_numbering_and_clears_leftovers(tmp_path):
    from dynlearn_ros.learning.online import OnlineLearner
    from dynlearn_ros.paths import resolve_model_dir

    (tmp_path / "v0007").mkdir()
    (tmp_path / ".v0008.abc123").mkdir()       # what a kill during an export leaves
    lr = OnlineLearner(resolve_model_dir("svdkl_iiwa_sim"), tmp_path)
    assert lr.version == 7
    assert not (tmp_path / ".v0008.abc123").exists()

