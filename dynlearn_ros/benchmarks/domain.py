"""An isolated ROS graph for child processes: a claimed ROS_DOMAIN_ID and its environment.

The claim is an exclusive ``flock`` on ``/tmp/dynlearn_ros_domain_<id>.lock`` (the same files
test/ros/conftest.py uses, so benchmarks and ROS test sessions on one machine never share a
domain). The lock is released when the returned :class:`DomainClaim` is closed or the process
exits. No rclpy import: this only prepares environments for subprocesses."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

LOCK_PATTERN = "/tmp/dynlearn_ros_domain_{}.lock"
DOMAIN_RANGE = range(1, 101)  # ROS_DOMAIN_ID 1..100 (0 is the default graph: never claimed)


class DomainClaim:
    """A held ROS_DOMAIN_ID; use as a context manager or call :meth:`close`."""

    def __init__(self, domain: int, lock_file: IO[str]) -> None:
        self.domain = domain
        self._lock_file: IO[str] | None = lock_file

    def env(self, log_dir: str | Path, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for child nodes: this domain, discovery on localhost only, ROS logs in
        ``log_dir``, unbuffered Python output. ``base`` defaults to ``os.environ``."""
        env = dict(os.environ if base is None else base)
        env.pop("ROS_LOCALHOST_ONLY", None)  # deprecated, conflicts with the discovery range
        env.update({"ROS_DOMAIN_ID": str(self.domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
                    "ROS_LOG_DIR": str(log_dir), "PYTHONUNBUFFERED": "1"})
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
