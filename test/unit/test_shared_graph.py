"""Online versions on one shared onnxruntime session (runtime/shared_graph.py): the same outputs
as a session built from the file, one session for every version of a learner's track, each
version checked with its own parameters, and hot swaps through the controller's deferred slot
that build and release no session. Real versions exported by the online learner from the shipped
SVDKL model, real onnxruntime, a real controller."""

from __future__ import annotations

import threading

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from online_versions import copy_with_initializer, track_versions
from onnx import numpy_helper

from dynlearn_ros.core.assembly import build_analytic, build_controller, build_tuning, builtin_reference
from dynlearn_ros.core.config import robot_context, validate
from dynlearn_ros.runtime import onnx_step, shared_graph
from dynlearn_ros.runtime.errors import ModelLoadError
from dynlearn_ros.runtime.onnx_step import OnnxStep
from dynlearn_ros.runtime.registry import load_inverse_model
from dynlearn_ros.runtime.shared_graph import PARAM_NAMES, ParamStep
from dynlearn_ros.runtime.slot import ModelSlot, check_model
from dynlearn_ros.runtime.validate import open_model_dir

CTX = robot_context("iiwa")
SPEC = CTX.spec
URDF = str(SPEC.urdf_path)
#: float32 rounding of a reordered sum: the two sessions run the same float32 ops on the same
#: values and may differ only in the order of a MatMul's F ~ 150-term sums (a weight onnxruntime
#: pre-packs as a constant vs the same weight as an input). Each partial sum rounds with relative
#: error <= eps32, so a reordering moves the result by at most ~F eps32 times the sum of the
#: terms' magnitudes, which is bounded here by the output's own scale (|value| + the output's
#: largest |value|: a variance's small entries are sums of terms of that scale). Measured: 1 ulp.
F_TERMS = 150
EPS32 = float(np.finfo(np.float32).eps)


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """Two versions of one learner's track ("model": base graph + correction), with different
    corrections (two torque offsets learned in turn)."""
    rng = np.random.default_rng(0)
    paths, nz = track_versions(tmp_path_factory.mktemp("versions"), "model", 2, rng)
    rows = np.asarray(nz["x_mean"]) + rng.normal(size=(100, 21)) * np.asarray(nz["x_std"])
    return paths, rows.astype(np.float32)


def _outputs(step, rows: np.ndarray) -> np.ndarray:
    out = np.zeros((len(rows), step.out_buf.size), dtype=np.float32)
    for i, row in enumerate(rows):
        step.inputs["x"][0] = row
        step.run()
        out[i] = step.out_buf
    return out


def _assert_rounding_equal(got: np.ndarray, ref: np.ndarray, n: int) -> None:
    for part in (slice(0, n), slice(n, 2 * n)):          # mean, var
        g, r = got[:, part].astype(np.float64), ref[:, part].astype(np.float64)
        tol = F_TERMS * EPS32 * (np.abs(r) + np.abs(r).max())
        assert np.all(np.abs(g - r) <= tol), float(np.abs(g - r).max())


def test_a_version_on_the_shared_session_equals_a_session_of_its_file(versions):
    paths, rows = versions
    shared_graph.clear_cache()
    for p in paths:
        vm = open_model_dir(p, kind="svdkl")
        assert isinstance(vm.step, ParamStep) and set(vm.step.params) == set(PARAM_NAMES)
        assert list(vm.step.inputs) == ["x"]        # the declared signature, parameters bound apart
        own = open_model_dir(p, kind="svdkl", shared=False).step
        assert isinstance(own, OnnxStep)
        _assert_rounding_equal(_outputs(vm.step, rows), _outputs(own, rows), 7)


def test_every_version_of_a_track_runs_on_one_session_with_its_own_parameters(versions):
    paths, rows = versions
    shared_graph.clear_cache()
    built = shared_graph.stats["sessions_built"]
    a = open_model_dir(paths[0], kind="svdkl").step
    b = open_model_dir(paths[1], kind="svdkl").step
    a2 = open_model_dir(paths[0], kind="svdkl").step
    assert shared_graph.stats["sessions_built"] == built + 1      # the structure is the same
    assert a.session is b.session is a2.session
    out_a, out_b = _outputs(a, rows), _outputs(b, rows)
    # the corrections differ (offsets 6 / 3 N*m on joint 2): each binding runs its own parameters
    assert np.abs(out_a[:, 1] - out_b[:, 1]).mean() > 1.0
    _assert_rounding_equal(out_b, _outputs(OnnxStep(f"{paths[1]}/model.onnx"), rows), 7)
    # runs interleaved from two threads (the slot's worker checks while the tick runs)
    errs = []

    def other():
        try:
            for _ in range(20):
                if not np.array_equal(_outputs(b, rows[:5]), out_b[:5]):
                    errs.append("b changed")
        except Exception as exc:  # noqa: BLE001 - reported below
            errs.append(repr(exc))

    t = threading.Thread(target=other)
    t.start()
    for _ in range(20):
        assert np.array_equal(_outputs(a2, rows[:5]), out_a[:5])
    t.join()
    assert not errs, errs


