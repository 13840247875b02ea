"""The package's Fast DDS participant profile (config/fastdds_profile.xml): type propagation off.

Why (docs/safety.md, "A crash in the DDS type lookup"): Fast DDS 3.2's TypeLookup service answers
other participants' type requests on a thread of its own ("dds.tls.request"). Bridges started
three at a time and stopped at once (the signal tests' pattern) under load crashed on that thread
while their participant was torn down: two cores, both ``TypeLookupRequestListener::answer_request
-> TypeLookupManager::send -> WriterHistory::create_change`` locking a null mutex, in 2 of ~160
such processes at load 17-24; the segfault in ``destroy_node`` of the tenth session's CI run had
the same shape (a native thread, the main thread in ``destroy_node``). With type propagation off
the participant neither announces XTypes type information nor starts that service (its threads
are gone: test/ros/test_dds_profile_nodes.py), so the crash site cannot run; ROS 2 endpoints
still match by type name (checked both ways against a participant with Fast DDS's defaults).
0 crashes in 120 more such rounds (360 processes) with it.

:func:`apply` points ``FASTDDS_DEFAULT_PROFILES_FILE`` at the package's file when it is unset
and the middleware is Fast DDS (the default RMW), before the process's first participant: the
nodes' :func:`dynlearn_ros.nodes.runner.run_node`, the CLI and :func:`dynlearn_ros.procs.ros_domain`
(tests, benchmarks) call it. A profile file the user set is kept (theirs wins, said once)."""

from __future__ import annotations

import os
from collections.abc import MutableMapping

ENV = "FASTDDS_DEFAULT_PROFILES_FILE"
FILE = "fastdds_profile.xml"
#: how :func:`apply`'s line ends when the package's own profile is in use (the expected case: a
#: node logs that line at debug, any other at info)
APPLIED = "(type propagation off)"


def profile_path() -> str | None:
    """The package's profile file, or None where it cannot be found (an install without it)."""
    from dynlearn_ros.paths import config_file

    try:
        return str(config_file(FILE))
    except FileNotFoundError:
        return None


def apply(environ: MutableMapping[str, str] | None = None) -> str:
    """Set ``FASTDDS_DEFAULT_PROFILES_FILE`` in ``environ`` (default ``os.environ``) to the
    package's profile unless it is set already or another RMW is selected; returns one line
    saying which profile the process uses (for a node's start-up log)."""
    env = os.environ if environ is None else environ
    rmw = env.get("RMW_IMPLEMENTATION", "")
    if rmw and rmw != "rmw_fastrtps_cpp":
        return f"DDS profile: not applied (RMW_IMPLEMENTATION={rmw})"
    path = profile_path()
    if env.get(ENV) and env[ENV] != path:
        return f"DDS profile: {env[ENV]} (set by the user; the package's type-propagation setting not applied)"
    if path is None:
        return f"DDS profile: Fast DDS defaults ({FILE} not found)"
    env[ENV] = path   # unset, or already ours (a parent process set it for its children)
    return f"DDS profile: {path} {APPLIED}"
