"""Same run, ABAB: /v1/search throughput and API RSS with glibc's default malloc arenas against
Shiori's default (2 arenas + a trim every 30 s): `shiori serve` over the bundled notes (no LLM),
16 clients x 45 s per round, four rounds. `python bench/heap_search_ab.py`"""

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_load as bl  # bench/ is on sys.path when run as a script
import httpx


def serve(work: Path, env_extra: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = 18500 + len(os.listdir(work.parent)) % 100
    env = {
        **os.environ,
        "SHIORI_QDRANT": str(work / "store"),
        "SHIORI_COLLECTION": "notes",
        "SHIORI_NOTES_DIR": str(bl.REPO / "notes"),
        "SHIORI_UPLOADS_DIR": str(work / "up"),
        "SHIORI_PORT": str(port),
        "SHIORI_API_KEYS": "",
        "SHIORI_LLM_URL": "http://127.0.0.1:9/v1",
        **env_extra,
    }
    p = subprocess.Popen(
        [sys.executable, "-m", "shiori.cli", "serve", "--log-level", "warning"],
        env=env,
        cwd=bl.REPO,
        stderr=(work / "serve.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/healthz", timeout=2).is_success:
                break
        except httpx.TransportError:
            pass
        time.sleep(1)
    httpx.post(f"{url}/v1/ingest", json={"all": True}, timeout=1200).raise_for_status()
    return p, url


qs = bl.questions()
rows = []
root = Path(tempfile.mkdtemp())
for rnd, (name, extra) in enumerate(
    [
        ("glibc default", {"SHIORI_MALLOC_ARENAS": "0", "SHIORI_HEAP_TRIM_S": "0"}),
        ("2 arenas + trim", {}),
        ("glibc default", {"SHIORI_MALLOC_ARENAS": "0", "SHIORI_HEAP_TRIM_S": "0"}),
        ("2 arenas + trim", {}),
    ]
):
    work = root / f"r{rnd}"
    work.mkdir()
    p, url = serve(work, extra)
    try:
        phase = bl.Phase("/v1/search", 16, 45)
        with bl.MemoryProbe(p.pid, None) as probe:
            asyncio.run(bl.run_phase(url, phase, "/v1/search", qs))
        phase.memory = probe.samples
        s = phase.summary()
        rows.append(
            {
                "config": name,
                "requests": s["requests"],
                "per_s": round(s["per_s"], 2),
                "p50_ms": round(s["p50_ms"]),
                "p95_ms": round(s["p95_ms"]),
                "rss_start": round(s["api_rss_mb"]["start"]),
                "rss_end": round(s["api_rss_mb"]["end"]),
                "growth": round(s["api_rss_mb"]["growth_mb_per_min_second_half"], 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    finally:
        p.terminate()
        p.wait(60)