def test_each_version_is_checked_with_its_own_parameters(versions, tmp_path):
    # the structure's session is cached already: a version whose parameters do not produce its
    # own golden outputs is still refused (the replay runs its binding, not a cached version's)
    paths, _ = versions
    shared_graph.clear_cache()
    open_model_dir(paths[0], kind="svdkl")
    from pathlib import Path

    w_a = numpy_helper.to_array(next(i for i in onnx.load(f"{paths[0]}/model.onnx").graph.initializer if i.name == "oc_w"))
    copy_with_initializer(Path(paths[1]), tmp_path / "swapped_w", "oc_w", w_a)
    with pytest.raises(ModelLoadError, match="golden"):
        open_model_dir(tmp_path / "swapped_w", kind="svdkl")
    p = numpy_helper.to_array(next(i for i in onnx.load(f"{paths[1]}/model.onnx").graph.initializer if i.name == "oc_p"))
    p = p.copy()
    p[0, 0] = np.nan
    copy_with_initializer(Path(paths[1]), tmp_path / "nan_p", "oc_p", p)
    with pytest.raises(ModelLoadError, match="non-finite"):
        open_model_dir(tmp_path / "nan_p", kind="svdkl")
    assert shared_graph.stats["sessions_built"] >= 1


class _Counting(ort.InferenceSession):
    """An InferenceSession that records the thread it was built in and the one it died in."""

    log: list = []

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        _Counting.log.append(("build", threading.current_thread().name))

    # bound at definition: at interpreter exit the module's globals (threading, _Counting) may be
    # None already when the cached sessions die
    def __del__(self, _current=threading.current_thread):
        type(self).log.append(("release", _current().name))


def _swap_loop(paths, swaps: int) -> list:
    """A controller at home with the node's deferred slot; ``swaps`` versions requested in turn,
    each swapped in between two ticks; returns the sessions' build / release log."""
    cfg = validate({"reference": "hold"}, CTX)
    analytic = build_analytic(cfg)
    ctl = build_controller(cfg, analytic, analytic, builtin_reference(cfg, SPEC.home))
    first = load_inverse_model("svdkl", paths[0], SPEC.joint_names, urdf=URDF)
    ctl.swap_model(first, build_tuning(cfg, first))
    slot = ModelSlot(first, "svdkl", paths[0], lambda k, p: load_inverse_model(k, p, SPEC.joint_names, urdf=URDF),
                     lambda m: check_model(m, SPEC.joint_names, SPEC.home),
                     prepare=lambda m: build_tuning(cfg, m), deferred=True)
    del first
    _Counting.log.clear()
    try:
        for i in range(swaps):
            slot.request("svdkl", paths[(i + 1) % len(paths)])
            for _ in range(20000):
                cand = slot.take_ready()
                if cand is not None:
                    slot.activated(cand, ctl.swap_model(cand.model, cand.prepared))
                ctl.step(SPEC.home, np.zeros(SPEC.n), 0.0, 0.0)
                slot.after_tick(ctl.query)
                if slot.swaps == i + 1 and not slot._retired:
                    break
                threading.Event().wait(0.001)
            assert slot.swaps == i + 1, slot.poll()
        return list(_Counting.log)
    finally:
        slot.close()


def test_hot_swaps_build_and_release_no_session(versions, monkeypatch):
    paths, _ = versions
    monkeypatch.setattr(onnx_step.ort, "InferenceSession", _Counting)
    shared_graph.clear_cache()
    open_model_dir(paths[1], kind="svdkl")   # the structure's session: built once, before the swaps
    log = _swap_loop(paths, 6)
    assert log == [], log                    # six swaps: no session built, none released
    # the same loop with a session per version (as before): a build per load in the worker and a
    # release per swap (after the first two), in the ticking thread's after_tick
    with shared_graph.per_version_sessions():
        log = _swap_loop(paths, 6)
    assert [e for e in log if e[0] == "build"] and len([e for e in log if e[0] == "build"]) >= 6, log
    main = threading.current_thread().name
    assert [e for e in log if e[0] == "release"] and all(t == main for w, t in log if w == "release"), log
