"""The API process's native heap: few malloc arenas, and free pages handed back to the system.

Why: the API runs the embedding model, the grounding verifier and Qdrant Edge from anyio's
worker threads. glibc gives each thread that meets a locked arena a new one (up to 8 × cores),
and the tensors of varying shapes that each request allocates leave every arena fragmented: RSS
climbs for as long as the service runs although nothing is kept. Measured on this 2-core machine
(search + verifier from 4 worker threads for 240 s, RSS slope over the second half): glibc's
defaults +17.6 MB/min; 2 arenas +3.6; a trim after each request +7.6; both −7.0
(`docs/benchmarks.md`, "Load"). glibc documents both knobs: mallopt(3) ``M_ARENA_MAX``,
malloc_trim(3).

What still grew after both (+3.9 MB/min in a 30-minute soak) grows with the number of distinct
input shapes the models see (holder not isolated); the models' batches are now padded to length
buckets (``Settings.pad_multiple``, see `shiori.embedding`).

Elsewhere than glibc (musl, macOS) both calls are no-ops that return False.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from functools import cache

import anyio

log = logging.getLogger("shiori.service")

M_ARENA_MAX = -8  # glibc's malloc.h


@cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt, libc.malloc_trim  # noqa: B018 — both exist only in glibc
    except (OSError, AttributeError):
        return None
    return libc


def limit_arenas(arenas: int) -> bool:
    """Cap glibc's malloc arenas at ``arenas`` (≥ 1) for the rest of the process. Call it before
    threads start allocating (before the models load): arenas made earlier stay. ``arenas`` 0
    keeps glibc's default. Returns whether the cap was set."""
    libc = _libc()
    if arenas <= 0 or libc is None:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, arenas))


def trim() -> bool:
    """Give the free pages at the top and inside every arena back to the system
    (malloc_trim(0)); a few milliseconds with two arenas. Returns whether any memory was
    released (False also where there is no glibc)."""
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


async def trim_every(interval_s: float, stop: anyio.Event) -> None:
    """Trim every ``interval_s`` seconds until ``stop`` is set (the lifespan's background task);
    in a worker thread, since malloc_trim holds each arena's lock while it walks it."""
    if interval_s <= 0 or _libc() is None:
        return
    while True:
        with anyio.move_on_after(interval_s):
            await stop.wait()
        if stop.is_set():
            return
        await anyio.to_thread.run_sync(trim)
