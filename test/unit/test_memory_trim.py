"""runtime/memory.py: ``trim_heap`` really gives a fragmented heap's free pages back (glibc);
``arena_residency`` sees the arenas; the model slot's worker trims after each load (real loads of
the shipped SVDKL model: without the trim they leave MBs resident and free in the worker's arena,
the controller's creep in the soaks, docs/safety.md "Memory, eleventh session")."""

from __future__ import annotations

import ctypes
import threading
import time

import psutil
import pytest

from dynlearn_ros.runtime.memory import arena_residency, heap_stats, trim_available, trim_heap

pytestmark = pytest.mark.skipif(not trim_available(), reason="the C library has no malloc_trim (not glibc)")

BLOCK = 4000          # bytes: below glibc's mmap threshold (128 kB), so from the heap
BLOCKS = 8000         # ~31 MB in all
KEEP_EVERY = 16       # one live block in 16 pins the heap: free() alone cannot shrink it


def test_trim_returns_the_free_pages_between_live_blocks():
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    proc = psutil.Process()
    # free heap left resident by earlier tests would serve the blocks without growing the RSS:
    # trim first, so reused free chunks are pages the kernel has to fault in again
    trim_heap()
    r0 = proc.memory_info().rss
    blocks = [libc.malloc(BLOCK) for _ in range(BLOCKS)]
    assert all(blocks)
    for b in blocks:
        ctypes.memset(b, 1, BLOCK)      # touch every page: resident
    r1 = proc.memory_info().rss
    kept = [b for i, b in enumerate(blocks) if i % KEEP_EVERY == KEEP_EVERY - 1]
    for i, b in enumerate(blocks):
        if i % KEEP_EVERY != KEEP_EVERY - 1:
            libc.free(b)
    r2 = proc.memory_info().rss
    took = trim_heap()
    r3 = proc.memory_info().rss
    for b in kept:
        libc.free(b)
    grown = r1 - r0
    assert grown > 0.8 * BLOCK * BLOCKS            # the blocks were resident
    # the premise: free() keeps the pages (each free run of 15 blocks sits between live ones)
    assert r2 - r0 > 0.8 * grown
    # each free run of 15 x 4 kB holds >= 13 whole 4 kB pages: trim can return >= 13/16 of what
    # grew; asking for half leaves room for the allocator's own bookkeeping and other threads
    assert r2 - r3 > 0.5 * grown, (r0, r1, r2, r3)
    assert took is not None and took >= 0.0


def test_heap_stats_sees_live_blocks_then_free_ones():
    """mallinfo2 through heap_stats: 8 000 live blocks of 4 kB raise ``in_use`` by ~32 MB; freed
    (one in 16 kept, which pins the heap) they move to ``free`` - what a soak's RSS cannot tell
    apart. Bounds: 90 % of the bytes asked (glibc adds 16 B of header per block, never less)."""
    if heap_stats() is None:
        pytest.skip("the C library has no mallinfo2")
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    asked = BLOCK * BLOCKS / 1e6
    h0 = heap_stats()
    blocks = [libc.malloc(BLOCK) for _ in range(BLOCKS)]
    h1 = heap_stats()
    for i, b in enumerate(blocks):
        if i % KEEP_EVERY != KEEP_EVERY - 1:
            libc.free(b)
    h2 = heap_stats()
    for i, b in enumerate(blocks):
        if i % KEEP_EVERY == KEEP_EVERY - 1:
            libc.free(b)
    freed = asked * (1 - 1 / KEEP_EVERY)
    assert h1["in_use"] - h0["in_use"] >= 0.9 * asked, (h0, h1)
    assert h1["in_use"] - h2["in_use"] >= 0.9 * freed, (h1, h2)
    assert h2["free"] - h1["free"] >= 0.9 * freed, (h1, h2)


def _libc():
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    return libc


def test_arena_residency_sees_a_thread_arena_grow():
    """A new thread's 8 000 touched blocks of 4 kB (~32 MB) are served from a thread arena (or,
    past glibc's arena limit, one shared with another thread): the arenas' resident MB from smaps
    rise by at least 90 % of the bytes asked, and the count includes the main arena."""
    if heap_stats() is None:
        pytest.skip("the C library has no mallinfo2")
    libc = _libc()
    blocks: list[int] = []
    r0 = arena_residency()
    assert r0 is not None and r0["arenas"] >= 1 and r0["heap_mb"] > 0

    def grab():
        for _ in range(BLOCKS):
            b = libc.malloc(BLOCK)
            ctypes.memset(b, 1, BLOCK)
            blocks.append(b)

    t = threading.Thread(target=grab)
    t.start()
    t.join()
    r1 = arena_residency()
    for b in blocks:
        libc.free(b)
    grown = r1["heap_mb"] + sum(r1["arena_mb"]) - r0["heap_mb"] - sum(r0["arena_mb"])
    assert grown >= 0.9 * BLOCK * BLOCKS / 1e6, (r0, r1)
    assert r1["arenas"] == 1 + len(r1["arena_mb"])


