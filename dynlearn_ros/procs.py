"""This package's nodes as child processes, without launch_ros (no rclpy import here).

* :func:`claim_domain_id`: an isolated ROS graph for child processes, a claimed ROS_DOMAIN_ID
  and its environment. The claim is an exclusive ``flock`` on ``/tmp/dynlearn_ros_domain_<id>.lock`` (the same files
test/ros/conftest.py uses, so benchmarks and ROS test sessions on one machine never share a
domain). The lock is released when the returned :class:`DomainClaim` is closed or the process
exits.
* :func:`format_param`: a parameter value for ``-p name:=value`` (YAML-typed).
* :class:`NodeProcess`: ``python -m <module> --ros-args ...`` with its output in a log file,
  stopped with SIGINT (then SIGKILL), as the tests, the benchmarks and the scenarios run nodes;
  it gets SIGTERM when the process that started it dies (:func:`die_with_parent_prefix`).
* :func:`pid_alive`, :func:`wait_until`: whether a process still runs, and a polled wait, for
  the tests and the fault injector that watch processes end.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

#: the variables :meth:`DomainClaim.env` sets or removes (what :func:`ros_domain` restores)
ROS_ENV_KEYS = ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOG_DIR", "PYTHONUNBUFFERED",
                "ROS_LOCALHOST_ONLY", "FASTDDS_DEFAULT_PROFILES_FILE")
LOCK_PATTERN = "/tmp/dynlearn_ros_domain_{}.lock"
DOMAIN_RANGE = range(1, 101)  # ROS_DOMAIN_ID 1..100 (0 is the default graph: never claimed)


class DomainClaim:
    """A held ROS_DOMAIN_ID; use as a context manager or call :meth:`close`."""

    def __init__(self, domain: int, lock_file: IO[str]) -> None:
        self.domain = domain
        self._lock_file: IO[str] | None = lock_file

    def env(self, log_dir: str | Path, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for child nodes: this domain, discovery on localhost only, ROS logs in
        ``log_dir``, unbuffered Python output, the package's Fast DDS profile
        (:mod:`dynlearn_ros.dds_profile`). ``base`` defaults to ``os.environ``."""
        env = dict(os.environ if base is None else base)
        env.pop("ROS_LOCALHOST_ONLY", None)  # deprecated, conflicts with the discovery range
        env.update({"ROS_DOMAIN_ID": str(self.domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
                    "ROS_LOG_DIR": str(log_dir), "PYTHONUNBUFFERED": "1"})
        from dynlearn_ros.dds_profile import apply

        apply(env)   # the package's Fast DDS profile (dds_profile.py), unless one is set
        return env

    def close(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing the descriptor releases the flock
            self._lock_file = None

    def __enter__(self) -> DomainClaim:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def claim_domain_id(start: int | None = None) -> DomainClaim:
    """Claim the first free ROS_DOMAIN_ID in 1..100, scanning from ``start`` (default: the pid).

    Raises RuntimeError when all 100 are held by other processes."""
    first = os.getpid() if start is None else start
    n = len(DOMAIN_RANGE)
    for i in range(n):
        domain = DOMAIN_RANGE[(first + i) % n]
        f = open(LOCK_PATTERN.format(domain), "w")  # noqa: SIM115 - held until DomainClaim.close()
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            continue
        return DomainClaim(domain, f)
    raise RuntimeError("no free ROS_DOMAIN_ID in 1..100 (all locked by other processes)")


@contextmanager
def ros_domain(log_dir: str | Path, start: int | None = None) -> Iterator[dict[str, str]]:
    """Claim a ROS_DOMAIN_ID (:func:`claim_domain_id`), set its environment in ``os.environ``
    and yield a copy of it (the environment for child nodes). On exit the variables of
    :data:`ROS_ENV_KEYS` get their previous values back (or are removed again) and the claim
    is released.

    An rclpy context initialised inside the block reads the domain and the discovery range from
    ``os.environ`` at init: initialise it inside, shut it down before the block ends."""
    Path(log_dir).mkdir(parents=True, exist_ok=True)
    saved = {k: os.environ.get(k) for k in ROS_ENV_KEYS}
    with claim_domain_id(start) as claim:
        env = claim.env(log_dir)
        os.environ.pop("ROS_LOCALHOST_ONLY", None)
        os.environ.update(env)
        try:
            yield dict(env)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def format_param(v) -> str:
    """``v`` as the value of ``-p name:=value``: bools as true/false, sequences as [a, b],
    strings quoted when YAML would read them otherwise, numpy scalars as Python numbers."""
    if hasattr(v, "item") and not isinstance(v, list | tuple | str):
        v = v.item() if getattr(v, "ndim", 0) == 0 else v.tolist()
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(format_param(x) for x in v) + "]"
    if isinstance(v, str):
        return f"'{v}'" if v == "" or any(c in v for c in ":[],{}#'\" ") else v
    return repr(v)


def ros_args(params: Mapping | None = None, remaps: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
             name: str | None = None, namespace: str = "", params_files: Sequence[str | Path] = ()) -> list[str]:
    """``--ros-args`` and what follows, in launch_ros's order: node name, namespace, parameter
    files, then single parameters (which override the files), then remappings."""
    out = ["--ros-args"]
    if name:
        out += ["-r", f"__node:={name}"]
    if namespace:
        out += ["-r", f"__ns:={namespace if namespace.startswith('/') else '/' + namespace}"]
    for f in params_files:
        out += ["--params-file", str(f)]
    for k, v in (params or {}).items():
        out += ["-p", f"{k}:={format_param(v)}"]
    pairs = remaps.items() if isinstance(remaps, Mapping) else (remaps or ())
    for src, dst in pairs:
        out += ["-r", f"{src}:={dst}"]
    return out


def die_with_parent_prefix() -> list[str]:
    """``setpriv --pdeathsig TERM``: a command run under it gets SIGTERM (a node's clean stop,
    nodes/runner.py) when the thread that started it ends - with the process, whatever killed it.
    Without it the nodes of a SIGKILLed test run, script or soak kept running on a domain whose
    claim had died with their parent: a later run claiming the domain met them (a second
    publisher on joint_states; four such orphans ran for 70 min in the tenth session). The start
    must come from a thread that lives as long as the node (the tests', benchmarks' and
    scenarios' main threads). ``[]`` where util-linux's setpriv is missing."""
    import shutil

    return ["setpriv", "--pdeathsig", "TERM"] if shutil.which("setpriv") else []


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and has not exited: a zombie (an exited process its parent,
    often init after a re-parenting, has not reaped yet) answers ``kill(pid, 0)`` but is dead,
    so its state in ``/proc/<pid>/stat`` is read (the field after the parenthesised name, which
    may itself hold spaces)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # another user's process: it exists
        pass
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def wait_until(cond, timeout_s: float, poll_s: float = 0.05) -> bool:
    """Poll ``cond()`` every ``poll_s`` s until it is true (True) or ``timeout_s`` s pass (then
    its last value)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(poll_s)
    return bool(cond())


class NodeProcess:
    """A node of this package in its own process, output to ``log_path``.

    module: ``dynlearn_ros.nodes.<module>`` (a bare name) or a full module path; ``prefix``: a
    command to run it under (e.g. ``["chrt", "-f", "50"]``). ``follow_parent``: the node gets
    SIGTERM when the thread that built this object ends (:func:`die_with_parent_prefix`)."""

    def __init__(self, module: str, params: Mapping | None, env: Mapping[str, str] | None, log_path: Path,
                 remaps: Mapping[str, str] | None = None, name: str | None = None,
                 params_file: str | Path | None = None, prefix: Sequence[str] = (),
                 follow_parent: bool = True) -> None:
        target = module if "." in module else f"dynlearn_ros.nodes.{module}"
        self.name = name or target.rsplit(".", 1)[-1]
        follow = die_with_parent_prefix() if follow_parent else []
        self.cmd = [*follow, *prefix, sys.executable, "-m", target, *ros_args(
            params, remaps, name, params_files=[params_file] if params_file else ())]
        self.log_path = Path(log_path)
        self.killed = False
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()/wait()
        # the child starts with SIGINT / SIGTERM blocked (the mask is inherited): a signal sent
        # while its interpreter starts stays pending instead of raising KeyboardInterrupt in
        # site.py; the node unblocks them once its handler is in place (nodes/runner.py)
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            self.proc = subprocess.Popen(self.cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                         env=None if env is None else dict(env))
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)

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
        """SIGINT, then SIGKILL if still running after ``timeout`` s (sets ``killed``); returns
        the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
                self.killed = True
        self._log.close()
        return self.proc.returncode

    def output(self) -> str:
        """Everything the process printed so far (stdout and stderr)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_for_output(self, text: str, timeout: float, poll_s: float = 0.02) -> bool:
        """Poll the output every ``poll_s`` s until ``text`` appears (True), the process exits or
        ``timeout`` s pass (False)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if text in self.output():
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(poll_s)
        return False

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.output().rstrip().splitlines()[-lines:]) or "(empty log)"

    def describe(self) -> str:
        return f"--- {self.name} (exit {self.proc.returncode}), last lines of {self.log_path}:\n{self.tail()}"
