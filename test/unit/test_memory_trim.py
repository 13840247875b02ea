"""runtime/memory.py: ``trim_heap`` really gives a fragmented heap's free pages back (glibc)."""

from __future__ import annotations

import ctypes

import psutil
import pytest

from dynlearn_ros.runtime.memory import trim_available, trim_heap

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
    from dynlearn_ros.runtime.memory import heap_stats

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
