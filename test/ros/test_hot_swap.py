"""Hot swap under the 1 kHz lockstep loop over real DDS (issue 8 item 3): sim_bridge <-> computed_torque
with the SVDKL model, 100 swaps announced on ``model_updates``, alternating between
models/svdkl_iiwa_sim and a copy of it in another directory.

Why the copy: the two models' outputs then differ by exactly zero, so whatever the swap itself
does to the command (a reset, a lost tick, a stale tuning) shows up undiluted. The bound on the
command's per-tick change at a swap tick is therefore the normal per-tick change of this run:
at most the largest change over the ticks without a swap (the sine reference is smooth and
periodic, so that maximum recurs throughout the run). Lockstep means a late controller would
show as bridge timeouts (each tick waits for its command): none may occur.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from online_graph import start_swap_graph

from dynlearn_ros.core.robots import robot_spec
from dynlearn_ros.core.status import split_status
from dynlearn_ros.paths import models_dir

pytestmark = [pytest.mark.ros, pytest.mark.sim]

SPEC = robot_spec("iiwa")
N = SPEC.n
SWAPS = 100


def test_hundred_swaps_under_the_lockstep_loop(ros_context, start_node, tmp_path):
    from std_msgs.msg import String

    copy = tmp_path / "svdkl_copy"
    shutil.copytree(models_dir() / "svdkl_iiwa_sim", copy)
    dirs = [str(copy), "svdkl_iiwa_sim"]
    # The bridge's velocity stop is on (its default): the graph's plant is the model's own (5 kg,
    # see start_swap_graph), so the start stays far below the joint limits and no brake step (a
    # command step no swap causes) can land beside a swap; the summary asserts none happened.
    g = start_swap_graph(start_node, tmp_path, "swap_peer", 200)
    ctl, bridge, announce, ctl_json, br_json = g.ctl, g.bridge, g.announce, g.ctl_json, g.br_json
    peer, rows, spin_until = g.peer, g.peer.rows, g.peer.spin_until
    width = 8 * N + 5
    try:
        for i in range(SWAPS):
            before = rows[-1][width - 1]
            announce.publish(String(data=dirs[i % 2]))
            assert spin_until(lambda b=before: rows[-1][width - 1] > b, 30.0), \
                f"swap {i + 1} not seen\n{ctl.output()[-3000:]}"
        spin_until(lambda: False, 0.3)   # some ticks after the last swap
        assert bridge.stop() == 0
    finally:
        peer.close()
    assert ctl.stop() == 0

    stats = json.loads(br_json.read_text())
    summary = json.loads(ctl_json.read_text())
    # no missed or late tick: every lockstep step had its command in time, none rejected
    assert stats["timeouts"] == 0 and stats["rejected_commands"] == 0, stats
    # the stop never braked: no brake step beside a swap (the 5 kg start peaks at 0.85 rad/s on
    # joint 6, a quarter of the 3.14 rad/s limit, in-process with the same controller)
    assert stats["velocity_stops"] == 0 and stats["brake_steps"] == 0, stats
    slot = summary["model_slot"]
    assert slot["model_swaps"] == SWAPS and slot["model_refused"] == 0 and slot["model_rollbacks"] == 0, slot
    assert slot["model_dir"] == dirs[(SWAPS - 1) % 2]
    c = summary["counters"]
    assert c["model_fallback"] == 0 and c["nonfinite_torque"] == 0 and c["tracking_fault"] == 0, c

    st = split_status(np.array([r for r in rows if r.size == width]), N)
    t, swaps, tau = st["t_ref"], st["model_swaps"], st["tau_cmd"]
    assert np.all(st["model_version"] == st["model_version"][0])   # the copy carries the same metadata
    consecutive = np.isclose(np.diff(t), 1e-3, rtol=0, atol=1e-9)   # rows of adjacent ticks
    dtau = np.abs(np.diff(tau, axis=0))
    at_swap = consecutive & (np.diff(swaps) > 0)
    normal = consecutive & (np.diff(swaps) == 0)
    # best effort (keep last 1) on a loaded machine loses rows, at swaps or not (measured under load
    # average 9-28: 72-79 of 100 swap ticks with their previous row, on this tree and on the one
    # before the deferred slot alike). What must hold is that a swap does not lose its rows more
    # often than any tick: with a share q of the ticks' rows received (rows over the ticks they
    # span), both rows of a swap tick and its previous tick arrive with probability q^2 if losses
    # do not favour swaps; 100 swaps make the count binomial with std <= 5, so the bound is
    # q^2 * SWAPS - 15 (3 std), and at least half the swaps must be seen for the bound below
    span = int(round((t[-1] - t[0]) / 1e-3)) + 1
    q = len(t) / span
    assert at_swap.sum() >= max(q * q * SWAPS - 15, 0.5 * SWAPS), (at_swap.sum(), q)
    # A swap must not add a torque step. The steps of the ticks are noisy (the feedback on the
    # tracking error), so "the largest swap step <= the largest normal step" failed by chance (CI:
    # joint 1 0.0877 vs 0.0875, joint 6 0.0137 vs 0.0130): with the ~100 swap ticks exchangeable
    # with the ~1000 normal ones, the run's largest step lands on a swap tick with probability
    # ~100/1100 per joint. Under that null, each swap step exceeds the normal ticks' 99th
    # percentile with probability 0.01: binomial(n_swap, 0.01), mean <= 1, std <= 1, so at most
    # 1 + 3 * 1 + 1 (rounding) = 5 of them per joint; a swap that disturbed the command would put
    # most of its ~100 steps there. And no swap step may reach twice the largest normal step (the
    # tail of 100 draws does not double the maximum of 1000 from the same light-tailed steps).
    p99 = np.percentile(dtau[normal], 99, axis=0)
    above = (dtau[at_swap] > p99).sum(axis=0)
    assert np.all(above <= 5), (above, p99)
    bound = dtau[normal].max(axis=0)
    worst = dtau[at_swap].max(axis=0)
    assert np.all(worst <= 2.0 * bound), (worst, bound)
