"""The model the online learner corrects: how it is evaluated on samples and how the correction
is attached to its graph (:mod:`dynlearn_ros.learning.online`).

The learner sees samples x = [q, qd, a] (3n,) (a: the measured acceleration of the step) and
y = tau (n,), the torque applied over that step, in order. Each base kind says

* ``predict(x, y, contiguous)``: its mean torque (m, n) N*m on those samples, in order;
* ``x_mean, x_std`` (3n,) and ``y_std`` (n,): scales for the correction's features and targets;
* ``graph_x(ops_nodes, inits)``: the ONNX nodes that build the correction's input x (1, 3n) from
  the graph's own inputs, and the names of its mean and variance outputs;
* ``golden()``: the golden input sequence of the composed graph (and its recurrent state map).

Kinds:

* :class:`SvdklBase` (``svdkl``): stateless, input x itself; evaluated in one batch when the
  graph admits it (:func:`batched_base_session`).
* :class:`AcrknBase` (``acrkn``, role inverse): recurrent; tau_t = f(o_t, o_{t+1}, tau_{t-1};
  belief). On samples, o_{t+1} is the measured next state written as the controller writes its
  desired one ("increment": qd_{t+1} = qd_t + a dt, q_{t+1} = q_t + dt qd_{t+1}; the simulator's
  semi-implicit step), tau_{t-1} the previous sample's torque, and the belief is carried from
  sample to sample across cycles (reset to the initial belief where samples are not contiguous).
  In the graph, x = [o_t, (qd_{t+1} - qd_t) / dt]: the acceleration the model is asked for.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from dynlearn_ros.runtime.golden import acrkn_golden_inputs
from dynlearn_ros.runtime.metadata import MODEL_FILE, ModelMetadata
from dynlearn_ros.runtime.onnx_step import OnnxStep


class SvdklBase:
    """An SVDKL inverse model directory (input x (1, 3n); outputs mean, var (1, n))."""

    kind = "svdkl"
    mean_out, var_out = "mean", "var"

    def __init__(self, model_dir: Path, meta: ModelMetadata, step: OnnxStep) -> None:
        self.model_dir, self.meta, self.step, self.n = model_dir, meta, step, meta.n_joints
        nz = meta.normalization
        self.x_mean, self.x_std = np.asarray(nz["x_mean"]), np.asarray(nz["x_std"])
        self.y_std = np.asarray(nz["y_std"])
        self.batch = batched_base_session(model_dir, step, self.x_mean, self.x_std)

    def predict(self, x: np.ndarray, y: np.ndarray | None = None, contiguous: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """Mean (m, n) N*m and var (m, n) (N*m)^2 at x (m, 3n); y, contiguous unused."""
        if self.batch is not None and len(x):
            outs = [self.batch.run(["mean", "var"], {"x": x[i:i + 4096].astype(np.float32)})
                    for i in range(0, len(x), 4096)]
            return (np.concatenate([o[0] for o in outs]).astype(np.float64),
                    np.concatenate([o[1] for o in outs]).astype(np.float64))
        st = self.step
        mean, var = np.zeros((len(x), self.n)), np.zeros((len(x), self.n))
        for i, row in enumerate(x):
            st.inputs["x"][0] = row
            st.run()
            mean[i], var[i] = st.outputs["mean"][0], st.outputs["var"][0]
        return mean, var

    def graph_x(self, nodes: list, inits: list) -> str:
        """Name of the correction's input (1, 3n) in the graph: the graph's own x."""
        return "x"

    def golden(self, x_recent: np.ndarray) -> tuple[dict, dict | None, np.ndarray]:
        """(golden inputs name -> (T, 1, ...), recurrent state map, x (T, 3n) the steps mean)."""
        gx = x_recent[-min(len(x_recent), 16):]
        return {"x": gx[:, None, :].astype(np.float32)}, None, gx

    def reference(self, golden_inputs: dict) -> np.ndarray:
        """The base graph's mean (T, n) over the golden sequence (float64)."""
        return self.predict(golden_inputs["x"][:, 0, :].astype(np.float64))[0]


