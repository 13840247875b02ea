"""The one metadata schema of a model directory (``metadata.json``), for every model kind.

A model directory holds ``model.onnx`` (the graph), ``metadata.json`` (this schema) and
``golden.npz`` (a golden input/output sequence recorded at export, see
:mod:`dynlearn_ros.runtime.golden`). Top-level keys (docs/models.md has the table):

    format_version  int, FORMAT_VERSION (this loader reads SUPPORTED_FORMATS)
    model_version   int >= 1; a new export into a directory holding version v writes v + 1
    kind            predictor family, the controller's ``model_kind``: "acrkn" | "svdkl"
    model           architecture: "acrkn-inv" | "acrkn-fwd" | "svdkl" | "svgp" | "ffnn" (static FFNN,
                    kind "svdkl": the same memoryless x -> (mean, var) signature)
    role            "inverse" (torque from state and reference) | "forward" (next observation)
    joint_names     the model's joint order (every per-joint array below is in this order)
    dt              s, the sample period the model was trained at; null for a memoryless model
    inputs/outputs  [{name, shape, dtype, description}] of the ONNX graph, static shapes
    sigma_bounds    {sigma_n, sigma_f (N*m per joint), unit, source} or null: what the gain
                    schedule takes as its sigma_n / sigma_f (0 <= sigma_n < sigma_f); null for a
                    forward model and for an inverse one exported without test metrics (the
                    controller then keeps its configured sigma_n / sigma_f)
    normalization   {applied_in_graph: bool, ...statistics}; every model here folds its
                    normalization into the graph (applied_in_graph true), the statistics are a record
    provenance      {command, data, data_hash, created_utc, package_version, train_config, details}
    metrics         free-form evaluation record (test split)
    golden          {file, sha256, steps, state}: the golden sequence, its hash, and which inputs
                    are fed back from which outputs (recurrent models)
    base            optional: what the graph's mean is added to. Absent or null: nothing (the
                    graph's mean is the whole feed-forward torque, every model before this key).
                    {"kind": "analytic", "robot", "joint_names", "probe": {"x", "tau"}, "urdf"
                    (optional, informational: the fitting URDF's path)}: the
                    graph predicts tau - RNEA_urdf(q, qd, qdd) and the loader adds the RNEA of
                    the controller's own URDF (runtime/analytic_base.py); ``probe`` holds states
                    x (P, 3n) and the RNEA tau (P, n) of the URDF the model was fitted with, so a
                    loader with another robot or URDF refuses the model. Any other kind is refused.
                    Defined for inverse models: svdkl (x = [q, qd, qdd]) and acrkn (RNEA at
                    q, qd of ``obs`` and the acceleration (qd of ``obs_next`` - qd) / dt).
    <kind>          the kind-specific section ("acrkn": model_config, initial_belief, belief_dim,
                    graph, opset, desired_next for inverse; "svdkl": config, opset, ir_version,
                    jitter, novelty if any)

:class:`ModelMetadata` is a frozen dataclass read from / written to that file; every refusal is a
:class:`~dynlearn_ros.runtime.errors.MetadataError` naming the file and the key.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dynlearn_ros.runtime.errors import MetadataError

FORMAT_VERSION = 2
SUPPORTED_FORMATS = (2,)
MODEL_FILE = "model.onnx"
METADATA_FILE = "metadata.json"
GOLDEN_FILE = "golden.npz"

KINDS = ("acrkn", "svdkl")
#: the ``base`` kinds a loader knows (absent / null: no base)
BASE_KINDS = ("analytic",)
MODELS = {"acrkn": ("acrkn-inv", "acrkn-fwd"), "svdkl": ("svdkl", "svgp", "ffnn")}
ROLES = ("inverse", "forward")
DTYPES = ("float32",)
#: keys the kind-specific section must hold (per kind, and per role where it differs)
KIND_KEYS: dict[tuple[str, str], tuple[str, ...]] = {
    ("acrkn", "inverse"): ("model_config", "initial_belief", "belief_dim", "graph", "opset", "desired_next"),
    ("acrkn", "forward"): ("model_config", "initial_belief", "belief_dim", "graph", "opset"),
    ("svdkl", "inverse"): ("config", "opset", "ir_version", "jitter"),
}


class _Reader:
    """Typed access to a JSON object with errors naming the file and the dotted key."""

    def __init__(self, data: Any, source: str, prefix: str = "") -> None:
        if not isinstance(data, dict):
            raise MetadataError(f"{source}: '{prefix.rstrip('.') or '<top>'}' must be an object, got {type(data).__name__}")
        self.data, self.source, self.prefix = data, source, prefix

    def err(self, key: str, what: str) -> MetadataError:
        return MetadataError(f"{self.source}: key '{self.prefix}{key}' {what}")

    def get(self, key: str, types: type | tuple[type, ...], optional: bool = False) -> Any:
        if key not in self.data:
            if optional:
                return None
            raise self.err(key, "is missing")
        value = self.data[key]
        if value is None and optional:
            return None
        # bool is an int in Python; an int field never takes true/false
        ts = _tuple(types)
        if not isinstance(value, ts) or (isinstance(value, bool) and int in ts and bool not in ts):
            raise self.err(key, f"must be {_names(types)}, got {type(value).__name__} {value!r:.60}")
        return value

    def sub(self, key: str, optional: bool = False) -> _Reader | None:
        value = self.get(key, dict, optional)
        return None if value is None else _Reader(value, self.source, f"{self.prefix}{key}.")

    def floats(self, key: str, n: int | None = None) -> tuple[float, ...]:
        values = self.get(key, list)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
            raise self.err(key, "must be a list of finite numbers")
        if n is not None and len(values) != n:
            raise self.err(key, f"has {len(values)} entries, expected {n} (one per joint)")
        return tuple(float(v) for v in values)


def _tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _names(types: type | tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in _tuple(types))


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output: ONNX name, static shape (batch 1 first), dtype, what it holds."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    description: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype, "description": self.description}

    @classmethod
    def parse(cls, r: _Reader) -> TensorSpec:
        shape = r.get("shape", list)
        if not shape or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
            raise r.err("shape", f"must be a non-empty list of positive ints (static shapes), got {shape}")
        dtype = r.get("dtype", str)
        if dtype not in DTYPES:
            raise r.err("dtype", f"is {dtype!r}, supported: {DTYPES}")
        return cls(r.get("name", str), tuple(shape), dtype, r.get("description", str, optional=True) or "")


@dataclass(frozen=True)
class SigmaBounds:
    """Per-joint std bounds in N*m for the gain schedule: sigma_n (confident) < sigma_f (unsure)."""

    sigma_n: tuple[float, ...]
    sigma_f: tuple[float, ...]
    source: str
    unit: str = "N*m"

    def to_dict(self) -> dict:
        return {"sigma_n": list(self.sigma_n), "sigma_f": list(self.sigma_f), "unit": self.unit, "source": self.source}

    @classmethod
    def parse(cls, r: _Reader, n: int) -> SigmaBounds:
        sn, sf = r.floats("sigma_n", n), r.floats("sigma_f", n)
        if r.get("unit", str) != "N*m":
            raise r.err("unit", "must be 'N*m'")
        bad = [j for j in range(n) if not 0.0 <= sn[j] < sf[j]]
        if bad:
            raise r.err("sigma_n", f"must satisfy 0 <= sigma_n < sigma_f per joint; fails at joints {bad}")
        return cls(sn, sf, r.get("source", str), "N*m")


@dataclass(frozen=True)
class Provenance:
    """How the directory was made: the exporting command, the training data (name and hash),
    when (UTC, ISO 8601), by which package version, with which training configuration;
    ``details`` holds the rest (data / training commands, library versions, migrations)."""

    command: str
    data: str
    data_hash: str
    created_utc: str
    package_version: str
    train_config: dict
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"command": self.command, "data": self.data, "data_hash": self.data_hash,
                "created_utc": self.created_utc, "package_version": self.package_version,
                "train_config": self.train_config, "details": self.details}

    @classmethod
    def parse(cls, r: _Reader) -> Provenance:
        return cls(r.get("command", str), r.get("data", str), r.get("data_hash", str), r.get("created_utc", str),
                   r.get("package_version", str), r.get("train_config", dict),
                   r.get("details", dict, optional=True) or {})


@dataclass(frozen=True)
class GoldenSpec:
    """The golden sequence file: name in the directory, sha256 of its bytes, number of steps,
    and ``state``: input name -> output name fed back between steps (empty: memoryless)."""

    file: str
    sha256: str
    steps: int
    state: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"file": self.file, "sha256": self.sha256, "steps": self.steps, "state": dict(self.state)}

    @classmethod
    def parse(cls, r: _Reader) -> GoldenSpec:
        name = r.get("file", str)
        if "/" in name or name.startswith("."):
            raise r.err("file", f"must be a plain file name in the model directory, got {name!r}")
        sha = r.get("sha256", str)
        if len(sha) != 64:
            raise r.err("sha256", "must be 64 hex digits")
        steps = r.get("steps", int)
        if steps < 1:
            raise r.err("steps", "must be >= 1")
        state = r.get("state", dict)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in state.items()):
            raise r.err("state", "must map input names to output names")
        return cls(name, sha, steps, dict(state))


@dataclass(frozen=True)
class ModelMetadata:
    """The parsed metadata.json of a model directory (module docstring). Per-joint arrays are in
    ``joint_names`` order; ``specific`` is the section named after ``kind``."""

    model_version: int
    kind: str
    model: str
    role: str
    joint_names: tuple[str, ...]
    dt: float | None
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    sigma_bounds: SigmaBounds | None
    normalization: dict
    provenance: Provenance
    metrics: dict
    golden: GoldenSpec
    specific: dict
    format_version: int = FORMAT_VERSION
    #: the ``base`` record (module docstring) or None (the graph's mean is the whole torque)
    base: dict | None = None

    @property
    def n_joints(self) -> int:
        return len(self.joint_names)

    def input(self, name: str) -> TensorSpec:
        return next(t for t in self.inputs if t.name == name)

    def output(self, name: str) -> TensorSpec:
        return next(t for t in self.outputs if t.name == name)

    def to_dict(self) -> dict:
        return {
            "format_version": self.format_version, "model_version": self.model_version, "kind": self.kind,
            "model": self.model, "role": self.role, "joint_names": list(self.joint_names), "dt": self.dt,
            "inputs": [t.to_dict() for t in self.inputs], "outputs": [t.to_dict() for t in self.outputs],
            "sigma_bounds": None if self.sigma_bounds is None else self.sigma_bounds.to_dict(),
            "normalization": self.normalization, "provenance": self.provenance.to_dict(),
            "metrics": self.metrics, "golden": self.golden.to_dict(), self.kind: self.specific,
            **({"base": self.base} if self.base is not None else {}),
        }

    def to_json(self) -> str:
        return compact_json(self.to_dict())

    def write(self, model_dir: Path) -> Path:
        """Write ``model_dir/metadata.json`` (after checking the record parses back)."""
        text = self.to_json()
        ModelMetadata.from_dict(json.loads(text), f"{model_dir}/{METADATA_FILE} (to be written)")
        path = Path(model_dir) / METADATA_FILE
        path.write_text(text)
        return path

    @classmethod
    def read(cls, model_dir: Path) -> ModelMetadata:
        path = Path(model_dir) / METADATA_FILE
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MetadataError(f"{path}: unreadable: {exc}") from exc
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: dict, source: str = METADATA_FILE) -> ModelMetadata:
        """Parse and check a metadata object; ``source`` names the file in error messages."""
        r = _Reader(data, source)
        fmt = r.get("format_version", int)
        if fmt not in SUPPORTED_FORMATS:
            hint = " (format 1: run `dynlearn-ros model migrate DIR`)" if fmt == 1 else ""
            raise r.err("format_version", f"is {fmt}, this loader reads {SUPPORTED_FORMATS}{hint}")
        version = r.get("model_version", int)
        if version < 1:
            raise r.err("model_version", f"must be >= 1, got {version}")
        kind = r.get("kind", str)
        if kind not in KINDS:
            raise r.err("kind", f"is {kind!r}, known kinds: {KINDS}")
        model = r.get("model", str)
        if model not in MODELS[kind]:
            raise r.err("model", f"is {model!r}, a {kind} model is one of {MODELS[kind]}")
        role = r.get("role", str)
        if (kind, role) not in KIND_KEYS:
            raise r.err("role", f"is {role!r}; {kind} models here are {[ro for k, ro in KIND_KEYS if k == kind]}")
        names = r.get("joint_names", list)
        if not names or not all(isinstance(s, str) and s for s in names) or len(set(names)) != len(names):
            raise r.err("joint_names", "must be a non-empty list of distinct names")
        dt = r.get("dt", (int, float), optional=True)
        if dt is not None and not (math.isfinite(dt) and dt > 0):
            raise r.err("dt", f"must be a positive number of seconds or null, got {dt}")
        tensors = {}
        for key in ("inputs", "outputs"):
            items = r.get(key, list)
            if not items:
                raise r.err(key, "must list at least one tensor")
            specs = tuple(TensorSpec.parse(_Reader(it, source, f"{key}[{i}].")) for i, it in enumerate(items))
            if len({t.name for t in specs}) != len(specs):
                raise r.err(key, "has duplicate names")
            tensors[key] = specs
        sb = r.sub("sigma_bounds", optional=True)
        if sb is not None and role != "inverse":
            raise r.err("sigma_bounds", f"is for inverse models (torque std), this one is {role}")
        norm = r.get("normalization", dict)
        if not isinstance(norm.get("applied_in_graph"), bool):
            raise r.err("normalization.applied_in_graph", "is missing or not a bool")
        golden = GoldenSpec.parse(r.sub("golden"))
        ins, outs = {t.name for t in tensors["inputs"]}, {t.name for t in tensors["outputs"]}
        for i_name, o_name in golden.state.items():
            if i_name not in ins or o_name not in outs:
                raise r.err("golden.state", f"maps {i_name!r} -> {o_name!r}, not an input -> output of this model")
        spec = r.sub(kind)
        for key in KIND_KEYS[(kind, role)]:
            spec.get(key, object)
        base = _parse_base(r, kind, role, tuple(names))
        return cls(
            model_version=version, kind=kind, model=model, role=role, joint_names=tuple(names),
            dt=None if dt is None else float(dt), inputs=tensors["inputs"], outputs=tensors["outputs"],
            sigma_bounds=None if sb is None else SigmaBounds.parse(sb, len(names)),
            normalization=norm, provenance=Provenance.parse(r.sub("provenance")),
            metrics=r.get("metrics", dict), golden=golden, specific=spec.data, format_version=fmt, base=base)


def _parse_base(r: _Reader, kind: str, role: str, names: tuple[str, ...]) -> dict | None:
    """The ``base`` record checked (module docstring); None when absent or null."""
    b = r.sub("base", optional=True)
    if b is None:
        return None
    base_kind = b.get("kind", str)
    if base_kind not in BASE_KINDS:
        raise b.err("kind", f"is {base_kind!r}; this loader knows the bases {BASE_KINDS} (absent: none)")
    if role != "inverse":
        raise b.err("kind", f"'analytic' is defined for inverse models (svdkl: x = [q, qd, qdd]; acrkn: "
                            f"the acceleration (qd_next - qd) / dt of obs, obs_next), this one is {kind} {role}")
    b.get("robot", str)
    if tuple(b.get("joint_names", list)) != names:
        raise b.err("joint_names", f"must equal the model's joint_names {list(names)}")
    probe = b.sub("probe")
    n = len(names)
    x, tau = probe.get("x", list), probe.get("tau", list)
    rows_ok = (len(x) >= 1 and len(x) == len(tau)
               and all(isinstance(v, list) and len(v) == 3 * n for v in x)
               and all(isinstance(v, list) and len(v) == n for v in tau)
               and all(isinstance(f, (int, float)) and not isinstance(f, bool) and math.isfinite(f)
                       for v in (*x, *tau) for f in v))
    if not rows_ok:
        raise probe.err("x", f"and 'tau' must be equally many rows of {3 * n} and {n} finite numbers")
    return b.data


def read_model_version(model_dir: Path) -> int:
    """model_version of the directory's metadata, 0 if there is none (no directory, no file, a
    format-1 directory, unreadable): the version an export into it supersedes."""
    try:
        data = json.loads((Path(model_dir) / METADATA_FILE).read_text())
        v = data.get("model_version", 0)
        return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0
    except (OSError, ValueError, AttributeError):
        return 0


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, (dict, list, tuple))


def _compact(value: Any, level: int) -> str:
    pad, inner = " " * level, " " * (level + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = (f"{inner}{json.dumps(str(k))}: {_compact(v, level + 1)}" for k, v in value.items())
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, (list, tuple)):
        if all(_is_scalar(v) for v in value):
            return json.dumps(list(value), allow_nan=False)
        rows = (inner + _compact(v, level + 1) for v in value)
        return "[\n" + ",\n".join(rows) + "\n" + pad + "]"
    return json.dumps(value, allow_nan=False)


def compact_json(record: Any) -> str:
    """``record`` as JSON text that reads back equal (``json.loads(compact_json(r)) == r`` for any
    JSON-able r; floats keep their shortest round-trip repr): objects one key per line, indented
    one space per level as before, but a list of scalars on one line, so a table (a list of rows)
    takes one line per row (the forward model's std scale: one line per step instead of one per
    value). Non-finite floats are refused (ValueError) as strict JSON readers would."""
    return _compact(record, 0) + "\n"

