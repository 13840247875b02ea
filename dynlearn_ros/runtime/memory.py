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

:func:`arena_residency` reads a process's ``/proc/PID/smaps`` (from inside or from outside the
process): how many malloc arenas it has and how much of each is resident, the view that tells
one arena's kept free memory from the rest of a node's anonymous memory.

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
    ``arenas`` (the arenas' total, ``arena``), ``arena_in_use`` (live blocks inside the arenas,
    ``uordblks``: with :func:`arena_residency`'s resident MB, what the arenas keep resident and
    free); None where the C library has no ``mallinfo2``.
    It takes each arena's lock in turn (a walk of the free lists, tens of microseconds): call it
    at a status rate, not per tick."""
    fn = _lookup("mallinfo2")
    if fn is None:
        return None
    m = fn()
    return {"in_use": (m.uordblks + m.hblkhd) / 1e6, "free": m.fordblks / 1e6, "arenas": m.arena / 1e6,
            "arena_in_use": m.uordblks / 1e6}


#: glibc's HEAP_MAX_SIZE on 64-bit: each thread arena's heap is a reservation of this size, aligned
#: to it (an rw part that grows and a PROT_NONE rest)
ARENA_HEAP_BYTES = 64 << 20


def arena_residency(pid: int | str = "self") -> dict | None:
    """A glibc process's malloc arenas as the kernel sees them (``/proc/PID/smaps``): ``heap_mb``
    (the main arena's ``[heap]``, anonymous resident MB), ``arena_mb`` (each thread arena heap's
    anonymous resident MB, in address order) and ``arenas`` (1 for the main arena + the thread
    heaps). A thread heap is an unnamed mapping at a 64 MiB-aligned address whose rw part and the
    ``---p`` mapping right after it make 64 MiB; thread stacks, mmapped blocks and Python's own
    arenas never do. None if the file cannot be read (no such process, not Linux). Reading smaps
    walks the process's page tables (~1 ms for a node): a status-rate call, from any process."""
    try:
        with open(f"/proc/{pid}/smaps") as f:
            text = f.read()
    except OSError:
        return None
    maps: list[list] = []   # [start, end, perms, name, anonymous kB]
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if "-" in parts[0] and len(parts) >= 5 and ":" in parts[3]:
            start, end = (int(x, 16) for x in parts[0].split("-"))
            maps.append([start, end, parts[1], parts[5] if len(parts) > 5 else "", 0])
        elif parts[0] == "Anonymous:" and maps:
            maps[-1][4] = int(parts[1])
    heap_kb = sum(m[4] for m in maps if m[3] == "[heap]")
    arena_kb = [m[4] for m, nxt in zip(maps[:-1], maps[1:], strict=True)
                if m[3] == "" and m[0] % ARENA_HEAP_BYTES == 0 and m[2].startswith("rw") and nxt[0] == m[1]
                and nxt[2] == "---p" and nxt[3] == "" and nxt[1] - m[0] == ARENA_HEAP_BYTES]
    return {"heap_mb": heap_kb * 1024 / 1e6, "arena_mb": [k * 1024 / 1e6 for k in arena_kb],
            "arenas": 1 + len(arena_kb)}