class AcrknBase:
    """An ac-RKN inverse model directory (inputs obs, obs_next (1, 2n), act_prev (1, n), belief;
    outputs tau_mean, tau_var (1, n), belief_out)."""

    kind = "acrkn"
    mean_out, var_out = "tau_mean", "tau_var"

    def __init__(self, model_dir: Path, meta: ModelMetadata, step: OnnxStep) -> None:
        if meta.role != "inverse":
            raise ValueError(f"{model_dir}: online learning corrects inverse models, this one is {meta.role}")
        if meta.specific.get("desired_next", "increment") != "increment":
            raise ValueError(f"{model_dir}: online learning needs desired_next 'increment' (the sample's "
                             "next state is written that way)")
        self.model_dir, self.meta, self.step, self.n = model_dir, meta, step, meta.n_joints
        n = self.n
        self.dt = float(meta.dt)
        nz = meta.normalization
        om, os_ = np.asarray(nz["obs_mean"]), np.asarray(nz["obs_std"])
        dm, ds = np.asarray(nz["dobs_mean"]), np.asarray(nz["dobs_std"])
        # acceleration scale: the one-step velocity change over dt
        self.x_mean = np.concatenate([om, dm[n:] / self.dt])
        self.x_std = np.concatenate([os_, ds[n:] / self.dt])
        self.y_std = np.asarray(nz["act_std"])
        self.initial_belief = np.asarray(meta.specific["initial_belief"], dtype=np.float32)
        self.belief = self.initial_belief.copy()
        self.tau_prev: np.ndarray | None = None

    def predict(self, x: np.ndarray, y: np.ndarray, contiguous: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and var (m, n) over samples in order, carrying the belief from the previous call;
        ``contiguous`` (m,) bool: False where a sample does not follow the previous one (the
        belief restarts there)."""
        n, dt, st = self.n, self.dt, self.step
        mean, var = np.zeros((len(x), n)), np.zeros((len(x), n))
        obs, nxt, act, bel = (st.inputs[k][0] for k in ("obs", "obs_next", "act_prev", "belief"))
        for i, row in enumerate(x):
            if self.tau_prev is None or (contiguous is not None and not contiguous[i]):
                self.belief[:] = self.initial_belief
                self.tau_prev = y[i]        # the best guess of the torque before the first sample
            q, qd, a = row[:n], row[n:2 * n], row[2 * n:]
            obs[:n], obs[n:] = q, qd
            qdn = qd + a * dt
            nxt[:n], nxt[n:] = q + dt * qdn, qdn
            act[:] = self.tau_prev
            bel[:] = self.belief
            st.run()
            mean[i], var[i] = st.outputs["tau_mean"][0], st.outputs["tau_var"][0]
            self.belief[:] = st.outputs["belief_out"][0]
            self.tau_prev = y[i]
        return mean, var

    def graph_x(self, nodes: list, inits: list) -> str:
        """Nodes building x = [obs, (obs_next[n:] - obs[n:]) / dt] (1, 3n); returns its name."""
        n = self.n
        inits += [numpy_helper.from_array(np.array([n], dtype=np.int64), "oc_ax_n"),
                  numpy_helper.from_array(np.array([2 * n], dtype=np.int64), "oc_ax_2n"),
                  numpy_helper.from_array(np.array([1], dtype=np.int64), "oc_ax_axis"),
                  numpy_helper.from_array(np.full((1, 1), self.dt, dtype=np.float32), "oc_ax_dt")]
        nodes += [helper.make_node("Slice", ["obs", "oc_ax_n", "oc_ax_2n", "oc_ax_axis"], ["oc_ax_qd"]),
                  helper.make_node("Slice", ["obs_next", "oc_ax_n", "oc_ax_2n", "oc_ax_axis"], ["oc_ax_qdn"]),
                  helper.make_node("Sub", ["oc_ax_qdn", "oc_ax_qd"], ["oc_ax_dqd"]),
                  helper.make_node("Div", ["oc_ax_dqd", "oc_ax_dt"], ["oc_ax_a"]),
                  helper.make_node("Concat", ["obs", "oc_ax_a"], ["oc_x_in"], axis=1)]
        return "oc_x_in"

    def golden(self, x_recent: np.ndarray) -> tuple[dict, dict | None, np.ndarray]:
        shapes = {t.name: tuple(t.shape) for t in self.meta.inputs}
        ins = acrkn_golden_inputs(shapes, self.meta.normalization, self.initial_belief, "inverse")
        n = self.n
        obs, nxt = ins["obs"][:, 0].astype(np.float64), ins["obs_next"][:, 0].astype(np.float64)
        x = np.concatenate([obs, (nxt[:, n:] - obs[:, n:]) / self.dt], axis=1)
        return ins, {"belief": "belief_out"}, x

    def reference(self, golden_inputs: dict) -> np.ndarray:
        from dynlearn_ros.runtime.golden import run_sequence

        # the base's own session (no new one per export): run_sequence feeds every input of every
        # step, and predict() writes all four inputs before each run, so neither sees the other's
        _fed, out = run_sequence(self.step, golden_inputs, {"belief": "belief_out"})
        return out["tau_mean"][:, 0].astype(np.float64)


def make_base(model_dir: Path, meta: ModelMetadata, step: OnnxStep):
    """The adapter of ``meta.kind`` (svdkl, acrkn); ValueError for another kind."""
    kinds = {"svdkl": SvdklBase, "acrkn": AcrknBase}
    if meta.kind not in kinds:
        raise ValueError(f"{model_dir}: online learning corrects {sorted(kinds)} models, got {meta.kind}")
    return kinds[meta.kind](model_dir, meta, step)


def batched_base_session(model_dir: Path, step: OnnxStep, x_mean: np.ndarray, x_std: np.ndarray, rows: int = 8):
    """An onnxruntime session of ``model_dir``'s graph with a free batch dimension, or None.

    The exported graphs have static batch-1 shapes (the controller's IOBinding wants them); the
    trainer evaluates the base model on hundreds of samples per cycle, row by row ~100 us each.
    This copy frees dimension 0 of x, mean and var and rewrites the output Reshapes to a (1, n)
    constant (the SVDKL export's (n, B, 1) -> (1, n)) as Reshape (n, -1) + Transpose: the same
    values for B = 1. It is used only if it reproduces the batch-1 step on ``rows`` inputs drawn
    around the data (x_mean +- x_std, (3n,)) to float32 rounding; any failure: None (row by row)."""
    try:
        import onnxruntime as ort

        proto = onnx.load(str(Path(model_dir) / MODEL_FILE))
        g = proto.graph
        consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        n = int(step.outputs["mean"].shape[1])
        g.initializer.append(numpy_helper.from_array(np.array([n, -1], dtype=np.int64), "bb_shape"))
        nodes = []
        for node in g.node:
            shape = consts.get(node.input[1]) if node.op_type == "Reshape" and len(node.input) > 1 else None
            if shape is not None and shape.tolist() == [1, n]:
                out = node.output[0]
                nodes += [helper.make_node("Reshape", [node.input[0], "bb_shape"], [out + "_bb"]),
                          helper.make_node("Transpose", [out + "_bb"], [out], perm=[1, 0])]
            else:
                nodes.append(node)
        del g.node[:]
        g.node.extend(nodes)
        del g.value_info[:]
        for v in [*g.input, *g.output]:
            v.type.tensor_type.shape.dim[0].dim_param = "batch"
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.log_severity_level = 3      # the rewrite leaves the old shape constant unused: not news
        sess = ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        x = (x_mean + x_std * rng.normal(size=(rows, len(x_mean)))).astype(np.float32)
        mean, var = sess.run(["mean", "var"], {"x": x})
        for i in range(rows):
            step.inputs["x"][0] = x[i]
            step.run()
            for got, ref in ((mean[i], step.outputs["mean"][0]), (var[i], step.outputs["var"][0])):
                if not np.allclose(got, ref, rtol=1e-5, atol=1e-5 * (1.0 + float(np.abs(ref).max()))):
                    return None
        return sess
    except Exception:   # a graph this rewrite does not fit: the row-by-row path is always right
        return None
