"""The model loader process (runtime/loader.py): a version checked in a process of its own and
handed over to the controller's shared session. Real versions exported by the online learner
from the shipped SVDKL model (on the analytic base, as the trainer exports by default), a real
loader process (``python -m dynlearn_ros.runtime.loader``), real onnxruntime on both sides.

What must hold exactly as with the in-process load: a corrupt file, a NaN model, a model of
other joints and a version whose golden sequence its arrays do not reproduce are refused (the
loader's refusal, with the in-process load's error class and reason); a loader that dies, hangs
or hands over what is not the file's is that load's refusal, the loader is restarted and the
next version loads; repeated failures fall back to the in-process load; a controller that is
SIGKILLed leaves no loader behind. No timed assertions: the timeouts below only bound a wait."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from online_versions import copy_with_initializer, track_versions
from onnx import numpy_helper

from dynlearn_ros.core.config import robot_context
from dynlearn_ros.core.inverse_model import InverseQuery
from dynlearn_ros.procs import pid_alive, wait_until
from dynlearn_ros.runtime import loader as loader_mod
from dynlearn_ros.runtime import shared_graph
from dynlearn_ros.runtime.errors import ModelLoadError
from dynlearn_ros.runtime.loader import LOADER_MAX_CONSECUTIVE_FAILURES, LoaderFailure, ProcessLoader
from dynlearn_ros.runtime.metadata import ModelMetadata
from dynlearn_ros.runtime.registry import load_inverse_model
from dynlearn_ros.runtime.shared_graph import ParamStep
from dynlearn_ros.runtime.svdkl import SvdklPredictor
from dynlearn_ros.runtime.validate import open_model_dir

SPEC = robot_context("iiwa").spec
URDF = str(SPEC.urdf_path)
#: the bound on a wait for a process to start, load or exit (a loaded 2-core machine: the
#: loader's imports alone took 14 s of wall time at load 13); never a figure asserted
WAIT_S = 120.0
#: float32 rounding of a reordered sum, as in test_shared_graph.py (F ~ 150 terms of eps32 each,
#: relative to the output's own scale); the base's RNEA is float64 and the same on both sides
F_TERMS = 150
EPS32 = float(np.finfo(np.float32).eps)


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """Three versions of one learner's track (analytic base + correction), different corrections."""
    return track_versions(tmp_path_factory.mktemp("versions"), "analytic", 3, np.random.default_rng(0))[0]


@pytest.fixture
def loader():
    logs: list[tuple[str, str]] = []
    ld = ProcessLoader(SPEC.joint_names, URDF, log=lambda level, msg: logs.append((level, msg)),
                       start_timeout_s=WAIT_S, timeout_s=WAIT_S)
    ld.logs = logs
    yield ld
    ld.close()


def _primed(ld: ProcessLoader, path: str):
    """The controller's process holds the structure's session (as after the track's first
    version, which the controller loads itself)."""
    shared_graph.clear_cache()
    m = ld.load("svdkl", path)
    assert ld.inprocess == 1 and ld.handovers == 0, ld.counters()
    return m


def _gone(pid: int, timeout_s: float = WAIT_S) -> bool:
    """Whether process ``pid`` has exited (gone, or a zombie its new parent has not reaped yet)."""
    return wait_until(lambda: not pid_alive(pid), timeout_s)


def _predict(model, rows: np.ndarray) -> np.ndarray:
    q = InverseQuery(SPEC.n)
    out = np.zeros((len(rows), 2 * SPEC.n))
    mean, std = np.zeros(SPEC.n), np.zeros(SPEC.n)
    for i, row in enumerate(rows):
        q.q[:], q.qd[:], q.qdd_des[:] = row[:7], row[7:14], row[14:]
        assert model.predict(q, mean, std)
        out[i, :7], out[i, 7:] = mean, std
    return out


