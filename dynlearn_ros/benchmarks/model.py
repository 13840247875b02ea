"""Per-step model latency (``dynlearn-ros bench model --json PATH``): latency (us, p50 / p99) in one run of

* the exported ac-RKN inverse step through the runtime predictor (onnxruntime, one thread,
  IOBinding on preallocated buffers) and through a plain ``session.run`` with fresh feeds (naive),
* the exported ac-RKN forward step through :class:`AcrknForwardPredictor`,
* the same inverse step in torch eager (one thread) for comparison,
* Pinocchio RNEA on the KUKA iiwa of pybullet_data (the analytic floor),
* an empty ONNX graph (Identity) through onnxruntime: the fixed per-call cost,
* SVDKL (:mod:`dynlearn_ros.benchmarks.svdkl`) under the key "svdkl".

The machine is shared: compare ratios inside one JSON (``ratio_to_rnea``), not absolute numbers
across runs. Goal from the issue: ac-RKN inverse step <= 50 us p99.
"""

from __future__ import annotations

import json
import platform
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from dynlearn_ros.benchmarks.timing import time_calls


def _fresh_model_dir(direction: str, tmp: Path) -> Path:
    """Untrained model of the shipped sizes (latency does not depend on the weights)."""
    import torch

    from dynlearn_ros.datasets.normalize import Stats
    from dynlearn_ros.learning.export.acrkn import write_model_dir
    from dynlearn_ros.learning.models.sequence import ModelConfig, build_model

    n = 7 if direction == "inverse" else 4
    d_o, d_a = (2 * n, n) if direction == "inverse" else (n, 8)
    kind = "acrkn-inv" if direction == "inverse" else "acrkn-fwd"
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind, direction, d_o, d_a))
    one = lambda d: np.ones(d)  # noqa: E731
    zero = lambda d: np.zeros(d)  # noqa: E731
    stats = Stats(zero(d_o), one(d_o), zero(d_a), one(d_a), zero(d_o), one(d_o), zero(d_a), one(d_a))
    ckpt = {"stats": stats.to_dict(), "model_config": model.cfg.to_dict(), "dt": 1e-3,
            "joint_names": [f"joint{i + 1}" for i in range(n)],
            "train_config": {"kind": kind, "direction": direction, "obs_qd": False, "seed": 0}}
    return write_model_dir(model, ckpt, tmp / direction)


def _default_dir(explicit: str | None, shipped: str, direction: str, tmp: Path) -> tuple[Path, str]:
    if explicit:
        return Path(explicit), "given"
    from dynlearn_ros.paths import models_dir

    try:
        cand = models_dir() / shipped
        if (cand / "model.onnx").is_file():
            return cand, "shipped"
    except FileNotFoundError:
        pass
    return _fresh_model_dir(direction, tmp), "fresh export (untrained, shipped sizes)"