def _kept_resident_mb() -> float:
    """What malloc's arenas hold resident but not in live blocks (MB): their resident anonymous
    memory (smaps) less the live bytes inside them (mallinfo2 ``uordblks``)."""
    r, h = arena_residency(), heap_stats()
    return r["heap_mb"] + sum(r["arena_mb"]) - h["arena_in_use"]


def _slot_loads(trim: bool, loads: int, tmp_path) -> float:
    """``loads`` loads of the shipped SVDKL model by a deferred slot (its worker: load, a check of
    300 predictions), each swapped in and its predecessor released by this thread as the node's
    tick does; then one request for a directory without a model, refused by the loader at once
    (with ``trim``: after the worker's trim, so nothing of the loads is in flight). Returns the
    change of :func:`_kept_resident_mb` from before the first load (after a trim) to after that
    refusal."""
    from dynlearn_ros.core.inverse_model import InverseQuery
    from dynlearn_ros.core.robots import robot_spec
    from dynlearn_ros.paths import resolve_model_dir
    from dynlearn_ros.runtime.registry import load_inverse_model
    from dynlearn_ros.runtime.slot import ModelSlot, check_model

    spec = robot_spec("iiwa")
    path, urdf = str(resolve_model_dir("svdkl_iiwa_sim")), str(spec.urdf_path)

    def load(kind, p):
        return load_inverse_model(kind, p, spec.joint_names, urdf=urdf)

    slot = ModelSlot(load("svdkl", path), "svdkl", path, load,
                     lambda m: check_model(m, spec.joint_names, spec.home, 1e-3, ticks=300),
                     deferred=True, trim_before_load=trim)
    query = InverseQuery(len(spec.joint_names), dt=1e-3)
    for arr in (query.q, query.q_des, query.q_des_next):
        arr[:] = spec.home
    trim_heap()
    k0 = _kept_resident_mb()
    try:
        for i in range(loads):
            swaps, released = slot.swaps, slot.released
            slot.request("svdkl", path)
            deadline = time.monotonic() + 60.0   # a load takes 0.05-2 s, also at load average 20
            # by count, not by time: swapped in, and the model it pushed out released
            while slot.swaps == swaps or (i >= 1 and slot.released == released):
                assert time.monotonic() < deadline, f"load {i + 1}: not swapped and released in 60 s"
                cand = slot.take_ready()
                if cand is not None:
                    slot.activated(cand, slot.active.model)
                slot.after_tick(query)
                time.sleep(0.001)
            assert not [e for e in slot.poll() if not e.ok]
        slot.request("svdkl", str(tmp_path))   # no model there: refused by the loader
        deadline = time.monotonic() + 60.0
        while not (events := slot.poll()):
            assert time.monotonic() < deadline, "the request for an empty directory was not refused in 60 s"
            time.sleep(0.001)
        assert len(events) == 1 and not events[0].ok, events
        assert slot.trims == (loads + 1 if trim else 0), slot.trims
        return _kept_resident_mb() - k0
    finally:
        slot.close()


def test_slot_trims_what_its_loads_leave_resident(tmp_path):
    """The fix for the controller's creep (docs/safety.md, "Memory, eleventh session"). Without
    ``trim_before_load``, 10 loads leave the arenas holding 4.2-6.0 MB more resident free memory
    (measured, 4 runs; rising by ~0.3 MB a load: each load's session build fragments the worker's
    arena a little further). The premise asked here: > 3 MB. With it, the worker's
    ``malloc_trim(0)`` as it takes a request returns the free pages of every arena; what may stay
    is the thread arenas' top chunks, which ``malloc_trim`` does not shrink, and partly used
    pages: < 2 MB, i.e. under half the premise."""
    if heap_stats() is None or arena_residency() is None:
        pytest.skip("no mallinfo2 or no /proc/self/smaps")
    without = _slot_loads(False, 10, tmp_path)
    with_trim = _slot_loads(True, 10, tmp_path)
    assert without > 3.0, f"premise: 10 loads without the trim left only {without:.2f} MB resident and free"
    assert with_trim < 2.0, (without, with_trim)
