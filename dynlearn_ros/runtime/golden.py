"""The golden input/output sequence of a model directory: recorded at export, replayed at load.

``golden.npz`` holds, for a sequence of T steps, every graph input ``in.<name>`` (T, *shape)
float32 as it was fed and every graph output ``out.<name>`` (T, *shape) float32 as the exported
graph computed it (optional ``ref.<name>`` arrays: an exporter's float64 reference, a record
only). Recurrent models (metadata ``golden.state``, e.g. ``{"belief": "belief_out"}``) start
from the initial belief; at replay step t > 0 those inputs are the replayed outputs of step t-1,
so the replay checks the recurrence the controller runs, not only single steps.

Tolerance (:data:`GOLDEN_RTOL`): the file is replayed through the same ``model.onnx`` (float32)
with onnxruntime; on the machine that recorded it the result is bit-identical (the shipped models
replay with deviation 0). On another CPU onnxruntime's MLAS kernels (SSE / AVX2 / AVX-512 / NEON)
may sum in another order, so the result moves within the float32 graph's own rounding error.
That error is measured: against float64 references the shipped graphs deviate by at most
~1e-4 of an output's scale (SVDKL vs gpytorch: 6e-5 of the std for the mean, 8e-5 relative for
the variance; the lean ac-RKN graph vs the torch export over 250 recurrent steps: 9.4e-5), so two
float32 evaluations differ by at most about twice that. GOLDEN_RTOL = 1e-3 leaves a factor ~5.
An element passes when |got - ref| <= GOLDEN_RTOL * (max_t |ref[:, e]| + GOLDEN_FLOOR * max |ref|):
relative to the element's own scale over the sequence, with a floor at 1e-3 of the tensor's scale
for elements that stay near zero (cancellation leaves an absolute error of the terms' size
there). A broken export (other weights, another graph, a perturbed initializer) misses by far
more (test/unit/test_model_dir.py perturbs one weight tensor by 1 %).
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from dynlearn_ros.runtime.errors import GoldenMismatchError, ModelLoadError
from dynlearn_ros.runtime.metadata import GOLDEN_FILE, GoldenSpec, ModelMetadata
from dynlearn_ros.runtime.onnx_step import OnnxStep

GOLDEN_RTOL = 1e-3
GOLDEN_FLOOR = 1e-3
#: steps of a recurrent model's golden sequence
GOLDEN_STEPS = 8


def run_sequence(step: OnnxStep, inputs: Mapping[str, np.ndarray],
                 state: Mapping[str, str] | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Run ``step`` over T steps: ``inputs[name]`` (T, *shape) for every graph input; the inputs
    named in ``state`` take, from step 1 on, the previous step's output they map to. Returns
    (the inputs as fed, every output), both name -> (T, *shape) float32."""
    state = dict(state or {})
    steps = {len(v) for v in inputs.values()}
    if len(steps) != 1 or set(inputs) != set(step.inputs):
        raise ValueError(f"golden inputs {sorted(inputs)} (lengths {sorted(steps)}) do not cover the graph inputs "
                         f"{sorted(step.inputs)} with one length")
    T = steps.pop()
    fed = {name: np.zeros((T, *buf.shape), dtype=np.float32) for name, buf in step.inputs.items()}
    out = {name: np.zeros((T, *buf.shape), dtype=np.float32) for name, buf in step.outputs.items()}
    for t in range(T):
        for name, buf in step.inputs.items():
            buf[...] = out[state[name]][t - 1] if (t > 0 and name in state) else inputs[name][t]
            fed[name][t] = buf
        step.run()
        for name, buf in step.outputs.items():
            out[name][t] = buf
    return fed, out


def write_golden(model_dir: Path, inputs: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray],
                 state: Mapping[str, str] | None = None,
                 reference: Mapping[str, np.ndarray] | None = None) -> GoldenSpec:
    """Write ``model_dir/golden.npz`` (inputs as fed, float32; outputs float32; optional float64
    reference arrays) and return its :class:`GoldenSpec` (sha256 of the file's bytes)."""
    arrays = {f"in.{k}": np.asarray(v, dtype=np.float32) for k, v in inputs.items()}
    arrays |= {f"out.{k}": np.asarray(v, dtype=np.float32) for k, v in outputs.items()}
    arrays |= {f"ref.{k}": np.asarray(v, dtype=np.float64) for k, v in (reference or {}).items()}
    buf = io.BytesIO()   # an .npz written with fixed zip timestamps: the same arrays give the same bytes
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for key, arr in arrays.items():
            with zf.open(zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0)), "w") as f:
                np.lib.format.write_array(f, np.ascontiguousarray(arr), allow_pickle=False)
    data = buf.getvalue()
    (Path(model_dir) / GOLDEN_FILE).write_bytes(data)
    steps = len(next(iter(outputs.values())))
    return GoldenSpec(GOLDEN_FILE, hashlib.sha256(data).hexdigest(), steps, dict(state or {}))


