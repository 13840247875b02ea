"""Shared fixtures for ROS tests: an isolated ROS graph per test process, nodes as processes.

* ``ros_env`` (session, autouse): ``dynlearn_ros.procs.ros_domain``: claims a ROS_DOMAIN_ID in
  1..100 that no other test process on this machine holds (an flock on
  /tmp/dynlearn_ros_domain_<id>.lock, starting from the pid), sets it with
  ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and a temporary ROS_LOG_DIR in ``os.environ`` (for
  this process's rclpy), returns the environment for child processes and restores the old one
  at the end.
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

import itertools
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dynlearn_ros.procs import NodeProcess, ros_domain

_counter = itertools.count()


@pytest.fixture(scope="session", autouse=True)
def ros_env(tmp_path_factory) -> dict[str, str]:
    """Environment of this test process and of the nodes it starts (unique domain, localhost)."""
    with ros_domain(tmp_path_factory.mktemp("ros_log")):
        yield dict(os.environ)


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
        target = module.rsplit(".", 1)[-1]
        handle = NodeProcess(module, params or {}, ros_env, tmp_path / f"{target}-{next(_counter)}.log",
                             remaps=remaps, name=name, params_file=params_file)
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
