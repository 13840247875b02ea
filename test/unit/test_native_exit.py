"""runner.arm_native_exit: a libc timer ends the process with the given code while another
thread holds the GIL for ever (the case the shutdown watchdog's Python thread cannot handle)."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import ctypes, sys
from dynlearn_ros.nodes.runner import arm_native_exit
print("armed", arm_native_exit(0.5, int(sys.argv[1])), flush=True)
ctypes.PyDLL(None).sleep(60)      # libc's sleep through a PyDLL: the GIL stays held
print("not reached", flush=True)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a glibc timer")
@pytest.mark.parametrize("code", [0, 3])
def test_the_timer_ends_a_process_whose_gil_is_held_with_the_given_code(code):
    out = subprocess.run([sys.executable, "-c", PROBE, str(code)], capture_output=True, text=True, timeout=50)
    assert out.stdout.startswith("armed True"), (out.stdout, out.stderr)
    assert "not reached" not in out.stdout
    assert out.returncode == code, (out.returncode, out.stderr)