def test_a_handed_over_version_runs_the_outputs_of_a_session_of_its_file(versions, loader):
    _primed(loader, versions[0])
    model = loader.load("svdkl", versions[1])
    assert loader.handovers == 1 and loader.failures == 0, loader.counters()
    assert isinstance(model.step, ParamStep) and model.step.session is shared_graph.cached_session(model.step.structure_key)
    assert model.version == ModelMetadata.read(Path(versions[1])).model_version and model.base is not None
    # known answer: the same file opened with a session of its own, here (float64 RNEA added on both)
    own = SvdklPredictor(open_model_dir(versions[1], kind="svdkl", urdf=URDF, shared=False), SPEC.joint_names)
    nz = ModelMetadata.read(Path(versions[1])).normalization
    rows = np.asarray(nz["x_mean"]) + np.random.default_rng(1).normal(size=(60, 21)) * np.asarray(nz["x_std"])
    got, ref = _predict(model, rows), _predict(own, rows)
    # the graph's mean and variance are float32: |d mean| <= F eps32 (|mean| + max |mean|);
    # std = sqrt(var): half var's relative error
    for part in (slice(0, 7), slice(7, 14)):
        g, r = got[:, part], ref[:, part]
        tol = F_TERMS * EPS32 * (np.abs(r) + np.abs(r).max())
        assert np.all(np.abs(g - r) <= tol), float(np.abs(g - r).max())
    # and another version's arrays are not these: the binding holds this version's parameters
    other = _predict(loader.load("svdkl", versions[2]), rows)
    assert np.abs(other[:, 1] - got[:, 1]).mean() > 0.5


def _init(path: str, name: str) -> np.ndarray:
    return numpy_helper.to_array(next(i for i in onnx.load(f"{path}/model.onnx").graph.initializer if i.name == name))


