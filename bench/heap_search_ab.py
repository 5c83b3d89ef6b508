"""Same run, ABAB: /v1/search throughput and API RSS with glibc's default malloc arenas against
Shiori's default (2 arenas + a trim every 30 s): `shiori serve` over the bundled notes (no LLM),
16 clients x 45 s per round, four rounds. `python bench/heap_search_ab.py`"""

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

import bench_load as bl  # bench/ is on sys.path when run as a script

GLIBC = {"SHIORI_MALLOC_ARENAS": "0", "SHIORI_HEAP_TRIM_S": "0"}
CONFIGS = [("glibc default", GLIBC), ("2 arenas + trim", {})]
NO_LLM = "http://127.0.0.1:9/v1"  # nothing listens: /v1/search only, ready at /healthz


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("`")[0].strip())
    parser.add_argument("--rounds", type=int, default=4, help="A, B, A, B, ...")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=45)
    args = parser.parse_args()
    qs = bl.questions()
    root = Path(tempfile.mkdtemp())
    for rnd in range(args.rounds):
        name, extra = CONFIGS[rnd % 2]
        work = root / f"r{rnd}"
        work.mkdir()
        with bl.serve(work, NO_LLM, extra, ready="/healthz") as server:
            phase = bl.Phase("/v1/search", args.clients, args.seconds)
            with bl.MemoryProbe(server.pid, None) as probe:
                asyncio.run(bl.run_phase(server.url, phase, "/v1/search", qs))
        phase.memory = probe.samples
        s = phase.summary()
        row = {
            "config": name,
            "requests": s["requests"],
            "per_s": round(s["per_s"], 2),
            "p50_ms": round(s["p50_ms"]),
            "p95_ms": round(s["p95_ms"]),
            "rss_start": round(s["api_rss_mb"]["start"]),
            "rss_end": round(s["api_rss_mb"]["end"]),
            "growth": round(s["api_rss_mb"]["growth_mb_per_min_second_half"], 1),
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
