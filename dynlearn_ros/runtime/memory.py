"""Give the C allocator's free pages back to the kernel: glibc's ``malloc_trim(0)``.

Why (docs/safety.md, "Memory, seventh session"): a model swap builds an onnxruntime session in
the model slot's worker thread and destroys the one a swap let go in the ticking thread. glibc
serves each thread from its own malloc arena and keeps freed chunks there for reuse; a thread
arena's free pages are returned to the kernel only when its top chunk shrinks past the trim
threshold, so fragments between live blocks stay resident. ``malloc_trim(0)`` walks every arena
and ``madvise(MADV_DONTNEED)``s the whole free pages inside them, which bounds what a run of
load / destroy cycles can leave resident.

:func:`heap_stats` reads glibc's ``mallinfo2``: what the C allocator holds for live blocks and
what it keeps free, the two parts of a node's anonymous memory that a soak's RSS alone cannot
tell apart (a leak raises the first; the free memory an arena keeps for reuse, the second).

No ROS, no numpy. On a C library without ``malloc_trim`` / ``mallinfo2`` (musl, macOS, glibc <
2.33) :func:`trim_heap` and :func:`heap_stats` do nothing and say so (``None``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections.abc import Callable

#: the C library's functions looked up so far (None: the C library has none of that name)
_functions: dict[str, Callable | None] = {}


class _Mallinfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (ten size_t fields)."""

    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


#: name -> (argtypes, restype) of the C functions this module calls
_SIGNATURES = {"malloc_trim": ([ctypes.c_size_t], ctypes.c_int), "mallinfo2": ([], _Mallinfo2)}


def _lookup(name: str) -> Callable | None:
    """The C library's ``name`` with its signature set (looked up once), or None where it has none."""
    if name not in _functions:
        try:
            fn = getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), name)
        except (OSError, AttributeError):
            fn = None
        if fn is not None:
            fn.argtypes, fn.restype = _SIGNATURES[name]
        _functions[name] = fn
    return _functions[name]


def trim_available() -> bool:
    """Whether this process's C library has ``malloc_trim`` (glibc)."""
    return _lookup("malloc_trim") is not None


def trim_heap() -> float | None:
    """``malloc_trim(0)`` in every arena; returns its duration in seconds (wall, perf_counter),
    or None where the C library has no ``malloc_trim``. It takes each arena's lock in turn, so
    another thread's malloc in that arena waits for at most that arena's walk: call it where a
    short wait costs nothing (the model slot calls it in its worker thread, never in a tick)."""
    fn = _lookup("malloc_trim")
    if fn is None:
        return None
    t0 = time.perf_counter()
    fn(0)
    return time.perf_counter() - t0


def heap_stats() -> dict[str, float] | None:
    """The C allocator's bytes in MB (1e6), all arenas: ``in_use`` (live blocks: ``uordblks`` +
    the separately mapped ``hblkhd``), ``free`` (kept free inside the arenas: ``fordblks``),
    ``arenas`` (the arenas' total, ``arena``); None where the C library has no ``mallinfo2``.
    It takes each arena's lock in turn (a walk of the free lists, tens of microseconds): call it
    at a status rate, not per tick."""
    fn = _lookup("mallinfo2")
    if fn is None:
        return None
    m = fn()
    return {"in_use": (m.uordblks + m.hblkhd) / 1e6, "free": m.fordblks / 1e6, "arenas": m.arena / 1e6}
