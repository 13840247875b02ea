"""The swap's plant check through the running controller (issue 10 (c)): sim_bridge <-> computed_torque
in lockstep with the shipped SVDKL (trained with the bridge's 5 kg payload), the realized-error
sigma on (its record holds the controller's recent steps). A model of another plant - the online
learner's correction fitted to samples of the same arm carrying 15 kg - is announced: the
controller must refuse it before activation (counted as a plant-fit refusal, logged with both
errors) and keep running the shipped model; a copy of the shipped model announced next passes the
same check and is swapped in. Event-driven: each announcement waits for its outcome (the log
line or the status row's swap counter), never for a fixed time.

Why this model is far outside the factor: 10 kg more than the plant carries is ~10 kg * 9 N*m/kg
on joint 2 at the sine's poses, against the running model's realized error there of well under
1 N*m (sigma_n 0.58): ~100x, the check refuses above 2x (runtime/slot.py check_plant_fit).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from online_graph import start_swap_graph

from dynlearn_ros.core.robots import robot_spec
from dynlearn_ros.paths import models_dir

pytestmark = [pytest.mark.ros, pytest.mark.sim]

SPEC = robot_spec("iiwa")
N = SPEC.n


def _wrong_plant_model(out, heavy_kg: float = 15.0) -> str:
    """The learner's export for the arm with ``heavy_kg`` (15: 10 kg more than the base model's
    plant; 5: the plant's own payload, a version that fits)."""
    from dynlearn_ros.learning.online import OnlineConfig, OnlineLearner
    from dynlearn_ros.sim.plant import payload_model

    lr = OnlineLearner(models_dir() / "svdkl_iiwa_sim", out, OnlineConfig(batch=100, holdout=100, base="model"))
    nz = lr.meta.normalization
    x = np.asarray(nz["x_mean"]) + 0.5 * np.random.default_rng(0).normal(size=(400, 21)) * np.asarray(nz["x_std"])
    heavy, light = payload_model("iiwa", heavy_kg), payload_model("iiwa", 5.0)
    extra = np.array([heavy.rnea(r[:7], r[7:14], r[14:], np.zeros(7)) - light.rnea(r[:7], r[7:14], r[14:], np.zeros(7))
                      for r in x])
    for xi, yi in zip(x, lr.base_predict(x)[0] + extra, strict=True):
        lr.add(xi, yi)
    res = lr.cycle()
    assert res is not None and res.accepted and abs(res.payload_kg - (heavy_kg - 5.0)) < 0.5, res
    return res.path


def test_a_model_of_another_plant_is_refused_before_activation(ros_context, start_node, tmp_path):
    from std_msgs.msg import String

    wrong = _wrong_plant_model(tmp_path / "wrong")
    copy = tmp_path / "svdkl_copy"
    shutil.copytree(models_dir() / "svdkl_iiwa_sim", copy)
    # > 300 law ticks before the first announcement: the check's window of recent steps is full
    g = start_swap_graph(start_node, tmp_path, "plant_check_peer", 600, ctl_params={"residual_window_s": 0.1},
                         bridge_params={"payload_kg": 5.0})
    ctl, bridge, announce, ctl_json, br_json = g.ctl, g.bridge, g.announce, g.ctl_json, g.br_json
    peer, rows, spin_until = g.peer, g.peer.rows, g.peer.spin_until
    width = 8 * N + 5
    try:
        announce.publish(String(data=wrong))
        assert spin_until(lambda: "does not fit the running plant" in ctl.output(), 60.0), ctl.output()[-3000:]
        before = rows[-1][width - 1]
        announce.publish(String(data=str(copy)))
        assert spin_until(lambda: rows[-1][width - 1] > before, 60.0), f"copy not swapped in\n{ctl.output()[-3000:]}"
        spin_until(lambda: False, 0.3)
        assert bridge.stop() == 0
    finally:
        peer.close()
    assert ctl.stop() == 0
    log = ctl.output()
    line = next(ln for ln in log.splitlines() if "does not fit the running plant" in ln)
    assert "against the running model's" in line and "N*m" in line, line      # both errors logged
    summary = json.loads(ctl_json.read_text())
    slot = summary["model_slot"]
    assert slot["model_refused_plant_fit"] == 1 and slot["model_refused"] == 1, slot
    assert slot["model_swaps"] == 1 and slot["model_dir"] == str(copy), slot
    c = summary["counters"]
    assert c["tracking_fault"] == 0 and c["model_fallback"] == 0, c
    stats = json.loads(br_json.read_text())
    assert stats["timeouts"] == 0, stats


def test_a_handed_over_version_of_another_plant_is_refused_by_the_loaders_plant_check(ros_context, start_node,
                                                                                       tmp_path):
    """The same check where the node runs it for a hand-over (runtime/loader.py, session 12): a
    version of the learner's track that fits (the first of its structure: loaded in the
    controller's process, checked in its slot) primes the structure; the next version, of another
    plant, is a hand-over, and the loader process refuses it on the recent steps the request
    carried: counted as a plant-fit refusal and as the loader's refusal, the running version stays."""
    from std_msgs.msg import String

    fits = _wrong_plant_model(tmp_path / "fits", heavy_kg=5.0)
    wrong = _wrong_plant_model(tmp_path / "wrong")
    g = start_swap_graph(start_node, tmp_path, "plant_check_loader_peer", 600, ctl_params={"residual_window_s": 0.1},
                         bridge_params={"payload_kg": 5.0})
    ctl, bridge, announce, ctl_json = g.ctl, g.bridge, g.announce, g.ctl_json
    peer, rows, spin_until = g.peer, g.peer.rows, g.peer.spin_until
    width = 8 * N + 5
    try:
        before = rows[-1][width - 1]
        announce.publish(String(data=fits))
        assert spin_until(lambda: rows[-1][width - 1] > before, 120.0), f"fitting version not swapped in\n{ctl.output()[-3000:]}"
        announce.publish(String(data=wrong))
        assert spin_until(lambda: "does not fit the running plant" in ctl.output(), 120.0), ctl.output()[-3000:]
        spin_until(lambda: False, 0.3)
        assert bridge.stop() == 0
    finally:
        peer.close()
    assert ctl.stop() == 0
    summary = json.loads(ctl_json.read_text())
    slot, ld = summary["model_slot"], summary["model_loader"]
    assert slot["model_refused_plant_fit"] == 1 and slot["model_refused"] == 1, slot
    assert slot["model_swaps"] == 1 and slot["model_dir"] == fits, slot
    # the fitting version loaded here (the structure's first), the other refused by the loader
    assert ld["loader_inprocess"] == 1 and ld["loader_refused"] == 1 and ld["loader_failures"] == 0, ld
    assert summary["counters"]["tracking_fault"] == 0, summary["counters"]
