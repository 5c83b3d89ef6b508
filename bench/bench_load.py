"""Load on loopback, bounded in clients and time: 16 concurrent /v1/search clients for 60 s,
then 4 concurrent /v1/ask clients for 5 minutes (half of their requests streamed), against
`shiori serve` as a process over the bundled notes and the real vLLM CPU server (started
unless one answers at SHIORI_LLM_URL). Each client sends the bundled golden set's questions
in turn, one request after the other.

Recorded per phase: requests by status (5xx must be none; 429 is the documented answer past
SHIORI_MAX_GENERATIONS), latency p50/p95 (a streamed answer: to its final event), throughput,
and memory: the API process's RSS (and vLLM's, all processes of its session) sampled every
second; "growth" is the least-squares slope of the API's RSS over the phase's second half, after
warm-up, in MB per minute: flat memory is a slope near zero.

    python bench/bench_load.py [--search-clients 16 --search-s 60 --ask-clients 4 --ask-s 300]
                               [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from blocks import write_block  # bench/ is on sys.path when run as a script

from runtime.llm.guard import session_members
from runtime.llm.supervisor import local_llm
from runtime.serve_process import ServeProcess, serving
from shiori.config import Settings

REPO = Path(__file__).resolve().parents[1]
MARK_BEGIN, MARK_END = "<!-- bench-load:begin -->", "<!-- bench-load:end -->"


def questions() -> list[str]:
    lines = (REPO / "eval" / "datasets" / "notes.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, bytes) samples, in MB per minute."""
    if len(samples) < 3:
        return float("nan")
    xs, ys = [s[0] for s in samples], [s[1] for s in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return (
        0.0
        if den == 0
        else sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den * 60 / 1e6
    )


def curve(samples: list[tuple[float, float]], parts: int) -> list[float]:
    """Mean of (seconds, bytes) samples in each of ``parts`` equal stretches of time, in MB."""
    if not samples:
        return []
    end = samples[-1][0] or 1.0
    bins: list[list[float]] = [[] for _ in range(parts)]
    for t, b in samples:
        bins[min(parts - 1, int(t / end * parts))].append(b / 1e6)
    return [statistics.fmean(b) if b else float("nan") for b in bins]


class MemoryProbe:
    """Samples RSS every second in a thread: the API process and the vLLM session."""

    def __init__(self, api_pid: int, vllm_sid: int | None) -> None:
        self.api = psutil.Process(api_pid)
        self.vllm_sid = vllm_sid
        self.samples: list[tuple[float, float, float]] = []  # (t, api rss, vllm rss)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _vllm_rss(self) -> float:
        if self.vllm_sid is None:
            return float("nan")
        total = 0.0
        for pid in session_members(self.vllm_sid):
            with contextlib.suppress(psutil.Error):
                total += psutil.Process(pid).memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.samples.append((time.monotonic(), self.api.memory_info().rss, self._vllm_rss()))

    def __enter__(self) -> MemoryProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Phase:
    name: str
    clients: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    memory: list[tuple[float, float, float]] = field(default_factory=list)
    began: float = 0.0

    def summary(self) -> dict[str, Any]:
        t0 = self.memory[0][0] if self.memory else 0.0
        api = [(t - t0, a) for t, a, _ in self.memory]
        second_half = api[len(api) // 2 :]
        vllm = [v for _, _, v in self.memory if v == v]  # NaN-free
        return {
            "phase": self.name,
            "clients": self.clients,
            "seconds": self.seconds,
            "requests": sum(self.statuses.values()),
            "statuses": dict(sorted(self.statuses.items())),
            "server_errors": sum(n for s, n in self.statuses.items() if s >= 500),
            "client_errors": dict(self.errors),
            "p50_ms": pct(self.latencies, 0.5),
            "p95_ms": pct(self.latencies, 0.95),
            "per_s": len(self.latencies) / self.seconds,
            "api_rss_mb": {
                "start": api[0][1] / 1e6 if api else None,
                "end": api[-1][1] / 1e6 if api else None,
                "peak": max(a for _, a in api) / 1e6 if api else None,
                "growth_mb_per_min_second_half": slope_mb_per_min(second_half),
                # the curve: mean RSS of each tenth of the phase, so a reader sees flat or rising
                "curve": curve(api, 10),
            },
            "vllm_rss_mb": {
                "start": vllm[0] / 1e6 if vllm else None,
                "end": vllm[-1] / 1e6 if vllm else None,
                "peak": max(vllm) / 1e6 if vllm else None,
            },
        }


async def client_loop(
    http: httpx.AsyncClient, phase: Phase, path: str, qs: list[str], start: int, until: float
) -> None:
    n = start
    while time.monotonic() < until:
        question = qs[n % len(qs)]
        stream = path == "/v1/ask" and n % 2 == 1
        body = (
            {"question": question, "stream": stream}
            if path == "/v1/ask"
            else {"question": question}
        )
        began = time.monotonic()
        try:
            if stream:
                async with http.stream("POST", path, json=body) as r:
                    status = r.status_code
                    async for line in r.aiter_lines():  # read to the end: the final event
                        if line.startswith("event: error"):
                            phase.errors["sse error event"] += 1
            else:
                r = await http.post(path, json=body)
                status = r.status_code
        except httpx.HTTPError as exc:
            phase.errors[type(exc).__name__] += 1
            await asyncio.sleep(0.5)
            n += 1
            continue
        phase.statuses[status] += 1
        if status == 200:
            phase.latencies.append((time.monotonic() - began) * 1000)
        elif status == 429:
            await asyncio.sleep(float(r.headers.get("retry-after", "1")))
        n += 1


async def run_phase(url: str, phase: Phase, path: str, qs: list[str]) -> None:
    until = time.monotonic() + phase.seconds
    limits = httpx.Limits(max_connections=phase.clients + 2)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as http:
        await asyncio.gather(
            *(client_loop(http, phase, path, qs, i * 7, until) for i in range(phase.clients))
        )


@contextlib.contextmanager
def serve(
    work: Path, llm_url: str, env: dict[str, str] | None = None, ready: str = "/readyz"
) -> Iterator[ServeProcess]:
    """`shiori serve` over the bundled notes in a store under ``work`` (``env`` over the
    settings), ingested through its API; stopped after the block."""
    overrides = {
        "SHIORI_QDRANT": str(work / "store"),
        "SHIORI_COLLECTION": "notes",
        "SHIORI_NOTES_DIR": str(REPO / "notes"),
        "SHIORI_UPLOADS_DIR": str(work / "uploads"),
        "SHIORI_API_KEYS": "",
        "SHIORI_LLM_URL": llm_url,
        **(env or {}),
    }
    with serving(overrides, log=work / "serve.log", cwd=REPO, ready=ready, grace_s=60) as server:
        r = httpx.post(f"{server.url}/v1/ingest", json={"all": True}, timeout=1200)
        r.raise_for_status()
        yield server


def report(phases: list[dict[str, Any]], command: str, settings: Settings) -> str:
    lines = [
        MARK_BEGIN,
        f"Command: `{command}` — {time.strftime('%Y-%m-%d')}, this 2-core machine: `shiori serve` "
        "and vLLM CPU (Qwen2.5-Coder-1.5B-Instruct) on the same cores, over the bundled notes; "
        f"SHIORI_MAX_GENERATIONS {settings.max_generations}, SHIORI_LLM_MAX_TOKENS "
        f"{settings.llm_max_tokens}. Each client sends the golden set's questions one after "
        "another; /v1/ask clients stream every other request (latency to the final event).",
        "",
        "| phase | clients × time | requests | statuses | 5xx | p50 | p95 | per s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in phases:
        statuses = ", ".join(f"{s}: {n}" for s, n in p["statuses"].items())
        unit = 1000 if p["phase"] == "/v1/ask" else 1
        fmt = (lambda v: f"{v / 1000:.1f} s") if unit == 1000 else (lambda v: f"{v:.0f} ms")
        lines.append(
            f"| {p['phase']} | {p['clients']} × {p['seconds']:.0f} s | {p['requests']} | "
            f"{statuses} | {p['server_errors']} | {fmt(p['p50_ms'])} | {fmt(p['p95_ms'])} | "
            f"{p['per_s']:.2f} |"
        )
    lines += [
        "",
        "Memory (RSS, MB; growth = slope over the phase's second half):",
        "",
        "| phase | API start | API end | API peak | API growth | vLLM start / end / peak |",
        "|---|---|---|---|---|---|",
    ]
    for p in phases:
        a, v = p["api_rss_mb"], p["vllm_rss_mb"]
        vllm = f"{v['start']:.0f} / {v['end']:.0f} / {v['peak']:.0f}" if v["start"] else "—"
        lines.append(
            f"| {p['phase']} | {a['start']:.0f} | {a['end']:.0f} | {a['peak']:.0f} | "
            f"{a['growth_mb_per_min_second_half']:+.1f} MB/min | {vllm} |"
        )
    lines += ["", "API RSS (MB), mean of each tenth of the phase:", ""]
    for p in phases:
        points = " → ".join(f"{v:.0f}" for v in p["api_rss_mb"]["curve"])
        lines.append(f"- {p['phase']} ({p['seconds'] / 60:.0f} min): {points}")
    errors = {p["phase"]: p["client_errors"] for p in phases if p["client_errors"]}
    if errors:
        lines += ["", f"Client-side errors (no response): {errors}"]
    lines.append(MARK_END)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--search-clients", type=int, default=16)
    parser.add_argument("--search-s", type=float, default=60)
    parser.add_argument("--ask-clients", type=int, default=4)
    parser.add_argument("--ask-s", type=float, default=300)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    settings = Settings()
    qs = questions()
    llm = contextlib.ExitStack()
    supervisor = llm.enter_context(
        local_llm(settings, Path(tempfile.gettempdir()) / "bench-load-vllm.log", print)
    )
    try:
        with (
            tempfile.TemporaryDirectory(prefix="shiori-load-") as tmp,
            serve(Path(tmp), settings.llm_url) as server,
        ):
            url = server.url
            results = []
            for name, clients, seconds in (
                ("/v1/search", args.search_clients, args.search_s),
                ("/v1/ask", args.ask_clients, args.ask_s),
            ):
                phase = Phase(name, clients, seconds)
                sid = supervisor.pid if supervisor is not None else None
                with MemoryProbe(server.pid, sid) as probe:
                    asyncio.run(run_phase(url, phase, name, qs))
                phase.memory = probe.samples
                results.append(phase.summary())
                print(json.dumps(results[-1], ensure_ascii=False), flush=True)
            alive = server.running() and httpx.get(f"{url}/healthz").is_success
    finally:
        llm.close()
    command = "python bench/bench_load.py " + " ".join(sys.argv[1:])
    text = report(results, command, settings)
    print(text)
    print(f"server alive after the load: {alive}")
    if args.write:
        write_block(args.write, MARK_BEGIN, MARK_END, text, "Load (`make bench-load`)")
    if any(p["server_errors"] for p in results) or not alive:
        sys.exit(1)


if __name__ == "__main__":
    main()
