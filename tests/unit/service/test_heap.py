"""The API process's heap knobs (service.heap): real glibc calls on this Linux machine."""

from __future__ import annotations

import platform
import time

import anyio
import pytest

from service import heap

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")


@glibc
def test_the_arena_cap_is_set_and_zero_keeps_the_default() -> None:
    assert heap.limit_arenas(2) is True
    assert heap.limit_arenas(0) is False


@glibc
def test_trim_returns_freed_pages() -> None:
    blocks = [bytearray(64 * 1024) for _ in range(2000)]  # 128 MB below the mmap threshold
    del blocks[::2]  # holes inside the heap: only a trim gives them back
    assert isinstance(heap.trim(), bool)
    del blocks
    assert heap.trim() is True


def test_the_periodic_trim_stops_when_asked() -> None:
    async def go() -> float:
        stop = anyio.Event()
        began = time.perf_counter()
        async with anyio.create_task_group() as tg:
            tg.start_soon(heap.trim_every, 3600.0, stop)
            await anyio.sleep(0.05)
            stop.set()
        return time.perf_counter() - began

    assert anyio.run(go) < 5  # not the hour of its interval


def test_no_trim_task_when_turned_off() -> None:
    async def go() -> None:
        with anyio.fail_after(1):
            await heap.trim_every(0, anyio.Event())  # returns at once: nothing to wait for

    anyio.run(go)
