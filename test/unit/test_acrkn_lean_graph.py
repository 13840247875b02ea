"""The hand-built ac-RKN inverse step graph (learning/export/acrkn_graph.py): same function as the torch
model, fewer nodes, and the in-place conversion of torch-exported model directories.

Tolerances: as test_export_parity.py (float32 reordering, ~1e-5 relative after 250 contracting
steps; asserted at 2e-4 of each output's scale). Here the reference is the torch model in
float64, so the bound measures the graph's own float32 error only.
"""

import copy
import json

import numpy as np
import onnx
import pytest
import torch
from test_export_parity import N, _ckpt, _model, _stats

from dynlearn_ros.learning.export import acrkn as export
from dynlearn_ros.learning.export import acrkn_graph
from dynlearn_ros.learning.export.acrkn import InverseStep, initial_belief, write_model_dir
from dynlearn_ros.learning.export.acrkn_graph import GRAPH_NAME, convert_model_dir, rollout
from dynlearn_ros.runtime.metadata import ModelMetadata
from dynlearn_ros.runtime.onnx_step import OnnxStep

torch.set_num_threads(1)


def _setup(act_target, rng):
    """A small inverse model (test_export_parity's sizes and statistics) with a non-trivial
    transition basis and transition noise."""
    model = _model("acrkn-inv", "inverse", 2 * N, N, act_target=act_target)
    stats = _stats(2 * N, N, rng)
    with torch.no_grad():
        model.cell.log_trans_cov.add_(0.3 * torch.randn_like(model.cell.log_trans_cov))
        model.dnext_scale.copy_(torch.as_tensor(stats.obs_std / stats.dobs_std, dtype=torch.float32))
        model.dnext_shift.copy_(torch.as_tensor(stats.dobs_mean / stats.dobs_std, dtype=torch.float32))
    return model, stats, _ckpt(model, stats, "inverse")


@pytest.mark.parametrize("act_target", ["difference", "absolute"])
def test_lean_graph_matches_the_float64_model_over_250_steps(tmp_path, act_target):
    rng = np.random.default_rng(0)
    model, stats, ckpt = _setup(act_target, rng)
    out = write_model_dir(model, ckpt, tmp_path / "m")
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["acrkn"]["graph"] == GRAPH_NAME
    step64 = InverseStep(copy.deepcopy(model), stats).eval().double()
    s = OnnxStep(out / "model.onnx")
    b64 = initial_belief(model)[None].double()
    s.inputs["belief"][0] = b64[0].numpy()
    scale = stats.act_std if act_target == "absolute" else stats.dact_std
    o, a = stats.obs_mean.copy(), stats.act_mean.copy()
    worst = {"tau": 0.0, "var": 0.0, "belief": 0.0}
    for _ in range(250):
        o_next = o + 0.01 * stats.obs_std * rng.standard_normal(2 * N)
        s.inputs["obs"][0], s.inputs["obs_next"][0], s.inputs["act_prev"][0] = o, o_next, a
        s.run()
        f = lambda x: torch.as_tensor(x, dtype=torch.float64)[None]  # noqa: E731
        with torch.no_grad():
            tau, var, b64 = step64(f(s.inputs["obs"][0]), f(s.inputs["obs_next"][0]), f(s.inputs["act_prev"][0]), b64)
        worst["tau"] = max(worst["tau"], float(np.max(np.abs(s.outputs["tau_mean"][0] - tau[0].numpy()) / scale)))
        worst["var"] = max(worst["var"], float(np.max(np.abs(s.outputs["tau_var"][0] / var[0].numpy() - 1))))
        worst["belief"] = max(worst["belief"], float(np.max(np.abs(s.outputs["belief_out"][0] - b64[0].numpy()))
                                                     / max(1.0, float(b64.abs().max()))))
        # the ONNX graph runs on its own belief, the reference on its own: errors must not grow
        s.inputs["belief"][0] = s.outputs["belief_out"][0]
        o, a = o_next, a + 0.02 * stats.act_std * rng.standard_normal(N)
    assert max(worst.values()) < 2e-4, worst
    # the point of the hand-built graph: far fewer nodes than torch's export of the same step
    torch_path = tmp_path / "torch.onnx"
    export.export_torch_onnx(InverseStep(model, stats).eval(), torch_path)
    n_lean, n_torch = len(onnx.load(out / "model.onnx").graph.node), len(onnx.load(torch_path).graph.node)
    assert n_lean < 0.7 * n_torch, (n_lean, n_torch)


