"""procs.pid_alive and procs.wait_until: what the tests and the fault injector use to see a
process end (a zombie counts as ended; a name with spaces and a parenthesis does not confuse
the /proc parse)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from dynlearn_ros.procs import pid_alive, wait_until

# a child whose command name (comm, /proc/<pid>/stat's second field) holds ") S (": a split on
# whitespace, or on the first ')', reads the wrong field
NAMED = "import ctypes, time; ctypes.CDLL(None).prctl(15, b'a) S (b', 0, 0, 0); time.sleep(30)"


def test_a_running_process_is_alive_and_an_unreaped_exited_one_is_not():
    assert pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", NAMED])
    try:
        assert wait_until(lambda: "a) S (b" in open(f"/proc/{child.pid}/comm").read(), 30.0)
        assert pid_alive(child.pid)
        child.kill()
        # not reaped yet: a zombie, which still answers kill(pid, 0)
        assert wait_until(lambda: not pid_alive(child.pid), 10.0)
        os.kill(child.pid, 0)   # the pid exists (a zombie): no ProcessLookupError
    finally:
        child.kill()
        child.wait()
    assert not pid_alive(child.pid)   # reaped: gone


def test_wait_until_returns_as_soon_as_true_and_the_last_value_at_the_timeout():
    t0 = time.monotonic()
    assert wait_until(lambda: True, 10.0)
    assert time.monotonic() - t0 < 5.0        # did not wait out the timeout
    assert wait_until(lambda: time.monotonic() - t0 > 0.2, 10.0, 0.01)
    calls = []
    assert not wait_until(lambda: calls.append(1) or False, 0.1, 0.02)
    assert len(calls) >= 2                    # polled, then asked once more at the end