def _graph_ab(tstep, tmp: Path, steps: int, warm: int, rounds: int = 3) -> dict:
    """OnnxStep.run of the two graphs of one inverse step, timed in alternating rounds (so drift
    of a shared machine's load hits both); p50 / p99 = medians over the rounds."""
    import onnx

    from dynlearn_ros.learning.export.acrkn import export_torch_onnx
    from dynlearn_ros.learning.export.acrkn_graph import build_inverse_graph
    from dynlearn_ros.learning.export.acrkn_weights import weights_from_step
    from dynlearn_ros.runtime.onnx_step import OnnxStep

    export_torch_onnx(tstep, tmp / "ab_torch.onnx")
    onnx.save(build_inverse_graph(weights_from_step(tstep)), str(tmp / "ab_lean.onnx"))
    files = {"acrkn_inverse_graph_torch_export": tmp / "ab_torch.onnx", "acrkn_inverse_graph_lean": tmp / "ab_lean.onnx"}
    runs = {k: OnnxStep(f) for k, f in files.items()}
    got: dict[str, list[dict]] = {k: [] for k in runs}
    for _ in range(rounds):
        for k, st in runs.items():
            got[k].append(time_calls(st.run, max(steps // rounds, 100), warm))
    res = {k: {"p50_us": float(np.median([r["p50_us"] for r in v])), "p99_us": float(np.median([r["p99_us"] for r in v])),
               "n": int(sum(r["n"] for r in v)), "nodes": len(onnx.load(str(files[k])).graph.node)}
           for k, v in got.items()}
    t, lean = res["acrkn_inverse_graph_torch_export"], res["acrkn_inverse_graph_lean"]
    lean["ratio_p50_to_torch_export"] = lean["p50_us"] / t["p50_us"]
    lean["ratio_p99_to_torch_export"] = lean["p99_us"] / t["p99_us"]
    return res


def bench_model(steps: int = 5000, warmup: int = 500, inverse_dir: str | None = None,
                forward_dir: str | None = None, n_calls: int = 5000) -> dict:
    """Per-step latencies (us, p50 / p99 over ``steps`` calls after ``warmup``) of the entries in
    the module docstring; model directories default to the shipped ones, else fresh exports;
    ``n_calls`` per SVDKL entry. Returns the result dict (``goal_met``: inverse step p99 <= 50 us)."""
    import onnx
    import onnxruntime as ort
    import torch

    from dynlearn_ros.core.inverse_model import InverseQuery
    from dynlearn_ros.datasets.normalize import Stats
    from dynlearn_ros.learning.export.acrkn import InverseStep, initial_belief
    from dynlearn_ros.learning.models.sequence import ModelConfig, build_model
    from dynlearn_ros.runtime.acrkn import AcrknForwardPredictor, AcrknInversePredictor
    from dynlearn_ros.runtime.onnx_step import make_session

    torch.set_num_threads(1)
    warm = warmup
    rng = np.random.default_rng(0)
    out: dict = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "python": platform.python_version(),
                 "onnxruntime": ort.__version__, "torch": torch.__version__, "threads": 1,
                 "steps": steps, "goal": "acrkn inverse step p99 <= 50 us"}
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        inv_dir, inv_src = _default_dir(inverse_dir, "acrkn_panda_inv", "inverse", tmp)
        fwd_dir, fwd_src = _default_dir(forward_dir, "acrkn_pneumatic_fwd", "forward", tmp)
        meta = json.loads((inv_dir / "metadata.json").read_text())
        names = tuple(meta["joint_names"])
        n = len(names)
        pred = AcrknInversePredictor.from_directory(inv_dir, names)
        q = InverseQuery(n)
        q.q[:] = rng.normal(0, 0.3, n)
        mean, std = np.zeros(n), np.zeros(n)
        out["acrkn_inverse_runtime"] = {**time_calls(lambda: pred.predict(q, mean, std), steps, warm),
                                        "model": str(inv_dir), "source": inv_src,
                                        "lod": meta["acrkn"]["model_config"]["lod"]}
        # naive: a plain session.run with fresh feeds every call
        sess = make_session(inv_dir / "model.onnx")
        feeds = {i.name: np.zeros(i.shape, np.float32) for i in sess.get_inputs()}
        feeds["belief"] = np.asarray(meta["acrkn"]["initial_belief"], np.float32)[None]

        def naive() -> None:
            f = {k: v.copy() for k, v in feeds.items()}
            sess.run(None, f)
        out["acrkn_inverse_onnx_naive"] = time_calls(naive, steps, warm)
        # torch eager, same step
        model = build_model(ModelConfig.from_dict(meta["acrkn"]["model_config"])).eval()
        norm = {k: v for k, v in meta["normalization"].items() if k != "applied_in_graph"}
        tstep = InverseStep(model, Stats.from_dict(norm)).eval()
        ins = (torch.zeros(1, 2 * n), torch.zeros(1, 2 * n), torch.zeros(1, n), initial_belief(model)[None])

        def eager() -> None:
            with torch.no_grad():
                tstep(*ins)
        out["acrkn_inverse_torch_eager"] = time_calls(eager, max(steps // 5, 200), warm // 5)
        # graph A/B, same step and sizes: torch.onnx.export vs the hand-built graph (learning.export.acrkn_graph)
        out.update(_graph_ab(tstep, tmp, steps, warm))
        # forward step
        fmeta = json.loads((fwd_dir / "metadata.json").read_text())
        fpred = AcrknForwardPredictor.from_directory(fwd_dir)
        obs = np.zeros(fpred.obs_dim)
        act = np.zeros(fpred.act_dim)
        fm, fv = np.zeros(fpred.obs_dim), np.zeros(fpred.obs_dim)
        out["acrkn_forward_runtime"] = {**time_calls(lambda: fpred.predict(obs, act, fm, fv), steps, warm),
                                        "model": str(fwd_dir), "source": fwd_src,
                                        "lod": fmeta["acrkn"]["model_config"]["lod"]}
        # empty graph: the fixed onnxruntime per-call cost
        x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 8])
        y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 8])
        g = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "empty", [x], [y])
        mp = onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", 18)], ir_version=10)
        onnx.save(mp, tmp / "empty.onnx")
        es = make_session(tmp / "empty.onnx")
        xe = {"x": np.zeros((1, 8), np.float32)}
        out["onnx_empty_graph"] = time_calls(lambda: es.run(None, xe), steps, warm)
    # Pinocchio RNEA on the iiwa (analytic floor)
    import pinocchio as pin
    import pybullet_data

    urdf = Path(pybullet_data.getDataPath()) / "kuka_iiwa" / "model.urdf"
    pm = pin.buildModelFromUrdf(str(urdf))
    pd = pm.createData()
    qq, vv, aa = pin.neutral(pm), np.zeros(pm.nv), np.zeros(pm.nv)
    out["pinocchio_rnea_iiwa"] = time_calls(lambda: pin.rnea(pm, pd, qq, vv, aa), steps, warm)
    floor = out["pinocchio_rnea_iiwa"]["p50_us"]
    for v in list(out.values()):
        if isinstance(v, dict) and "p50_us" in v:
            v["ratio_to_rnea_p50"] = v["p50_us"] / floor
    out["goal_met"] = out["acrkn_inverse_runtime"]["p99_us"] <= 50.0
    from dynlearn_ros.benchmarks.svdkl import bench as bench_svdkl

    out["svdkl"] = bench_svdkl(n_calls)
    return out
