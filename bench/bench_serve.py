"""Serving latency: the index at 10k/100k chunks, and /v1/search and /v1/ask over HTTP.

1. Index: synthetic chunks (JSQuAD sentences for the sparse side, random dense vectors) written
   through `NoteIndex` into an embedded store (Qdrant Edge), optimized as an ingest leaves it;
   fused DBSF query latency in a fresh process. Query embedding (the real model) is measured
   apart: /v1/search = embedding + index query. (`bench/bench_scale.py` goes to 1M chunks.)
2. HTTP: `shiori serve` as a process over the bundled notes with the real vLLM (started unless
   one answers at SHIORI_LLM_URL); /v1/search and /v1/ask p50/p95 at concurrency 1 and 4.
3. TTFT, side by side per question: Shiori's streamed /v1/ask (time to the first delta) and
   vLLM streaming the same final prompt directly (rebuilt in this process from a copy of the
   store); Shiori's own share (retrieve + pack + verify) of /v1/ask's end-to-end time.

    python bench/bench_serve.py [--sizes 10000,100000] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from blocks import write_block  # bench/ is on sys.path when run as a script

from ingest.pipeline import Ingestor
from runtime.llm.supervisor import local_llm
from runtime.serve_process import serving
from service.components import Components
from shiori.chunk import Chunk
from shiori.config import Settings, reveal
from shiori.embedding import Embedder
from shiori.index import FileRecord, NoteIndex, Vectors, open_client
from shiori.sparse import SparseEncoder

REPO = Path(__file__).resolve().parents[1]
JSQUAD = REPO.parent / "shared/data/jsquad/valid-v1.3.json"
MARK_BEGIN, MARK_END = "<!-- bench-serve:begin -->", "<!-- bench-serve:end -->"

QUESTIONS = [
    "Gemma が公開されたのはいつですか？",
    "When did Google release Gemma?",
    "LoRA の r とは何ですか？",
    "拡散モデルはどうやって画像を生成しますか？",
    "RAG とは何ですか？",
    "What is hallucination in LLMs?",
    "Transformer の自己注意とは何ですか？",
    "量子化するとモデルはどう変わりますか？",
]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def jsquad_sentences() -> tuple[list[str], list[str]]:
    data = json.loads(JSQUAD.read_text(encoding="utf-8"))
    sentences, questions = [], []
    for article in data["data"]:
        for para in article["paragraphs"]:
            text = para["context"].partition(" [SEP] ")[2]
            sentences += [s + "。" for s in text.split("。") if len(s) > 10]
            questions += [qa["question"] for qa in para["qas"]]
    return sentences, questions


# --- 1. the index ----------------------------------------------------------------------------
def index_latency(size: int, dim: int, work: Path) -> dict[str, Any]:
    sentences, questions = jsquad_sentences()
    settings = Settings(qdrant=str(work / f"synthetic-{size}"), collection="synthetic")
    index = NoteIndex(open_client(settings), settings, dim)
    index.ensure_collections()
    rng = np.random.default_rng(0)
    sparse = SparseEncoder()
    per_file, files_per_publish = 100, 20  # a publish scans the embedded store: batch them
    began = time.perf_counter()
    for g in range(0, size // per_file, files_per_publish):
        chunks, vectors, records = [], [], []
        for f in range(g, min(g + files_per_publish, size // per_file)):
            path = f"/synthetic/{f:06d}.md"
            for i in range(per_file):
                n = f * per_file + i
                text = " ".join(sentences[(n * k) % len(sentences)] for k in (1, 7, 13))
                chunks.append(
                    Chunk(
                        path,
                        path[1:],
                        "t",
                        ["h"],
                        i + 1,
                        i + 1,
                        0,
                        1,
                        text,
                        i,
                        str(n),
                        generation="g",
                    )
                )
                vec = rng.standard_normal(dim).astype(np.float32)
                vectors.append(
                    Vectors((vec / np.linalg.norm(vec)).tolist(), sparse.encode_document(text))
                )
            records.append(FileRecord(path, path[1:], "f", "g", 1, 1, per_file))
        index.write_chunks(chunks, vectors)
        index.publish(records)
    index.optimize()  # as an ingest does after writing
    write_s = time.perf_counter() - began
    index.client.close()
    # a fresh process's view: reopen, open the segments, query
    index = NoteIndex(open_client(settings), settings, dim)
    began = time.perf_counter()
    index.warm()
    warm_s = time.perf_counter() - began
    queries = [(rng.standard_normal(dim).tolist(), sparse.encode_query(q)) for q in questions[:300]]
    ours = []
    for dense, sp in queries:
        t0 = time.perf_counter()
        index.hybrid_query(dense, sp, 4, prefetch=40, fusion="dbsf")
        ours.append((time.perf_counter() - t0) * 1000)
    result = {
        "chunks": index.count(),
        "write_s": write_s,
        "warm_s": warm_s,
        "p50": pct(ours, 0.5),
        "p95": pct(ours, 0.95),
    }
    index.client.close()
    shutil.rmtree(work / f"synthetic-{size}", ignore_errors=True)
    return result


def query_embedding_latency(embedder: Embedder) -> tuple[float, float]:
    _, questions = jsquad_sentences()
    times = []
    for q in questions[:60]:
        t0 = time.perf_counter()
        embedder.embed_queries([q])
        times.append((time.perf_counter() - t0) * 1000)
    return pct(times[10:], 0.5), pct(times[10:], 0.95)


# --- 2. and 3. over HTTP -----------------------------------------------------------------------
async def timed_requests(
    url: str, path: str, bodies: list[dict[str, Any]], concurrency: int
) -> tuple[list[float], list[dict[str, Any]]]:
    latencies: list[float] = []
    replies: list[dict[str, Any]] = []
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=600) as http:

        async def one(body: dict[str, Any]) -> None:
            async with gate:
                t0 = time.perf_counter()
                r = await http.post(path, json=body)
                latencies.append((time.perf_counter() - t0) * 1000)
                r.raise_for_status()
                replies.append(r.json())

        await asyncio.gather(*(one(b) for b in bodies))
    return latencies, replies


async def ttft_shiori(url: str, question: str) -> float:
    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        t0 = time.perf_counter()
        async with http.stream("POST", "/v1/ask", json={"question": question, "stream": True}) as r:
            async for line in r.aiter_lines():
                if line.startswith("event: delta"):
                    return (time.perf_counter() - t0) * 1000
    raise RuntimeError("no delta")


async def ttft_vllm(settings: Settings, messages: list[dict[str, str]]) -> float:
    from openai import AsyncOpenAI

    key = reveal(settings.llm_api_key) or "none"
    async with AsyncOpenAI(base_url=settings.llm_url, api_key=key) as llm:
        t0 = time.perf_counter()
        stream = await llm.chat.completions.create(
            model=settings.llm_model,
            messages=messages,  # type: ignore[arg-type]
            temperature=0,
            max_tokens=settings.llm_max_tokens,
            stream=True,
        )
        async for event in stream:
            if event.choices and event.choices[0].delta.content:
                return (time.perf_counter() - t0) * 1000
    raise RuntimeError("no token")


def serve_bench(embedder: Embedder, work: Path) -> dict[str, Any]:
    base = Settings()
    llm = ExitStack()
    llm.enter_context(local_llm(base, work / "vllm.log", print))
    store = work / "notes-store"
    settings = Settings(qdrant=str(store), collection="notes")
    index = NoteIndex(open_client(settings), settings, embedder.dimension)
    index.ensure_collections()
    Ingestor(settings, index, embedder).run([REPO / "notes"])
    index.client.close()
    shutil.copytree(store, work / "notes-copy")
    (work / "notes-copy" / ".lock").unlink(missing_ok=True)
    env = {"SHIORI_QDRANT": str(store), "SHIORI_COLLECTION": "notes", "SHIORI_API_KEYS": ""}
    try:
        server = llm.enter_context(serving(env, log=work / "serve.log"))
        url = server.url
        out: dict[str, Any] = {}
        bodies = [{"question": q} for q in QUESTIONS]
        asyncio.run(timed_requests(url, "/v1/search", bodies, 1))  # warm-up
        for conc in (1, 4):
            lat, _ = asyncio.run(timed_requests(url, "/v1/search", bodies * 4, conc))
            out[f"search_c{conc}"] = (pct(lat, 0.5), pct(lat, 0.95), len(lat))
        for conc in (1, 4):
            lat, replies = asyncio.run(timed_requests(url, "/v1/ask", bodies, conc))
            out[f"ask_c{conc}"] = (pct(lat, 0.5), pct(lat, 0.95), len(lat))
            if conc == 1:
                own = [
                    (r["timings"]["retrieve_ms"] + r["timings"].get("verify_ms", 0))
                    / r["timings"]["total_ms"]
                    for r in replies
                ]
                out["own_share"] = (statistics.mean(own), max(own))
                out["prompt_tokens"] = statistics.mean(r["usage"]["prompt_tokens"] for r in replies)
                out["abstained"] = sum(r["abstained"] for r in replies)
        # TTFT side by side: the same final prompt, rebuilt from a copy of the store
        copy = Settings(qdrant=str(work / "notes-copy"), collection="notes")
        parts = Components.build(copy, embedder)
        ratios, ours, theirs = [], [], []
        for q in QUESTIONS:
            draft = asyncio.run(parts.answerer.prepare(q))
            if draft.messages is None:
                continue  # abstained before generation: no TTFT to compare
            a = asyncio.run(ttft_shiori(url, q))
            b = asyncio.run(ttft_vllm(base, draft.messages))
            ours.append(a)
            theirs.append(b)
            ratios.append(a / b)
        parts.client.close()
        out["ttft"] = (
            statistics.median(ours),
            statistics.median(theirs),
            statistics.median(ratios),
            max(ratios),
            len(ratios),
        )
        return out
    finally:
        llm.close()  # the service, then the LLM


def report(
    index_rows: list[dict[str, Any]], embed: tuple[float, float], http: dict[str, Any], command: str
) -> str:
    lines = [
        MARK_BEGIN,
        f"Command: `{command}` — {time.strftime('%Y-%m-%d')}, this 2-core machine, "
        "vLLM CPU with Qwen2.5-Coder-1.5B-Instruct on the same cores.",
        "",
        "Index query (the embedded store, Qdrant Edge; fused DBSF, top 4, prefetch 40 per side; "
        "synthetic chunks):",
        "",
        "| chunks | p50 | p95 | write + optimize | open at start |",
        "|---|---|---|---|---|",
    ]
    for r in index_rows:
        lines.append(
            f"| {r['chunks']:,} | {r['p50']:.1f} ms | {r['p95']:.1f} ms | {r['write_s']:.1f} s "
            f"| {r['warm_s']:.1f} s |"
        )
    s1, s4, a1, a4 = http["search_c1"], http["search_c4"], http["ask_c1"], http["ask_c4"]
    ours, theirs, ratio, worst, n = http["ttft"]
    lines += [
        "",
        f"Query embedding (EmbeddingGemma, one question): p50 {embed[0]:.0f} ms, p95 "
        f"{embed[1]:.0f} ms — most of /v1/search's time below.",
        "",
        f"HTTP over the bundled notes ({len(QUESTIONS)} questions, Japanese and English):",
        "",
        "| endpoint | concurrency | p50 | p95 | requests |",
        "|---|---|---|---|---|",
        f"| /v1/search | 1 | {s1[0]:.0f} ms | {s1[1]:.0f} ms | {s1[2]} |",
        f"| /v1/search | 4 | {s4[0]:.0f} ms | {s4[1]:.0f} ms | {s4[2]} |",
        f"| /v1/ask | 1 | {a1[0] / 1000:.1f} s | {a1[1] / 1000:.1f} s | {a1[2]} |",
        f"| /v1/ask | 4 | {a4[0] / 1000:.1f} s | {a4[1] / 1000:.1f} s | {a4[2]} |",
        "",
        f"- Shiori's own share of /v1/ask (retrieve + pack + verify over total, concurrency 1): "
        f"mean {http['own_share'][0]:.1%}, worst {http['own_share'][1]:.1%}.",
        f"- TTFT, streamed, side by side ({n} questions): Shiori {ours:.0f} ms vs vLLM alone "
        f"on the same prompt {theirs:.0f} ms (medians); ratio median {ratio:.2f}x, worst "
        f"{worst:.2f}x.",
        f"- Prompt tokens per question (vLLM's count, default top_k and packing): mean "
        f"{http['prompt_tokens']:.0f}; {http['abstained']} of {len(QUESTIONS)} abstained.",
        MARK_END,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    embedder = Embedder(Settings())
    embedder.embed_queries(["warm-up"])
    with tempfile.TemporaryDirectory(prefix="shiori-bench-") as tmp:
        work = Path(tmp)
        rows = []
        for size in (int(s) for s in args.sizes.split(",")):
            rows.append(index_latency(size, embedder.dimension, work))
            print(rows[-1], flush=True)
        embed = query_embedding_latency(embedder)
        print("query embedding", embed, flush=True)
        http = serve_bench(embedder, work)
        print(http, flush=True)
    command = "make bench-serve"
    text = report(rows, embed, http, command)
    print(text)
    if args.write:
        write_block(args.write, MARK_BEGIN, MARK_END, text, "Serving (`make bench-serve`)")


if __name__ == "__main__":
    main()
