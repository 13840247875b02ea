"""Shared fixtures for ROS tests: an isolated ROS graph per test process, nodes as processes.

* ``ros_env`` (session, autouse): claims a ROS_DOMAIN_ID in 1..100 that no other test process
  on this machine holds (an flock on /tmp/dynlearn_ros_domain_<id>.lock, starting from the pid),
  sets it with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and a temporary ROS_LOG_DIR in
  ``os.environ`` (for this process's rclpy) and returns the environment for child processes.
* ``ros_context`` (session): rclpy initialised once for the test-side nodes.
* ``start_node`` (function): ``start_node(module, params, remaps=None, name=None, params_file=None)
  -> NodeProcess`` runs ``python -m dynlearn_ros.nodes.<module> --ros-args [--params-file F]
  -p k:=v ... -r from:=to`` in that
  environment with its output in a log file, shown when the test fails; every node still running
  at teardown is stopped (SIGINT, then SIGKILL after a timeout).
* ``spin_until`` (fixture giving a function): ``spin_until(executor, predicate, timeout_s)`` spins
  ``spin_once`` in slices until predicate() is true.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

_DOMAIN_LOCK = None
_counter = itertools.count()


def _claim_domain_id() -> int:
    global _DOMAIN_LOCK
    start = os.getpid() % 100
    for i in range(100):
        domain = 1 + (start + i) % 100
        f = open(f"/tmp/dynlearn_ros_domain_{domain}.lock", "w")  # noqa: SIM115 - held for the session
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            continue
        _DOMAIN_LOCK = f
        return domain
    raise RuntimeError("no free ROS_DOMAIN_ID in 1..100 (all locked by other test processes)")


@pytest.fixture(scope="session", autouse=True)
def ros_env(tmp_path_factory) -> dict[str, str]:
    """Environment of this test process and of the nodes it starts (unique domain, localhost)."""
    saved = {k: os.environ.get(k) for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOG_DIR")}
    domain = _claim_domain_id()
    log_dir = tmp_path_factory.mktemp("ros_log")
    os.environ.update({"ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
                       "ROS_LOG_DIR": str(log_dir)})
    os.environ.pop("ROS_LOCALHOST_ONLY", None)  # deprecated variable, conflicts with the range
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    yield env
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    if _DOMAIN_LOCK is not None:
        _DOMAIN_LOCK.close()


@pytest.fixture(scope="session")
def ros_context(ros_env):
    """rclpy initialised (default context) for the test-side nodes; shut down at the end.

    Tests should take this fixture instead of calling rclpy.init() (a second init raises); if
    the default context is already initialised it is reused and left to its owner."""
    import rclpy

    owner = not rclpy.ok()
    if owner:
        rclpy.init()
    yield rclpy.get_default_context()
    if owner:
        rclpy.try_shutdown()


def _format_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_format_value(x) for x in v) + "]"
    if isinstance(v, str):
        return f"'{v}'" if v == "" or any(c in v for c in ":[],{}#") else v
    return repr(v)


class NodeProcess:
    """A node started as its own process; ``stop()`` returns its exit code."""

    def __init__(self, module: str, params: dict, remaps: dict | None, name: str | None,
                 env: dict[str, str], log_dir: Path, params_file: str | Path | None = None) -> None:
        target = module if "." in module else f"dynlearn_ros.nodes.{module}"
        cmd = [sys.executable, "-m", target, "--ros-args"]
        if params_file is not None:
            cmd += ["--params-file", str(params_file)]
        for k, v in params.items():
            cmd += ["-p", f"{k}:={_format_value(v)}"]
        for src, dst in (remaps or {}).items():
            cmd += ["-r", f"{src}:={dst}"]
        if name:
            cmd += ["-r", f"__node:={name}"]
        self.cmd = cmd
        self.log_path = log_dir / f"{target.rsplit('.', 1)[-1]}-{next(_counter)}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit by itself; raises subprocess.TimeoutExpired."""
        rc = self.proc.wait(timeout=timeout)
        self._log.close()
        return rc

    def stop(self, timeout: float = 10.0) -> int:
        """SIGINT, then SIGKILL if still running after ``timeout`` s; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        self._log.close()
        return self.proc.returncode

    def output(self) -> str:
        """Everything the process printed so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture
def start_node(ros_env, tmp_path, request) -> Callable[..., NodeProcess]:
    """Factory: start_node(module, params, remaps=None, name=None, params_file=None) -> NodeProcess.

    ``params`` (-p) override values from ``params_file`` (--params-file)."""
    started: list[NodeProcess] = []

    def _start(module: str, params: dict | None = None, remaps: dict | None = None,
               name: str | None = None, params_file: str | Path | None = None) -> NodeProcess:
        handle = NodeProcess(module, params or {}, remaps, name, ros_env, tmp_path, params_file)
        started.append(handle)
        return handle

    yield _start
    for h in started:
        h.stop()
    rep = getattr(request.node, "rep_call", None)
    if rep is None or rep.failed:
        for h in started:
            print(f"\n----- {' '.join(h.cmd)} (exit {h.proc.returncode}) -----\n{h.output()}")


def _spin_until(executor, predicate: Callable[[], bool], timeout_s: float, slice_s: float = 0.01) -> bool:
    """spin_once(slice_s) until ``predicate()`` holds (True) or ``timeout_s`` passes (False)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        executor.spin_once(timeout_sec=slice_s)
    return True


@pytest.fixture
def spin_until() -> Callable[..., bool]:
    """The function spin_until(executor, predicate, timeout_s, slice_s=0.01) -> bool."""
    return _spin_until
