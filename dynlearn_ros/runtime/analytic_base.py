"""The analytic base of a model directory: RNEA of the controller's URDF added to the graph's mean.

A model whose metadata holds ``"base": {"kind": "analytic", ...}`` (runtime/metadata.py) predicts

    tau(q, qd, qdd) = RNEA_urdf(q, qd, qdd) + graph_mean(x),    x = [q, qd, qdd] (3n,)   (N*m)

The graph carries what the URDF does not know (a payload term, friction, the URDF's own error);
the rigid-body part is computed by the loader with Pinocchio from the URDF the *controller* runs,
float64, ~2 us per call. Why not the RNEA as ONNX nodes: the controller already has the model
exactly (the URDF matches PyBullet to 1e-14, DESIGN.md), and float32 nodes would add rounding of
~1e-7 of the ~100 N*m gravity torques to a correction whose whole point is 1e-3 N*m.

The price is a dependency on the loader's URDF, checked at load: the metadata stores ``probe``,
P states x (P, 3n) and the RNEA torques tau (P, n) of the URDF the model was fitted against, and
:func:`check_base` recomputes them with the loader's URDF. Two builds of the same URDF agree to
rounding (~1e-13 relative); PROBE_RTOL = 1e-6 of the probe's largest torque is far above that and
far below any real difference (a 1 % link mass changes gravity torques by ~1e-3 relative; another
robot by order 1). A model with a base is refused by a loader that has no URDF to give it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dynlearn_ros.core.analytic import RigidBodyModel
from dynlearn_ros.runtime.errors import ModelLoadError
from dynlearn_ros.runtime.metadata import ModelMetadata

#: probe agreement, relative to the probe's largest |tau| (module docstring)
PROBE_RTOL = 1e-6
#: number of probe states written at export
PROBE_STATES = 4


def probe_states(n: int) -> np.ndarray:
    """P deterministic states x (P, 3n) = [q (rad), qd (rad/s), qdd (rad/s^2)] spread over the
    joints (no two joints alike, so a swapped joint or axis changes the torques)."""
    j = np.arange(n, dtype=np.float64)
    rows = []
    for p in range(PROBE_STATES):
        q = 0.8 * np.sin(1.3 * j + 0.7 * p + 0.2)
        qd = 0.6 * np.cos(0.9 * j + 1.1 * p)
        qdd = 1.5 * np.sin(0.5 * j - 0.8 * p + 1.0)
        rows.append(np.concatenate([q, qd, qdd]))
    return np.asarray(rows)


_models: dict[tuple[str, tuple[str, ...]], RigidBodyModel] = {}
_models_lock = threading.Lock()


def rigid_body_model(urdf_path: str | Path, joint_names: Sequence[str]) -> RigidBodyModel:
    """A :class:`RigidBodyModel` of ``urdf_path`` for ``joint_names``, its own data and buffers:
    the URDF is parsed once per (path, joints) in a process (a template kept for the process's
    life) and every call clones it. Why: a hot swap of a version on the analytic base built it
    twice per load (the probe check and the loader's term), ~0.8 ms each holding the
    interpreter's lock (session 7), and released one with every retired version. Raises what
    the build raises (ValueError for joints the URDF lacks); a failed build is not cached."""
    key = (str(urdf_path), tuple(joint_names))
    with _models_lock:
        template = _models.get(key)
    if template is None:
        template = RigidBodyModel(urdf_path, joint_names)
        with _models_lock:
            template = _models.setdefault(key, template)
    return template.clone()


def rnea_rows(rbd: RigidBodyModel, x: np.ndarray) -> np.ndarray:
    """RNEA tau (m, n) N*m at the rows x (m, 3n) = [q, qd, qdd] in ``rbd``'s joint order."""
    n = rbd.n
    out = np.zeros((len(x), n))
    for i, row in enumerate(np.asarray(x, dtype=np.float64)):
        rbd.rnea(row[:n], row[n:2 * n], row[2 * n:], out[i])
    return out


def analytic_base_record(robot: str, urdf_path: str | Path, joint_names: Sequence[str]) -> dict:
    """The metadata ``base`` record of an analytic base: robot name, joints, probe (x, tau)."""
    rbd = rigid_body_model(urdf_path, joint_names)
    x = probe_states(len(joint_names))
    return {"kind": "analytic", "robot": robot, "joint_names": list(joint_names), "urdf": str(urdf_path),
            "probe": {"x": x.tolist(), "tau": rnea_rows(rbd, x).tolist()}}


def check_base(meta: ModelMetadata, urdf_path: str | Path | None, where: str | Path) -> RigidBodyModel | None:
    """None for a model without a base; else the loader's URDF model in the model's joint order,
    after checking it reproduces the metadata's probe. ModelLoadError (naming ``where``) when no
    URDF is given or it is another robot / URDF."""
    base = meta.base
    if base is None:
        return None
    if urdf_path is None:
        raise ModelLoadError(f"{where}: the model declares an analytic base (robot {base['robot']!r}): the "
                             "loader must pass the controller's URDF (load_inverse_model(..., urdf=...))")
    try:
        rbd = rigid_body_model(urdf_path, meta.joint_names)
    except Exception as exc:   # a URDF without these joints, unreadable: refuse with the reason
        raise ModelLoadError(f"{where}: analytic base: cannot build {urdf_path} for the model's joints "
                             f"{list(meta.joint_names)}: {exc}") from exc
    x = np.asarray(base["probe"]["x"], dtype=np.float64)
    want = np.asarray(base["probe"]["tau"], dtype=np.float64)
    got = rnea_rows(rbd, x)
    worst = float(np.abs(got - want).max())
    if not worst <= PROBE_RTOL * float(np.abs(want).max()):
        fitted = f"URDF {base['urdf']} of robot {base['robot']!r}" if base.get("urdf") else f"robot {base['robot']!r}"
        raise ModelLoadError(f"{where}: URDF mismatch: analytic base fitted against {fitted}; the loader's URDF "
                             f"{urdf_path} gives other torques at the probe states (max |diff| {worst:.3g} N*m "
                             f"of max |tau| {np.abs(want).max():.3g}): another robot or URDF, refused (the "
                             "trainer's urdf_path must be the controller's)")
    return rbd


class AnalyticBaseTerm:
    """mean += RNEA(q, qd, qdd) in the caller's joint order; its own Pinocchio data (the slot's
    worker may run a candidate's check while the tick runs the active model). No allocation."""

    def __init__(self, urdf_path: str | Path, joint_names: Sequence[str]) -> None:
        self.rbd = rigid_body_model(urdf_path, joint_names)
        self._tau = np.zeros(self.rbd.n)

    def add(self, q: np.ndarray, qd: np.ndarray, qdd: np.ndarray, mean: np.ndarray) -> None:
        """mean (n,) N*m += RNEA(q, qd, qdd)."""
        mean += self.rbd.rnea(q, qd, qdd, self._tau)


def base_term(model, joint_names: Sequence[str]) -> AnalyticBaseTerm:
    """The RNEA term of a validated model (runtime/validate.ValidatedModel) whose metadata declares
    a base, in the predictor's ``joint_names`` order; ModelLoadError when the model was not checked
    against a URDF (``model.base_urdf`` is None)."""
    if model.base_urdf is None:
        raise ModelLoadError(f"{model.model_dir}: the model declares an analytic base; it was not "
                             "checked against a URDF")
    return AnalyticBaseTerm(model.base_urdf, joint_names)


def golden_base_rows(meta: ModelMetadata, ins: dict[str, np.ndarray]) -> tuple[np.ndarray, str]:
    """The base's rows x (T, 3n) = [q, qd, a] at the golden inputs ``ins`` (name -> (T, 1, ...)) and
    the name of the graph's mean output: svdkl x itself ("mean"); acrkn q, qd of ``obs`` and
    a = (qd of ``obs_next`` - qd) / dt ("tau_mean")."""
    if meta.kind == "svdkl":
        return ins["x"][:, 0, :].astype(np.float64), "mean"
    n = meta.n_joints
    obs, nxt = ins["obs"][:, 0, :].astype(np.float64), ins["obs_next"][:, 0, :].astype(np.float64)
    return np.concatenate([obs, (nxt[:, n:] - obs[:, n:]) / float(meta.dt)], axis=1), "tau_mean"


def check_base_golden(model_dir: Path, meta: ModelMetadata, urdf_path: str | Path | None) -> str:
    """Step 7 of :func:`dynlearn_ros.runtime.validate.open_model_dir`: the probe (:func:`check_base`)
    and the golden sequence's whole torque. ``urdf_path`` None: the robot table's URDF of the robot
    the base names. The recorded graph outputs are used (the replay has matched them already):
    full = out.mean + RNEA(in.x) against the exporter's float64 ``ref.full_mean``, to the golden
    tolerance (runtime/golden.py). Returns the URDF path used; ModelLoadError otherwise."""
    from dynlearn_ros.runtime.golden import GOLDEN_RTOL, compare, load_golden

    if urdf_path is None:
        from dynlearn_ros.core.robots import robot_spec

        try:
            urdf_path = robot_spec(meta.base["robot"]).urdf_path
        except Exception as exc:   # an unknown robot name: no URDF to check the base against
            raise ModelLoadError(f"{model_dir}: analytic base of robot {meta.base['robot']!r}: no such robot "
                                 f"here ({exc}); pass the URDF") from exc
    rbd = check_base(meta, urdf_path, model_dir)
    ins, outs = load_golden(model_dir, meta)
    path = Path(model_dir) / meta.golden.file
    with np.load(path, allow_pickle=False) as z:
        if "ref.full_mean" not in z.files:
            raise ModelLoadError(f"{path}: a model with an analytic base records 'ref.full_mean' (the whole "
                                 "torque at the golden inputs); it is missing")
        ref = z["ref.full_mean"]
    x, mean_out = golden_base_rows(meta, ins)
    if ref.shape != (len(x), meta.n_joints):
        raise ModelLoadError(f"{path}: 'ref.full_mean' is {ref.shape}, expected {(len(x), meta.n_joints)}")
    full = outs[mean_out][:, 0, :].astype(np.float64) + rnea_rows(rbd, x)
    worst = compare({"mean": full}, {"mean": ref})["mean"]
    if not worst <= 1.0:
        raise ModelLoadError(f"{model_dir}: graph mean + analytic base misses the recorded whole torque by "
                             f"{worst:.3g} x the golden tolerance (GOLDEN_RTOL {GOLDEN_RTOL}; max |diff| "
                             f"{np.abs(full - ref).max():.3g} N*m): the base is missing, doubled or of another sign")
    return str(urdf_path)