def test_convert_rewrites_a_torch_export_in_place_and_refuses_what_it_cannot_reproduce(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    model, _stats, ckpt = _setup("absolute", rng)
    with monkeypatch.context() as mp:     # a model directory as the earlier exporter wrote it
        mp.setattr(export, "lean_supported", lambda step: False)
        out = write_model_dir(model, ckpt, tmp_path / "m")
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["acrkn"]["graph"] == "torch_export"
    before = rollout(out / "model.onnx", ModelMetadata.read(out), steps=100)
    old_bytes = (out / "model.onnx").read_bytes()
    # refused: a bound nothing can meet leaves the directory as it was
    monkeypatch.setattr(acrkn_graph, "CONVERT_RTOL", 0.0)
    with pytest.raises(ValueError, match="differs"):
        convert_model_dir(out, check_steps=50)
    assert (out / "model.onnx").read_bytes() == old_bytes
    assert json.loads((out / "metadata.json").read_text()) == meta
    assert not (out.parent / f".{out.name}.lean.onnx").exists()
    monkeypatch.setattr(acrkn_graph, "CONVERT_RTOL", 2e-4)
    diff = convert_model_dir(out, check_steps=100)
    assert max(diff.values()) < 2e-4
    meta2 = json.loads((out / "metadata.json").read_text())
    assert meta2["acrkn"]["graph"] == GRAPH_NAME and meta2["acrkn"]["graph_conversion"]["max_rel_diff"] == diff
    assert meta2["model_version"] == meta["model_version"] + 1
    # the same golden inputs, outputs re-recorded from the new graph; everything else unchanged
    assert meta2["golden"]["steps"] == meta["golden"]["steps"] and meta2["golden"]["state"] == meta["golden"]["state"]
    same = ("golden", "model_version", "acrkn")
    assert {k: v for k, v in meta2.items() if k not in same} == {k: v for k, v in meta.items() if k not in same}
    assert {k: v for k, v in meta2["acrkn"].items() if k not in ("graph", "graph_conversion")} == \
        {k: v for k, v in meta["acrkn"].items() if k != "graph"}
    after = rollout(out / "model.onnx", ModelMetadata.read(out), steps=100)
    scale = np.asarray(meta["normalization"]["act_std"])
    assert np.max(np.abs(after["tau_mean"] - before["tau_mean"]) / scale) < 2e-4
    assert not (out.parent / f".{out.name}.lean.onnx").exists()
    with pytest.raises(ValueError, match="already"):
        convert_model_dir(out)


def test_bench_graph_ab_times_both_graphs_of_one_step(tmp_path):
    """dynlearn-ros bench model's A/B entry: both graphs of the same step, node counts recorded,
    the ratio computed from the two medians (the timing itself is the benchmark's business)."""
    from dynlearn_ros.benchmarks.model import _graph_ab

    model, stats, _ = _setup("difference", np.random.default_rng(4))
    res = _graph_ab(InverseStep(model, stats).eval(), tmp_path, steps=300, warm=20)
    t, lean = res["acrkn_inverse_graph_torch_export"], res["acrkn_inverse_graph_lean"]
    assert lean["nodes"] < t["nodes"]
    assert t["n"] == lean["n"] == 300
    assert 0 < lean["p50_us"] <= lean["p99_us"]
    assert lean["ratio_p50_to_torch_export"] == pytest.approx(lean["p50_us"] / t["p50_us"])
