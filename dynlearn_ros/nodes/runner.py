"""One ``main()`` for every node: signals, executor, spin, summary, exit code.

:func:`run_node` is what each node's ``main()`` calls. SIGINT and SIGTERM only set a stop flag,
any number of times and at any moment - during imports (:func:`catch_signals_early`, called at
the top of a node module run as ``python -m``; a signal that arrives while the interpreter itself
starts, before any package code runs, is handled only if the launcher started the process with
the signals blocked, as :class:`dynlearn_ros.procs.NodeProcess` does - otherwise Python's own
KeyboardInterrupt ends it), while the node configures, while it spins, while
it shuts down - so no KeyboardInterrupt is ever raised inside rclpy (the second SIGINT of a
terminal plus ``ros2 launch`` used to abort the process in rclpy's shutdown). rclpy is initialised
with its own signal handling off; the executor is :func:`dynlearn_ros.nodes.params.make_executor`'s
(EventsExecutor or SingleThreadedExecutor, never the MultiThreadedExecutor); spinning runs in
0.1 s slices so the flag is seen. Then the node's ``write_summary()`` (if it has one), the node
is destroyed, rclpy shut down, and the signals ignored while the interpreter exits (a node with
``exit_without_finalization`` ends with os._exit instead, unless an exception is on its way out). A
teardown still running 7 s after the summary is ended by :class:`ShutdownWatchdog`, which says
where it stuck. Exit code: 0 after a signal or a normal end, 2 with one log line when the
configuration is refused. :func:`run_node` is a process's last act (the watchdog ends it).

This module imports nothing heavy at import time (the early handler must be cheap).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable


class StopFlag:
    """A stop flag that a signal handler may set: :meth:`set` takes no lock.

    ``threading.Event.set`` takes its Condition's lock, and Python runs a signal handler in the
    main thread between any two bytecodes - also inside the previous signal's handler. A second
    signal arriving while the first handler was inside ``Event.set`` ran ``Event.set`` again,
    which waited for the lock its own interrupted frame held: the process hung for ever after
    SIGINT, SIGTERM, SIGINT (seen once in CI, then reproduced in 2 of 148 sim_bridge processes under
    load; gdb showed the nested ``_on_signal -> Event.set`` frames). Here :meth:`set` is one
    attribute store (atomic under the GIL), :meth:`is_set` one read, and :meth:`wait` polls, so
    no interleaving of signals and waiters can deadlock. The same interface as the subset of
    ``threading.Event`` the nodes use (``run(executor, stop)`` receives one)."""

    __slots__ = ("_flag",)
    #: longest sleep of :meth:`wait` between two looks at the flag (s): a waiter notices a stop
    #: within this
    POLL_S = 0.01

    def __init__(self) -> None:
        self._flag = False

    def set(self) -> None:
        self._flag = True

    def clear(self) -> None:
        self._flag = False

    def is_set(self) -> bool:
        return self._flag

    def wait(self, timeout: float | None = None) -> bool:
        """Return True once the flag is set, False after ``timeout`` s (None: no limit)."""
        import time

        end = None if timeout is None else time.monotonic() + timeout
        while not self._flag:
            if end is None:
                time.sleep(self.POLL_S)
                continue
            remaining = end - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(remaining, self.POLL_S))
        return True


#: set by SIGINT / SIGTERM; the process ends cleanly once its node notices
STOP = StopFlag()
_installed = False


def _on_signal(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
    STOP.set()   # no lock: see StopFlag (a handler may run inside another handler)


def catch_signals_early() -> None:
    """Route SIGINT / SIGTERM to the stop flag from now on (idempotent)."""
    global _installed
    if not _installed:
        signal.signal(signal.SIGINT, _on_signal)
        signal.signal(signal.SIGTERM, _on_signal)
        _installed = True
    # a launcher may start the process with them blocked (dynlearn_ros.procs.NodeProcess does,
    # so a signal during the interpreter's start-up waits): a pending one is delivered now
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


def run_node(factory: Callable[[], object], args: list[str] | None = None, *, name: str) -> int:
    """Initialise rclpy, build the node with ``factory()``, spin it until a signal (or until
    its ``run(executor, stop)`` returns, for nodes that drive their own loop), write its summary,
    destroy it, shut down. Returns the exit code (0, or 2 on a configuration error)."""
    catch_signals_early()
    import rclpy
    from rclpy.exceptions import ParameterException
    from rclpy.signals import SignalHandlerOptions

    from dynlearn_ros.core.config import ConfigError
    from dynlearn_ros.dds_profile import APPLIED, apply
    from dynlearn_ros.nodes.params import make_executor

    logger = rclpy.logging.get_logger(name)
    profile = apply()   # before the process's participant (dds_profile.py: why)
    (logger.debug if profile.endswith(APPLIED) else logger.info)(profile)
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    context = rclpy.get_default_context()
    node = executor = None
    code = 0
    try:
        try:   # built even after an early signal: its configuration says where the summary goes
            node = factory()
        except (ConfigError, ParameterException, ValueError, FileNotFoundError) as exc:
            # a bad value, or one of the wrong ROS type (-p k_max:=100 for a double array)
            logger.fatal(f"start-up failed: {exc}")
            return 2
        executor = make_executor(context)
        executor.add_node(node)
        runner = getattr(node, "run", None)
        if STOP.is_set():
            pass
        elif callable(runner):
            code = int(runner(executor, STOP) or 0)
        else:
            spin_until_stopped(executor, context)
    finally:
        try:
            if node is not None and hasattr(node, "write_summary"):
                node.write_summary()  # plain data only: valid whatever state rclpy is in
        finally:
            watchdog = ShutdownWatchdog(name, 1 if sys.exc_info()[0] is not None else code)
            watchdog.stage = "executor shutdown"
            if executor is not None:
                executor.shutdown(timeout_sec=1.0)
            watchdog.stage = "destroy_node"
            if node is not None:
                node.destroy_node()
            watchdog.stage = "rclpy shutdown"
            context.try_shutdown()
            watchdog.stage = "interpreter exit"
            ignore_signals_until_exit()
            # not while an exception is on its way out (a summary that could not be written):
            # os._exit would turn its traceback and exit 1 into a silent 0
            if getattr(node, "exit_without_finalization", False) and sys.exc_info()[0] is None:
                exit_now(code)
    return code


class ShutdownWatchdog:
    """Ends a process whose shutdown is stuck after its summary was written.

    Everything between the summary and the exit is bounded by its own timeouts (the executor's
    shutdown 1 s, the model slot's join ``SLOT_JOIN_S`` = 2 s, the trajectory parser's 2 s): 5 s
    at most. A shutdown still running :attr:`AFTER_S` = 7 s after the summary waits on something
    that will not come (a CI run saw one controller in ~40 processes hang after its summary, not
    reproduced in 120 more), and ``ros2 launch`` would SIGKILL it 10 s after its SIGINT with
    nothing in the log. Here the process says where it stuck (the stage and every thread's Python
    traceback, :mod:`faulthandler`) and ends with its own exit code (``os._exit``: the summary
    is written, the stuck part is the teardown). That needs the GIL. If native code holds it (seen
    in CI: rclpy's ``destroy_node`` inside ``rcl_node_fini``, the GIL held throughout), no Python
    thread runs, so two things armed here run without it: faulthandler's timer dumps every
    thread's Python stack at :attr:`DUMP_S` = 8 s, and a POSIX timer (:func:`arm_native_exit`)
    calls libc's ``_exit`` with the node's code at :attr:`HARD_S` = 9 s - the same end as the
    watchdog's, said by the dump. Where that timer cannot be armed (not glibc), faulthandler
    ends the process itself at 9 s with exit code 1. All are daemons: a clean exit ends them."""

    AFTER_S = 7.0
    DUMP_S = 8.0
    HARD_S = 9.0

    def __init__(self, name: str, code: int) -> None:
        import faulthandler
        import threading

        self.name, self.code = name, code
        self.stage = "start"
        if arm_native_exit(self.HARD_S, code):
            faulthandler.dump_traceback_later(self.DUMP_S, exit=False)
        else:
            faulthandler.dump_traceback_later(self.HARD_S, exit=True)
        threading.Thread(target=self._watch, name="shutdown-watchdog", daemon=True).start()

    def _watch(self) -> None:
        import faulthandler
        import time

        time.sleep(self.AFTER_S)
        try:
            sys.stderr.write(f"[ERROR] [{self.name}]: shutdown stuck in '{self.stage}' {self.AFTER_S:.0f} s "
                             f"after the summary was written: ending the process (exit {self.code}); "
                             "the threads' stacks follow\n")
            sys.stderr.flush()
            faulthandler.dump_traceback(all_threads=True)
        finally:
            exit_now(self.code)


def arm_native_exit(seconds: float, code: int) -> bool:
    """Arm a one-shot POSIX timer that ends the process with ``_exit(code)`` after ``seconds``,
    with no Python involved: glibc runs a ``SIGEV_THREAD`` timer's function on a thread of its
    own and passes it the timer's value, so the function is libc's ``_exit`` and the value the
    exit code. It works while another thread holds the GIL for ever. Returns False (nothing
    armed) where the C library does not provide it (then the caller keeps faulthandler's exit).
    The timer lives until the process ends; it is armed once, at the end of a process."""
    import ctypes

    class _Sigevent(ctypes.Structure):   # struct sigevent, Linux: 64 bytes
        _fields_ = [("value", ctypes.c_void_p), ("signo", ctypes.c_int), ("notify", ctypes.c_int),
                    ("function", ctypes.c_void_p), ("attributes", ctypes.c_void_p), ("pad", ctypes.c_int * 8)]

    class _Timespec(ctypes.Structure):
        _fields_ = [("sec", ctypes.c_long), ("nsec", ctypes.c_long)]

    class _Itimerspec(ctypes.Structure):
        _fields_ = [("interval", _Timespec), ("value", _Timespec)]

    sigev_thread, clock_monotonic = 2, 1
    try:
        if not sys.platform.startswith("linux") or ctypes.sizeof(_Sigevent) != 64:
            return False
        libc = ctypes.CDLL(None, use_errno=True)
        create, settime, exit_fn = libc.timer_create, libc.timer_settime, libc._exit
    except (OSError, AttributeError):
        return False
    create.argtypes = [ctypes.c_int, ctypes.POINTER(_Sigevent), ctypes.POINTER(ctypes.c_void_p)]
    settime.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(_Itimerspec), ctypes.c_void_p]
    event = _Sigevent(value=code & 0xFF, notify=sigev_thread,
                      function=ctypes.cast(exit_fn, ctypes.c_void_p).value)
    timer = ctypes.c_void_p()
    if create(clock_monotonic, ctypes.byref(event), ctypes.byref(timer)) != 0:
        return False
    whole = int(seconds)
    spec = _Itimerspec(value=_Timespec(whole, int((seconds - whole) * 1e9)))
    return settime(timer, 0, ctypes.byref(spec), None) == 0


def exit_now(code: int) -> None:
    """End the process at once with ``code`` (stdio flushed, no interpreter finalization): for a
    node whose worker thread is still inside native code (an onnxruntime session build) that the
    finalization would abort or deadlock on. Everything the node owes (summary, ROS shutdown)
    is done by then."""
    import os
    import sys

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def ignore_signals_until_exit() -> None:
    """From here on SIGINT / SIGTERM are ignored: the node is done, the process only exits.
    Without this, a signal arriving while the interpreter finalizes kills it (exit -2): Python's
    finalization puts back the default action for every signal it had a handler for, but leaves
    an ignored one ignored. SIGKILL (``ros2 launch``'s last escalation) still ends it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def spin_until_stopped(executor, context) -> None:
    """spin_once in 0.1 s slices until the stop flag is set or the context shuts down, never
    interrupting a callback. While the context shuts down ``spin_once`` may raise a RuntimeError
    from the binding; that ends the loop (the same error in a live context is raised)."""
    import rclpy

    while not STOP.is_set() and rclpy.ok(context=context):
        try:
            executor.spin_once(timeout_sec=0.1)
        except RuntimeError:
            if rclpy.ok(context=context):
                raise
            return
