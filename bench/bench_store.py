"""The embedded store side by side: today's (qdrant-client local mode + the in-process mirror)
and Qdrant Edge (shiori/edge.py, Qdrant's Rust engine in process), on synthetic chunks.

Synthetic, and said so in the figures: dense vectors are random unit vectors of EmbeddingGemma's
size (768; embedding 100k real passages would take hours here), each chunk's text is three
JSQuAD sentences drawn at random (so the sparse side has Japanese BM25 terms with a real
distribution), 100 chunks per file, one tag of four per file. Both engines get the same
chunks through the same protocol (written invisibly, then each file published) and the same
queries (random dense vector + the BM25 terms of a JSQuAD question; DBSF, top 4, prefetch 40
per side, as the service queries), unfiltered and filtered by a tag.

Each measurement runs in processes of its own: one writes (write time), a fresh one opens the
store as the service would and queries it (open time, query p50/p95, and the memory it takes:
RSS after opening and querying minus RSS before opening). Agreement: for each query, whether
Edge's top 4 equal today's (same chunks, same order), and the mean overlap of the two top 4.

    python bench/bench_store.py [--sizes 10000,100000] [--engines today,edge] [--write FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from blocks import write_block  # bench/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parents[1]
JSQUAD = REPO.parent / "shared/data/jsquad/valid-v1.3.json"
MARK_BEGIN, MARK_END = "<!-- bench-store:begin -->", "<!-- bench-store:end -->"
DIM = 768
PER_FILE = 100
FILES_PER_STEP = 20  # files written, then published, per step (as an ingest group)
LIMIT, PREFETCH = 4, 40
ENGINES = ("today", "mirror", "edge")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def jsquad_text() -> tuple[list[str], list[str]]:
    data = json.loads(JSQUAD.read_text(encoding="utf-8"))
    sentences, questions = [], []
    for article in data["data"]:
        for para in article["paragraphs"]:
            text = para["context"].partition(" [SEP] ")[2]
            sentences += [s + "。" for s in text.split("。") if len(s) > 10]
            questions += [qa["question"] for qa in para["qas"]]
    return sentences, questions


def steps(size: int) -> Iterator[tuple[list[Any], list[Any], list[str]]]:
    """(chunks, vectors, paths) per write step; the same for every engine (seeded)."""
    from shiori.chunk import Chunk
    from shiori.index import Vectors
    from shiori.sparse import SparseEncoder

    sentences, _ = jsquad_text()
    sparse = SparseEncoder()
    rng, pick = np.random.default_rng(0), np.random.default_rng(2)
    files = size // PER_FILE
    for first in range(0, files, FILES_PER_STEP):
        chunks, vectors, paths = [], [], []
        for f in range(first, min(first + FILES_PER_STEP, files)):
            path = f"/synthetic/{f:06d}.md"
            paths.append(path)
            dense = rng.standard_normal((PER_FILE, DIM)).astype(np.float32)
            dense /= np.linalg.norm(dense, axis=1, keepdims=True)
            for i in range(PER_FILE):
                n = f * PER_FILE + i
                # three sentences drawn at random: no two chunks share a text (copies would tie
                # on the sparse side, and engines may break ties differently)
                text = " ".join(sentences[j] for j in pick.choice(len(sentences), 3, replace=False))
                chunks.append(
                    Chunk(path, path[1:], f"note {f}", ["h"], i + 1, i + 1, 0, 1, text, i,
                          str(n), generation="g", tags=[f"tag{f % 4}"])
                )  # fmt: skip
                vectors.append(Vectors(dense[i].tolist(), sparse.encode_document(text)))
        yield chunks, vectors, paths


def queries(n: int) -> list[tuple[list[float], Any]]:
    from shiori.sparse import SparseEncoder

    _, questions = jsquad_text()
    rng = np.random.default_rng(1)
    sparse = SparseEncoder()
    out = []
    for q in questions[:n]:
        v = rng.standard_normal(DIM)
        out.append(((v / np.linalg.norm(v)).tolist(), sparse.encode_query(q)))
    return out


def dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


# --- workers (each in its own process) --------------------------------------------------------
def write_today(store: Path, size: int) -> dict[str, Any]:
    from shiori.config import Settings
    from shiori.index import FileRecord, NoteIndex, open_client

    settings = Settings(qdrant=str(store), collection="synthetic")
    index = NoteIndex(open_client(settings), settings, DIM)
    index.ensure_collections()
    spent = 0.0
    for chunks, vectors, paths in steps(size):
        began = time.perf_counter()
        index.write_chunks(chunks, vectors)
        index.publish([FileRecord(p, p[1:], "f", "g", 1, 1, PER_FILE) for p in paths])
        spent += time.perf_counter() - began
    index.client.close()
    return {"write_s": spent, "disk_mb": dir_mb(store)}


def write_edge(store: Path, size: int) -> dict[str, Any]:
    from shiori.edge import EdgeIndex

    index = EdgeIndex(store, DIM)
    spent = 0.0
    for chunks, vectors, paths in steps(size):
        began = time.perf_counter()
        index.write_chunks(chunks, vectors)
        for path in paths:
            index.publish(path, "g")
        spent += time.perf_counter() - began
    began = time.perf_counter()
    index.flush()
    spent += time.perf_counter() - began
    index.close()
    return {"write_s": spent, "disk_mb": dir_mb(store)}


def read(engine: str, store: Path, size: int, n_queries: int) -> dict[str, Any]:
    from shiori.memory_search import ChunkFilter

    todo = queries(n_queries)
    import shiori.edge
    import shiori.index  # noqa: F401  (imported before the first RSS reading: not the store's)

    before = rss_mb()
    began = time.perf_counter()
    if engine == "mirror":  # today's query path alone: the mirror built from the same rows
        from shiori.index import point_id
        from shiori.memory_search import MemorySearch, Row

        index = MemorySearch()
        for chunks, vectors, _ in steps(size):
            rows = [
                Row(point_id(c.path, c.generation, c.chunk_index), c, v.dense, v.sparse)
                for c, v in zip(chunks, vectors, strict=True)
            ]
            index.replace([], rows)
        index.hybrid_query = index.query
        count = len(index)
    elif engine == "today":
        from shiori.config import Settings
        from shiori.index import NoteIndex, open_client

        settings = Settings(qdrant=str(store), collection="synthetic")
        index: Any = NoteIndex(open_client(settings), settings, DIM)
        index.warm()
        count = index.count()
    else:
        from shiori.edge import EdgeIndex

        index = EdgeIndex(store, DIM)
        count = index.count()
    open_s = time.perf_counter() - began
    out: dict[str, Any] = {"open_s": open_s, "points": count}
    for label, flt in (("all", None), ("tag", ChunkFilter(tags=("tag1",)))):
        times, tops = [], []
        for dense, sparse in todo:
            t0 = time.perf_counter()
            hits = index.hybrid_query(dense, sparse, LIMIT, prefetch=PREFETCH, flt=flt)
            times.append((time.perf_counter() - t0) * 1000)
            tops.append([f"{c.path}#{c.chunk_index}" for c, _, _ in hits])
        warm = times[5:] if len(times) > 10 else times  # the first queries load caches
        out[label] = {
            "p50": float(np.percentile(warm, 50)),
            "p95": float(np.percentile(warm, 95)),
            "tops": tops,
        }
    out["rss_mb"] = rss_mb() - before
    if engine == "today":
        index.client.close()
    elif engine == "edge":
        index.close()
    return out


def run_worker(*args: str) -> dict[str, Any]:
    # this checkout's packages first (bench/ is the script's own sys.path entry)
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    done = subprocess.run(
        [sys.executable, __file__, "--worker", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": path},
    )
    if done.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def seconds(value: float) -> str:
    return "—" if value != value else f"{value:.2f} s"  # NaN: not measured


def report(rows: dict[tuple[int, str], dict[str, Any]], command: str) -> str:
    lines = [
        MARK_BEGIN,
        f"Command: `{command}` — run on {time.strftime('%Y-%m-%d')}, this 2-core machine; "
        f"synthetic chunks (random {DIM}-d unit vectors, JSQuAD sentences as text), DBSF top "
        f"{LIMIT}, prefetch {PREFETCH} per side, exact search in both engines.",
        "",
        "| chunks | engine | write | write per 1k chunks | open | memory (RSS) | per chunk "
        "| on disk | hybrid p50 / p95 | filtered p50 / p95 | top 4 equal to today's "
        "| overlap@4 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (size, engine), r in sorted(
        rows.items(), key=lambda kv: (kv[0][0], ENGINES.index(kv[0][1]))
    ):
        base = rows.get((size, "today")) or rows.get((size, "mirror"))
        agree, overlap = "—", "—"
        if base is not None and base is not r:
            pairs = [
                (a, b)
                for label in ("all", "tag")
                for a, b in zip(r[label]["tops"], base[label]["tops"], strict=True)
            ]
            agree = f"{sum(a == b for a, b in pairs) / len(pairs):.1%}"
            overlap = f"{np.mean([len(set(a) & set(b)) / LIMIT for a, b in pairs]):.3f}"
        lines.append(
            f"| {size:,} | {engine} | {seconds(r['write_s'])} | "
            f"{seconds(r['write_s'] / size * 1000)} | "
            f"{r['open_s']:.1f} s | {r['rss_mb']:,.0f} MB | {r['rss_mb'] * 1024 / size:.1f} KiB | "
            f"{r['disk_mb']:,.0f} MB | {r['all']['p50']:.1f} / {r['all']['p95']:.1f} ms | "
            f"{r['tag']['p50']:.1f} / {r['tag']['p95']:.1f} ms | {agree} | {overlap} |"
        )
    lines += [
        "",
        "- today = qdrant-client's local mode (SQLite) written through `NoteIndex`, queried "
        "through its in-process mirror (`shiori.memory_search`); edge = `shiori.edge.EdgeIndex` "
        "(qdrant-edge-py 0.9.0); mirror = today's query path alone (the mirror built in memory "
        "from the same rows, nothing stored: its memory is a lower bound of today's, which also "
        "holds qdrant-client's own copy of every point). Memory: RSS of a fresh process after "
        "opening the store and running the queries, minus its RSS before opening. The filtered "
        "query keeps one tag of four (a quarter of the chunks). Top 4 equal: share of the "
        "queries (both kinds) whose top 4 are today's, in order (compared with the today row, "
        "else the mirror row).",
        "",
        MARK_END,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="chunk counts, comma-separated")
    parser.add_argument("--engines", default="today,edge")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--write", type=Path, help="update this Markdown file in place")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, engine, store, size = args.worker[:4]
        if kind == "write" and engine == "mirror":
            result = {"write_s": float("nan"), "disk_mb": 0.0}  # nothing is stored
        elif kind == "write":
            fn = write_today if engine == "today" else write_edge
            result = fn(Path(store), int(size))
        else:
            result = read(engine, Path(store), int(size), int(args.worker[4]))
        print(json.dumps(result))
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    engines = [e.strip() for e in args.engines.split(",")]
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    for size in sizes:
        for engine in engines:
            store = Path(tempfile.mkdtemp(prefix=f"bench-store-{engine}-"))
            try:
                row = run_worker("write", engine, str(store), str(size))
                row |= run_worker("read", engine, str(store), str(size), str(args.queries))
            finally:
                shutil.rmtree(store, ignore_errors=True)
            rows[(size, engine)] = row
            brief = {k: v for k, v in row.items() if k not in ("all", "tag")}
            print(size, engine, json.dumps(brief), row["all"]["p50"], flush=True)
    command = "make bench-store" + (
        f" (--sizes {args.sizes} --engines {args.engines})"
        if (args.sizes, args.engines) != ("10000,100000", "today,edge")
        else ""
    )
    text = report(rows, command)
    print(text)
    if args.write:
        write_block(args.write, MARK_BEGIN, MARK_END, text, "Embedded store (`make bench-store`)")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
