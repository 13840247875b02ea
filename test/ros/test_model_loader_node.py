"""The computed_torque node's model loader process (runtime/loader.py, ``model_loader`` process):
started with the controller when it runs a learned model, gone when the controller is SIGKILLed
(its stdin closes: no orphan on the ROS machine); none with ``model_loader`` thread.

Event-driven: the kill follows the controller's start-up line; the loader's exit is polled with a
time limit far above what it takes (the loader finishes a load in progress, then reads the end
of its pipe)."""

from __future__ import annotations

import os
import signal

import psutil
import pytest

from dynlearn_ros.procs import wait_until

pytestmark = pytest.mark.ros

WAIT_S = 120.0


def _loaders(pid: int) -> list[psutil.Process]:
    out = []
    for child in psutil.Process(pid).children():
        try:
            if "dynlearn_ros.runtime.loader" in child.cmdline():
                out.append(child)
        except psutil.NoSuchProcess:
            pass
    return out


def _gone(p: psutil.Process) -> bool:
    try:
        return p.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


LEARNED = {"model_kind": "svdkl", "model_dir": "svdkl_iiwa_sim"}


def test_a_sigkilled_controller_leaves_no_loader(start_node):
    ctl = start_node("computed_torque", LEARNED)
    assert ctl.wait_for_output("robot=iiwa", WAIT_S, poll_s=0.01), ctl.output()
    assert wait_until(lambda: len(_loaders(ctl.pid)) == 1, WAIT_S), ctl.output()
    (loader,) = _loaders(ctl.pid)
    os.kill(ctl.pid, signal.SIGKILL)
    ctl.proc.wait(WAIT_S)
    assert wait_until(lambda: _gone(loader), WAIT_S), f"loader {loader.pid} outlived its SIGKILLed controller"


def test_model_loader_thread_starts_no_loader(start_node):
    ctl = start_node("computed_torque", {**LEARNED, "model_loader": "thread"})
    assert ctl.wait_for_output("robot=iiwa", WAIT_S, poll_s=0.01), ctl.output()
    assert _loaders(ctl.pid) == []
