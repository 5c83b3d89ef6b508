"""The API's native heap under threaded model work, in one process: the bundled notes ingested
into a temporary store, then 4 anyio worker threads run retrieval + grounding-verifier scoring
of the golden set's questions for SECONDS, RSS sampled each second; prints the RSS at both ends
and the least-squares slope over the second half (MB/min). What docs/benchmarks.md ("Memory
under load") compares:

    python bench/heap_threads.py 240                        # glibc's defaults
    MALLOC_ARENA_MAX=2 python bench/heap_threads.py 240     # 2 arenas
    python bench/heap_threads.py 240 trim                   # malloc_trim(0) after each request
    MALLOC_ARENA_MAX=2 python bench/heap_threads.py 240 trim
"""

from __future__ import annotations

import ctypes
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
import psutil

from runtime.parts import Runtime
from shiori.config import Settings
from shiori.grounding import Claim

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    secs = float(sys.argv[1]) if len(sys.argv) > 1 else 240.0
    trim = "trim" in sys.argv[2:]
    settings = Settings(qdrant=str(Path(tempfile.mkdtemp()) / "store"), collection="heap")
    parts = Runtime.build(settings)
    parts.ingestor.run([REPO / "notes"])
    lines = (REPO / "eval" / "datasets" / "notes.jsonl").read_text(encoding="utf-8").splitlines()
    qs = [json.loads(line)["question"] for line in lines if line.strip()]
    scorer = parts.answerer.verifier.scorer
    libc = ctypes.CDLL("libc.so.6")
    proc = psutil.Process()
    samples: list[tuple[float, float]] = []

    def one(i: int) -> None:
        q = qs[i % len(qs)]
        passages = parts.retriever.search(q, 8, None)
        claims = [Claim(q, "", p.chunk.text[:300], p.chunk.text[:120]) for p in passages[:4]]
        if scorer is not None:
            scorer(claims)
        if trim:
            libc.malloc_trim(0)

    async def run() -> int:
        t0, done = time.monotonic(), 0

        async def worker(k: int) -> None:
            nonlocal done
            i = k
            while time.monotonic() - t0 < secs:
                await anyio.to_thread.run_sync(one, i)
                i, done = i + 4, done + 1

        async def sampler() -> None:
            while time.monotonic() - t0 < secs:
                samples.append((time.monotonic() - t0, proc.memory_info().rss / 1e6))
                await anyio.sleep(1)

        async with anyio.create_task_group() as tg:
            for k in range(4):
                tg.start_soon(worker, k)
            tg.start_soon(sampler)
        return done

    requests = anyio.run(run)
    half = [s for s in samples if s[0] > secs / 2]
    xs, ys = [t for t, _ in half], [r for _, r in half]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mx) * (y - my) for x, y in half) / sum((x - mx) ** 2 for x in xs) * 60
    print(json.dumps({
        "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX"), "trim": trim,
        "requests": requests, "rss_start_mb": round(samples[0][1]),
        "rss_end_mb": round(samples[-1][1]), "slope_mb_per_min": round(slope, 1),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