def load_golden(model_dir: Path, meta: ModelMetadata) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(inputs, outputs) of the directory's golden file, checked against the metadata: sha256,
    an array per graph input and output, shapes (steps, *tensor shape)."""
    path = Path(model_dir) / meta.golden.file
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"{path}: golden file unreadable: {exc}") from exc
    sha = hashlib.sha256(data).hexdigest()
    if sha != meta.golden.sha256:
        raise ModelLoadError(f"{path}: sha256 {sha[:16]}... differs from metadata golden.sha256 "
                             f"{meta.golden.sha256[:16]}... (file replaced or corrupt)")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise ModelLoadError(f"{path}: not a readable .npz: {exc}") from exc
    ins, outs = {}, {}
    for prefix, specs, table in (("in.", meta.inputs, ins), ("out.", meta.outputs, outs)):
        for t in specs:
            arr = arrays.get(prefix + t.name)
            want = (meta.golden.steps, *t.shape)
            if arr is None or arr.shape != want:
                got = None if arr is None else arr.shape
                raise ModelLoadError(f"{path}: array '{prefix}{t.name}' is {got}, expected shape {want}")
            table[t.name] = arr
    return ins, outs


def tolerance(ref: np.ndarray) -> np.ndarray:
    """Per element of one step, the tolerance scale of a recorded output sequence ``ref`` (T, ...)
    (module docstring): GOLDEN_RTOL * (max_t |ref| + GOLDEN_FLOOR * max |ref|), float64, at least
    float32's smallest normal (an all-zero output still compares)."""
    elem = np.max(np.abs(ref.astype(np.float64)), axis=0)
    scale = GOLDEN_RTOL * (elem + GOLDEN_FLOOR * float(np.max(elem)))
    return np.where(scale > 0, scale, np.finfo(np.float32).tiny)


def compare(got: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Per output: max over elements of |got - ref| / tolerance scale (module docstring); <= 1
    everywhere means the replay agrees to GOLDEN_RTOL."""
    worst = {}
    for name, r in ref.items():
        r64 = r.astype(np.float64)
        g64 = got[name].astype(np.float64)
        if not np.isfinite(g64).all():
            worst[name] = float("inf")
            continue
        worst[name] = float(np.max(np.abs(g64 - r64) / tolerance(r64)))
    return worst


def replay_golden(step: OnnxStep, model_dir: Path, meta: ModelMetadata) -> dict[str, float]:
    """Replay the golden sequence through ``step``; raise GoldenMismatchError naming the output,
    step and element that misses. Returns :func:`compare`'s figures (all <= 1)."""
    ins, outs = load_golden(model_dir, meta)
    _fed, got = run_sequence(step, ins, meta.golden.state)
    worst = compare(got, outs)
    for name, w in worst.items():
        if not w <= 1.0:
            r, g = outs[name].astype(np.float64), got[name].astype(np.float64)
            t, *e = (int(i) for i in np.unravel_index(int(np.nanargmax(np.where(np.isfinite(g), np.abs(g - r), np.inf))),
                                                      r.shape))
            raise GoldenMismatchError(
                f"{model_dir}: golden output '{name}' step {t} element {tuple(e)}: got {g[(t, *e)]:.7g}, "
                f"recorded {r[(t, *e)]:.7g} ({w:.3g} x the tolerance, GOLDEN_RTOL {GOLDEN_RTOL}): the graph does "
                "not compute what was exported")
    return worst


def acrkn_golden_inputs(meta_inputs: Mapping[str, tuple[int, ...]], normalization: Mapping, initial_belief,
                        role: str, steps: int = GOLDEN_STEPS, seed: int = 0) -> dict[str, np.ndarray]:
    """A deterministic golden input sequence for an ac-RKN step graph, inside its training
    distribution: observations and actions at mean + 0.5 std (normalization statistics) of a
    seeded normal draw, desired next observations 0.01 std away (one-step changes), the belief
    starting at ``initial_belief`` (later steps are fed back). Forward models get a missing
    observation (valid = 0) at steps 4 and 5. Shapes from ``meta_inputs`` (name -> shape)."""
    rng = np.random.default_rng(seed)
    om, os_ = np.asarray(normalization["obs_mean"]), np.asarray(normalization["obs_std"])
    am, as_ = np.asarray(normalization["act_mean"]), np.asarray(normalization["act_std"])
    obs = om + 0.5 * os_ * rng.standard_normal((steps, om.size))
    act = am + 0.5 * as_ * rng.standard_normal((steps, am.size))
    belief = np.zeros((steps, *meta_inputs["belief"]))
    belief[0, 0] = np.asarray(initial_belief)
    if role == "inverse":
        seq = {"obs": obs, "obs_next": obs + 0.01 * os_ * rng.standard_normal((steps, om.size)),
               "act_prev": act, "belief": belief}
    else:
        valid = np.ones((steps, 1))
        valid[4:6] = 0.0
        seq = {"obs": obs, "valid": valid, "act": act, "belief": belief}
    return {k: np.asarray(v, dtype=np.float32).reshape(steps, *meta_inputs[k]) for k, v in seq.items()}
