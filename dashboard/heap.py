"""The dashboard process's C heap (glibc malloc; on other C libraries these do nothing).

A worker serves requests on many threads (gunicorn's, the Overview's query pool, DuckDB's), and glibc gives each
contending thread an arena of its own, up to 8 per core, each keeping the memory its thread freed for reuse. Under
the load benchmark the heap in use stayed flat while the arenas grew, and the worker's resident memory with them
(~+47 MB/h, BENCHMARKS.md ``load-memory``); with 2 arenas it stopped growing in a replay of the same requests.
"""

from __future__ import annotations

import ctypes
import functools

ARENAS = 2  # few: the threads mostly wait on the GIL or on DuckDB, which allocates on its own
_M_ARENA_MAX = -8  # mallopt's parameter number (malloc.h)


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    libc = ctypes.CDLL(None)
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def limit_arenas(count: int = ARENAS) -> None:
    """At most ``count`` malloc arenas: call before the process starts threads (glibc fixes the limit when a second
    thread first needs an arena of its own)."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_ARENA_MAX, count)


def release_freed_memory() -> None:
    """Hands the heap's free pages back to the operating system (about a millisecond)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
