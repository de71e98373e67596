"""Keeping the analyses' own footprint small: they often run on the very host that is short
of memory, so their peak (PSS of the whole process tree, `make bench`) is kept down here as
well as in how the data is held.

glibc's allocator serves a large request from its heap instead of mmap once a large block
has been freed (its mmap threshold adapts upwards, up to 32 MiB; mallopt(3)), and keeps
freed heap memory for reuse. A reader that parses a few MB at a time in two threads would
then hold tens of MiB it no longer uses. Here the threshold is pinned, so large blocks go
back to the kernel when freed, and the heap is trimmed after the reading.
"""

from __future__ import annotations

import ctypes
import functools
import gc

# mallopt() parameters (malloc.h)
_M_MMAP_THRESHOLD = -3
# Above this, a block comes from mmap and goes back to the kernel when freed: the batches'
# bytes and the parser's buffers are larger. Much lower, the columns of every batch go to
# mmap too, and their page faults cost more time than the memory is worth
# (docs/performance.md).
MMAP_THRESHOLD_BYTES = 1024 * 1024


@functools.cache
def _libc() -> ctypes.CDLL | None:
    # The process's own symbols, libc's among them. ctypes.util.find_library("c") would run
    # `ldconfig -p` in a subprocess: a fork of this process, which a process tree's RSS then
    # counts twice.
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    # musl and other C libraries have neither function: nothing to tune there.
    if not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
        return None
    return libc


def return_freed_memory() -> None:
    """Make large freed blocks go back to the kernel at once (glibc only; else nothing)."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def freeze() -> None:
    """Move every object alive now out of the garbage collector's sight, for objects that
    live until the end anyway. After the imports (about 90,000 objects): collections then
    cost microseconds instead of tens of milliseconds, and a forked worker does not copy the
    pages a collection would touch. After discovery: the list of snapshots (a year is 52,560
    paths, each a few objects), which every full collection would walk again. Before the
    plots: the result drawn and matplotlib's modules, which the collection after each figure
    would otherwise walk.

    A garbage cycle alive at a call stays until the process ends: a full collection first
    would cost about what this saves, and finds nothing to free there."""
    gc.freeze()


def trim() -> None:
    """Give the kernel back the free heap memory, after a phase that used much of it."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