def test_corrupt_nan_other_joints_and_a_mismatching_golden_are_refused_through_the_loader(versions, loader, tmp_path):
    _primed(loader, versions[0])
    pid = loader.pid
    corrupt = tmp_path / "corrupt"
    shutil.copytree(versions[1], corrupt)
    data = (corrupt / "model.onnx").read_bytes()
    (corrupt / "model.onnx").write_bytes(data[: len(data) // 2])          # truncated
    p = _init(versions[1], "oc_p").copy()
    p[3, 3] = np.nan
    nan = copy_with_initializer(versions[1], tmp_path / "nan", "oc_p", p)
    swapped = copy_with_initializer(versions[1], tmp_path / "swapped", "oc_w", _init(versions[0], "oc_w"))   # another version's W
    other = tmp_path / "other_joints"
    shutil.copytree(versions[1], other)
    meta = json.loads((other / "metadata.json").read_text())
    meta["joint_names"] = [f"other_{j}" for j in meta["joint_names"]]
    (other / "metadata.json").write_text(json.dumps(meta))
    cases = [(corrupt, "not a readable ONNX file"), (nan, "non-finite"), (swapped, "golden"), (other, "")]
    for k, (path, reason) in enumerate(cases, start=1):
        with pytest.raises(ModelLoadError) as here:     # the in-process load: the reference
            load_inverse_model("svdkl", path, SPEC.joint_names, urdf=URDF)
        with pytest.raises(ModelLoadError) as there:
            loader.load("svdkl", str(path))
        assert type(there.value) is type(here.value) and str(there.value) == str(here.value), (here.value, there.value)
        assert reason in str(there.value) and not isinstance(there.value, LoaderFailure)
        assert loader.refused == k and loader.failures == 0 and loader.pid == pid, loader.counters()
    assert isinstance(here.value, ModelLoadError)
    # the loader stays, and the next good version is handed over
    model = loader.load("svdkl", versions[2])
    assert isinstance(model.step, ParamStep) and loader.handovers == 1 and loader.pid == pid, loader.counters()


def _load_in_thread(ld: ProcessLoader, path: str) -> tuple[threading.Thread, dict]:
    res: dict = {}

    def run():
        try:
            res["model"] = ld.load("svdkl", path)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            res["error"] = exc

    before = ld._next_id
    t = threading.Thread(target=run)
    t.start()
    end = time.monotonic() + WAIT_S
    while ld._next_id == before and time.monotonic() < end:   # the request is in the loader's pipe
        time.sleep(0.005)
    assert ld._next_id == before + 1
    return t, res


def test_a_loader_killed_mid_load_refuses_that_load_and_is_restarted(versions, loader):
    _primed(loader, versions[0])
    pid = loader.pid
    os.kill(pid, signal.SIGSTOP)       # holds the request unanswered: the kill lands mid-load
    t, res = _load_in_thread(loader, versions[1])
    os.kill(pid, signal.SIGKILL)
    t.join(WAIT_S)
    assert not t.is_alive()
    assert isinstance(res.get("error"), LoaderFailure) and "closed" in str(res["error"]), res
    assert loader.failures == 1 and loader.restarts == 1 and loader.pid not in (None, pid), loader.counters()
    assert any(level == "warning" and "restarted" in msg for level, msg in loader.logs), loader.logs
    assert _gone(pid)
    model = loader.load("svdkl", versions[1])      # the restarted loader hands the next one over
    assert isinstance(model.step, ParamStep) and loader.handovers == 1 and not loader.fallback, loader.counters()


def test_a_hung_loader_times_out_that_load_and_is_restarted(versions, loader):
    _primed(loader, versions[0])
    pid = loader.pid
    loader.timeout_s = 1.0             # the stopped loader never answers: only the timeout ends the wait
    os.kill(pid, signal.SIGSTOP)
    with pytest.raises(LoaderFailure, match="timeout"):
        loader.load("svdkl", versions[1])
    assert loader.failures == 1 and loader.restarts == 1 and loader.pid != pid and _gone(pid), loader.counters()
    loader.timeout_s = WAIT_S
    assert isinstance(loader.load("svdkl", versions[2]).step, ParamStep) and loader.handovers == 1


#: a real loader that hands over the arrays of another version than the one asked for (a loader
#: with a bug, or a stale cache): right names, shapes and hashes, not the file's parameters
WRONG_ARRAYS = textwrap.dedent("""
    import sys
    from dynlearn_ros.runtime import loader
    real = loader._answer
    def wrong(req, plant=None):
        return real(dict(req, path=sys.argv[1]), plant)
    loader._answer = wrong
    sys.exit(loader.main())
""")
#: a process that says hello and then answers every request with bytes that are not a message
GARBAGE = textwrap.dedent("""
    import json, os, sys
    from dynlearn_ros.runtime import loader
    out = os.dup(1); os.dup2(2, 1)
    loader.write_frame(out, json.dumps({"hello": 1}).encode())
    while True:
        try:
            loader.read_frame(0)
        except loader.LoaderFailure:
            sys.exit(0)
        loader.write_frame(out, b"\\xff\\x00 not json")
""")


def test_arrays_that_are_not_the_files_are_refused_by_the_controllers_golden_step(versions):
    logs: list = []
    ld = ProcessLoader(SPEC.joint_names, URDF, log=lambda level, msg: logs.append((level, msg)),
                       command=[sys.executable, "-c", WRONG_ARRAYS, versions[2]], start_timeout_s=WAIT_S,
                       timeout_s=WAIT_S)
    try:
        _primed(ld, versions[0])
        with pytest.raises(LoaderFailure, match="golden step 0"):
            ld.load("svdkl", versions[1])   # handed versions[2]'s arrays: its hashes match, the file's golden does not
        assert ld.failures == 1 and ld.restarts == 1 and ld.handovers == 0, ld.counters()
        assert isinstance(ld.load("svdkl", versions[2]).step, ParamStep)   # what it hands over is that file's
    finally:
        ld.close()


def test_repeated_garbage_falls_back_to_the_in_process_load(versions):
    logs: list = []
    ld = ProcessLoader(SPEC.joint_names, URDF, log=lambda level, msg: logs.append((level, msg)),
                       command=[sys.executable, "-c", GARBAGE], start_timeout_s=WAIT_S, timeout_s=WAIT_S)
    try:
        shared_graph.clear_cache()
        for k in range(LOADER_MAX_CONSECUTIVE_FAILURES):
            with pytest.raises(LoaderFailure, match="not JSON"):
                ld.load("svdkl", versions[k % 2])
            assert ld.failures == k + 1
        assert ld.fallback and ld.restarts == LOADER_MAX_CONSECUTIVE_FAILURES - 1 and ld.pid is None, ld.counters()
        assert any(level == "error" and "from now on" in msg for level, msg in logs), logs
        m = ld.load("svdkl", versions[1])          # in the controller's process, every check as before
        assert m.version == ModelMetadata.read(Path(versions[1])).model_version and ld.inprocess == 1
        assert not ld.handovers
    finally:
        ld.close()


CONTROLLER = textwrap.dedent("""
    import sys, time
    from dynlearn_ros.core.config import robot_context
    from dynlearn_ros.runtime.loader import ProcessLoader
    spec = robot_context("iiwa").spec
    ld = ProcessLoader(spec.joint_names, str(spec.urdf_path), start_timeout_s=600, timeout_s=600)
    ld.load("svdkl", sys.argv[1])
    print(ld.pid, flush=True)
    time.sleep(600)
""")


def test_a_sigkilled_controller_leaves_no_loader(versions):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(loader_mod.__file__).resolve().parents[2]) + os.pathsep + env.get("PYTHONPATH", "")
    ctl = subprocess.Popen([sys.executable, "-c", CONTROLLER, versions[0]], stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = ctl.stdout.readline()       # after the loader answered one load
        pid = int(line)
        assert not _gone(pid, 0.0)
        ctl.send_signal(signal.SIGKILL)
        ctl.wait(WAIT_S)
        assert _gone(pid), f"loader {pid} outlived its SIGKILLed controller"
    finally:
        if ctl.poll() is None:
            ctl.kill()


# -- session 12: the loads at a low priority, a starved loader, the plant check in the loader -------
def test_the_loaders_loads_run_at_nice_19_and_at_the_priority_asked(versions, loader):
    """The default (runtime/loader.py LOADER_PRIORITY "nice19"): the loader's process runs its
    loads at nice 19 (its start-up at the controller's priority); "idle" is SCHED_IDLE, "normal"
    the controller's own; its hello says which applied."""
    _primed(loader, versions[0])
    assert loader.applied_priority == "nice19", loader.counters()
    assert os.sched_getscheduler(loader.pid) == os.SCHED_OTHER and os.getpriority(os.PRIO_PROCESS, loader.pid) == 19
    for prio, policy, nice in (("idle", os.SCHED_IDLE, None), ("normal", os.SCHED_OTHER, os.getpriority(os.PRIO_PROCESS, 0))):
        ld = ProcessLoader(SPEC.joint_names, URDF, priority=prio, start_timeout_s=WAIT_S, timeout_s=WAIT_S)
        try:
            ld.load("svdkl", versions[1])
            assert ld.applied_priority == prio and os.sched_getscheduler(ld.pid) == policy
            assert nice is None or os.getpriority(os.PRIO_PROCESS, ld.pid) == nice
        finally:
            ld.close()
    with pytest.raises(ValueError, match="loader priority"):
        ProcessLoader(SPEC.joint_names, URDF, priority="realtime", start=False)


#: a real loader that takes ``HOLD_S`` of wall time before each answer, either busy (runnable:
#: a loader starved at its low priority looks the same from outside) or asleep (hung)
SLOW = textwrap.dedent("""
    import sys, time
    from dynlearn_ros.runtime import loader
    real = loader._answer
    def slow(req, plant=None):
        end = time.monotonic() + float(sys.argv[2])
        while time.monotonic() < end:
            if sys.argv[1] == "sleep":
                time.sleep(0.05)
        return real(req, plant)
    loader._answer = slow
    sys.exit(loader.main())
""")


@pytest.mark.parametrize("how", ["busy", "sleep"])
def test_a_runnable_loader_past_the_timeout_is_waited_for_and_a_sleeping_one_is_refused(versions, how):
    """Past ``timeout_s`` the controller looks at the loader's state: runnable (a loader starved at
    low priority on a busy machine) is waited for, up to ``starved_max_s``; asleep is hung."""
    logs: list = []
    hold_s, timeout_s = 4.0, 1.0
    ld = ProcessLoader(SPEC.joint_names, URDF, log=lambda level, msg: logs.append((level, msg)),
                       command=[sys.executable, "-c", SLOW, how, str(hold_s)], start_timeout_s=WAIT_S,
                       timeout_s=WAIT_S, escalate_s=None)
    try:
        _primed(ld, versions[0])        # its hello, and the controller's session of the structure
        ld.timeout_s = timeout_s        # the next load's answer comes after hold_s > timeout_s
        if how == "busy":
            model = ld.load("svdkl", versions[1])
            assert isinstance(model.step, ParamStep) and ld.handovers == 1 and ld.failures == 0, ld.counters()
            assert ld.starved_waits >= 1 and any("not hung" in msg for _, msg in logs), logs
        else:
            with pytest.raises(LoaderFailure, match="timeout"):
                ld.load("svdkl", versions[1])
            assert ld.failures == 1 and ld.starved_waits == 0, ld.counters()
    finally:
        ld.close()


def test_a_runnable_loader_is_waited_for_no_longer_than_starved_max_s(versions):
    ld = ProcessLoader(SPEC.joint_names, URDF, command=[sys.executable, "-c", SLOW, "busy", "600"],
                       start_timeout_s=WAIT_S, timeout_s=WAIT_S, starved_max_s=2.0, escalate_s=None)
    try:
        shared_graph.clear_cache()
        ld.timeout_s = 0.5
        with pytest.raises(LoaderFailure, match="timeout"):   # its first answer would take 600 s
            ld.load("svdkl", versions[0])
        assert ld.failures == 1 and ld.starved_waits >= 1, ld.counters()
    finally:
        ld.close()


def _plant_samples(model, rows: int = 150, r: float = 0.05) -> dict:
    """The controller's recent steps (runtime/slot.py check_plant_fit's ``samples``) in which
    ``model`` was the plant: the applied torque is its prediction at each step's reference query,
    ma = 0, and the running model's realized error r on every joint."""
    from dynlearn_ros.core.residual import REFERENCE_KEYS

    n, dt = SPEC.n, 1e-3
    rng = np.random.default_rng(3)
    home = np.asarray(SPEC.home, dtype=np.float64)
    s = {"t": dt * np.arange(rows), "q": home + 0.1 * rng.normal(size=(rows, n)), "qd": 0.3 * rng.normal(size=(rows, n)),
         "a": rng.normal(size=(rows, n)), "ma": np.zeros((rows, n)), "r": np.full((rows, n), r)}
    for k in REFERENCE_KEYS:
        s[k] = s["q"] if k in ("q_des", "q_des_next") else s["qd"] if k in ("qd_des", "qd_des_next") else s["a"]
    q = InverseQuery(n, dt=dt)
    mean, std = np.zeros(n), np.zeros(n)
    s["tau"] = np.zeros((rows, n))
    model.reset()
    for i in range(rows):
        q.q[:], q.qd[:] = s["q"][i], s["qd"][i]
        for k in REFERENCE_KEYS:
            getattr(q, k)[:] = s[k][i]
        if i:
            q.tau_prev[:] = s["tau"][i - 1]
        assert model.predict(q, mean, std)
        s["tau"][i] = mean
        model.commit(mean)
    model.reset()
    return s


def test_the_plant_check_runs_in_the_loader_with_the_in_process_checks_verdict(versions, loader):
    """A request that carries the controller's recent steps: the loader puts a hand-over's
    candidate through the slot's plant check (runtime/slot.py check_plant_fit). A candidate of
    another plant is refused there with the in-process check's class and message; one that fits
    is handed over and marked checked (the node's slot check then skips it); a load without the
    steps, or one the controller does itself, is not marked."""
    from dynlearn_ros.runtime.slot import PLANT_FIT_FACTOR, PlantFitRefused, check_plant_fit

    sigma_n = np.full(SPEC.n, 1e-3)
    here = {p: load_inverse_model("svdkl", p, SPEC.joint_names, urdf=URDF) for p in versions}
    samples = _plant_samples(here[versions[1]])      # the plant behaves as versions[1] predicts
    plant = (samples, sigma_n, 1e-3, PLANT_FIT_FACTOR)
    first = _primed(loader, versions[0])                       # loaded in-process: not the loader's check
    assert not loader.plant_checked(first) and loader.last_inprocess   # and the slot's heap trim is due
    # versions[0]'s correction differs from versions[1]'s by 3 N*m on joint 2: refused, as here
    with pytest.raises(PlantFitRefused) as ref:
        check_plant_fit(here[versions[0]], samples, sigma_n, 1e-3)
    loader.load("svdkl", versions[2])                         # another version, so [0] is not cached anywhere
    with pytest.raises(PlantFitRefused) as there:
        loader.load("svdkl", versions[0], plant)
    assert str(there.value) == str(ref.value) and loader.refused == 1 and loader.failures == 0, loader.counters()
    # versions[1] is the plant: handed over and marked; the in-process check agrees it fits
    model = loader.load("svdkl", versions[1], plant)
    assert isinstance(model.step, ParamStep) and loader.plant_checked(model), loader.counters()
    assert not loader.last_inprocess                                 # a hand-over: no trim due
    assert check_plant_fit(here[versions[1]], samples, sigma_n, 1e-3)["ratio"] <= PLANT_FIT_FACTOR
    again = loader.load("svdkl", versions[1])                  # no steps sent: the slot's check runs it
    assert not loader.plant_checked(again) and not loader.plant_checked(model)


def test_a_request_larger_than_the_pipe_to_a_stopped_loader_times_out(versions, loader):
    """A request larger than the pipe holds (the plant check's steps are ~0.2 MB, the pipe asked
    for 1 MiB; here 2 MB): a loader that stopped reading ends that load at the timeout (never a
    blocking write in the worker)."""
    from dynlearn_ros.runtime.slot import PLANT_FIT_FACTOR

    _primed(loader, versions[0])
    samples = _plant_samples(load_inverse_model("svdkl", versions[1], SPEC.joint_names, urdf=URDF), rows=3000)
    assert sum(v.nbytes for v in samples.values()) > loader_mod.PIPE_BYTES
    pid = loader.pid
    os.kill(pid, signal.SIGSTOP)
    loader.timeout_s = 1.0
    with pytest.raises(LoaderFailure, match="timeout"):
        loader.load("svdkl", versions[1], (samples, np.full(SPEC.n, 1e-3), 1e-3, PLANT_FIT_FACTOR))
    assert loader.failures == 1 and loader.restarts == 1 and _gone(pid), loader.counters()


def test_a_loader_starved_past_escalate_s_is_replaced_by_an_in_process_load_and_its_late_answer_dropped(versions):
    """A loader runnable but unanswered ``escalate_s`` after the request (starved at its low
    priority on a machine with no core free): that version is loaded in the controller's process
    instead (counted, not a failure, the loader kept); its late answer, when it comes, is read and
    dropped, and the next request gets its own answer (the right version, handed over)."""
    logs: list = []
    ld = ProcessLoader(SPEC.joint_names, URDF, log=lambda level, msg: logs.append((level, msg)),
                       command=[sys.executable, "-c", SLOW, "busy", "3"], start_timeout_s=WAIT_S, timeout_s=WAIT_S,
                       escalate_s=None)
    try:
        _primed(ld, versions[0])
        pid = ld.pid
        ld.escalate_s = 0.5
        model = ld.load("svdkl", versions[1])          # the loader takes 3 s: loaded here after 0.5 s
        assert model.version == ModelMetadata.read(Path(versions[1])).model_version
        assert ld.escalations == 1 and ld.inprocess == 2 and ld.failures == 0 and ld.pid == pid, ld.counters()
        assert ld.last_inprocess and any("in the controller's process" in msg for _, msg in logs), logs
        ld.escalate_s = None                            # the next one is waited for: first comes the stale answer
        nxt = ld.load("svdkl", versions[2])
        assert isinstance(nxt.step, ParamStep) and ld.handovers == 1 and ld.failures == 0, ld.counters()
        assert nxt.version == ModelMetadata.read(Path(versions[2])).model_version
    finally:
        ld.close()
