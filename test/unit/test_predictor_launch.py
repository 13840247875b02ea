"""predictor:=true in the vgain_control graph (launch_graph.py), and the run summary's figures."""

from __future__ import annotations

import json

import pytest

from dynlearn_ros.launch_graph import LOCKSTEP_STALE_TIMEOUT_MS, vgain_control


def _by_name(specs):
    return {s.name: s for s in specs}


def test_predictor_off_by_default_and_on_with_the_argument(tmp_path):
    assert "predictor" not in _by_name(vgain_control({}))
    specs = _by_name(vgain_control({"predictor": "true", "summary_dir": str(tmp_path), "namespace": "arm"}))
    p = specs["predictor"]
    assert p.module == "dynlearn_ros.nodes.predictor" and p.namespace == "arm"
    assert not p.required            # the arm is controlled without it: its exit does not end the launch
    params = p.parameters[-1]
    assert params["model_dir"] == "acrkn_iiwa_fwd" and params["robot"] == "iiwa"
    assert params["summary_path"] == str(tmp_path / "predictor.json")
    assert params["stale_timeout_ms"] == LOCKSTEP_STALE_TIMEOUT_MS   # lockstep is the default stepping
    # the same remappings as the controller: it listens where the controller listens
    assert p.remappings == specs["computed_torque"].remappings


def test_predictor_with_another_robot_needs_its_model():
    with pytest.raises(ValueError, match="predictor_model_dir"):
        vgain_control({"predictor": "true", "robot": "panda"})
    specs = _by_name(vgain_control({"predictor": "true", "robot": "panda", "predictor_model_dir": "/m/panda_fwd"}))
    assert specs["predictor"].parameters[-1]["model_dir"] == "/m/panda_fwd"


def test_run_summary_carries_the_predictor_figures(tmp_path):
    from dynlearn_ros.commands.launch import summarize

    assert summarize("vgain_control", {}, tmp_path, {}, 1.0)["predictor"] is None
    (tmp_path / "predictor.json").write_text(json.dumps({
        "model_dir": "m", "model_version": 3, "published": 12, "online_score": {"1ms": {"n": 5}},
        "state_us": {"p50": 80.0}, "rollout_us": {"p50": 9000.0}, "stale_episodes": 1, "recoveries": 1,
        "rejected": {"non_finite_state": 2}, "joint_names": ["a"], "stream": {"observed": 1000}}))
    got = summarize("vgain_control", {}, tmp_path, {}, 1.0)["predictor"]
    assert got["model_version"] == 3 and got["rejected"] == {"non_finite_state": 2}
    assert got["online_score"]["1ms"]["n"] == 5 and "joint_names" not in got
    assert got["states_observed"] == 1000


def test_launch_summary_text_prints_the_predictor_figures(tmp_path):
    from dynlearn_ros.commands.launch import predictor_summary_lines, summarize

    (tmp_path / "predictor.json").write_text(json.dumps({
        "model_dir": "m", "model_version": 3, "published": 12, "stream": {"observed": 999},
        "online_score": {"10ms": {"n": 5, "rmse_q_rad": 0.00125, "rmse_qd_rad_s": 0.1, "coverage95_q": 0.9}},
        "state_us": {"p50": 80.0, "p99": 300.0}, "rollout_us": {"p50": None, "p99": None}}))
    text = "\n".join(predictor_summary_lines(summarize("vgain_control", {}, tmp_path, {}, 1.0)["predictor"]))
    assert "version 3" in text and "12 predictions published" in text and "999 states observed" in text
    assert "10ms 1.25 mrad cov 0.90" in text
    assert "per state 80 / 300 us" in text and "per rollout -" in text


def test_run_summary_reads_the_node_summaries_from_summary_dir(tmp_path):
    """With summary_dir:=elsewhere the nodes write there, so the run summary must read there
    (it read the run folder and printed 'sim time=None', 'safety counters: {}')."""
    from dynlearn_ros.commands.launch import summarize

    run_dir, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    run_dir.mkdir()
    elsewhere.mkdir()
    (elsewhere / "computed_torque.json").write_text(json.dumps({
        "sim_time_s": 87.9, "model_kind": "analytic", "counters": {"ticks": 87900}}))
    (elsewhere / "sim_bridge.json").write_text(json.dumps({"clamps": 0}))
    got = summarize("ik_demo", {"summary_dir": str(elsewhere)}, run_dir, {}, 60.0)
    assert got["duration_s"] == 87.9 and got["model_kind"] == "analytic"
    assert got["safety_counters"] == {"ticks": 87900, "bridge_clamps": 0}
    assert summarize("ik_demo", {"summary_dir": ""}, run_dir, {}, 60.0)["duration_s"] is None
