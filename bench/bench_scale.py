"""Qdrant Edge at scale (issue 15, item 3): which store configuration keeps 1M chunks within
6 GB of RSS and answers Shiori's filtered hybrid query within 200 ms p95 (50 ms at 100k)?

Self-contained: it drives ``qdrant_edge`` (qdrant-edge-py 0.9.0) directly, not shiori.edge.
Synthetic chunks, deterministic (seeded NumPy, one stream per batch of 1,000):

- dense: random unit 768-d float32 vectors (EmbeddingGemma's size; no structure, so HNSW
  recall here is a pessimistic figure for real embeddings);
- sparse: ~30 distinct term ids per chunk out of a 50k vocabulary, drawn from a Zipf-like
  distribution (p ~ 1/(rank+10)), BM25-like weights; Qdrant's IDF modifier on;
- payload shaped like Shiori's Chunk (path, source, title, headings, lines, ~300 characters
  of JSQuAD sentences as text, chunk_index, hashes, generation, tags: one of four per file of
  100 chunks, state "live", live true).

A query is aimed at one stored chunk: its dense vector plus as much random noise (cosine 0.71
to the target), and 3 of its terms plus 3 Zipf-drawn terms on the sparse side. Both sides are
prefetched (40 each) under the same filter and fused by DBSF, limit 4, payload returned (as
the service does). "live" queries filter on state == "live" only (the service always does);
"tag" queries also on one tag of four (a quarter of the chunks, the target among them).

Each step runs in a process of its own: one creates the shard and writes the chunks in
batches of 1,000 (write time, including flush), then optionally runs ``optimize()`` (merges
segments, builds HNSW and quantized vectors); a fresh one opens the shard after its files
were dropped from the page cache (posix_fadvise DONTNEED, so opening reads from disk) and
measures: open time, query p50/p95 (the first 5 of each kind excluded), and /proc/self/status
VmRSS (also RssAnon / RssFile, and VmHWM) before opening and after the queries. Then, after
the memory readings, the same queries with exact float search (quantization ignored) on the
same shard give each approximate mode's recall of the top 4 (share of the exact top 4 found).

The writing process's anonymous memory is sampled every 0.2 s from the parent (its VmHWM
also counts the new segments' dirty file pages). Results are appended as JSON lines to
ROOT/results.jsonl; shards are written under ROOT (default /work/runs/scale) and deleted.

    python bench/bench_scale.py --size 100000 --configs default,disk-sq-seg [--queries 200]
    python bench/bench_scale.py --size 1000000 --configs disk-sq-seg --recall-queries 100
    python bench/bench_scale.py --table /work/runs/scale/results.jsonl   # Markdown table
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
import uuid
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
JSQUAD = REPO.parent / "shared/data/jsquad/valid-v1.3.json"
DIM, VOCAB, TERMS, BATCH, PER_FILE = 768, 50_000, 30, 1000, 100
LIMIT, PREFETCH, HNSW_EF, OVERSAMPLING = 4, 40, 128, 2.0
TAGS = 4
SEED = 15
NAMESPACE = uuid.UUID("5b1c7e0e-8a43-4f5e-9a0e-15ca1e000000")
INDEXED = ("tags", "state", "path")

# --- store configurations --------------------------------------------------------------------
# vectors / payload / hnsw / quant: Memory placement names (None: the engine's default);
# quant: int8 scalar quantization of the dense vectors; modes: search modes to measure.
CONFIGS: dict[str, dict[str, Any]] = {
    # shiori/edge.py's prototype as measured by bench_store.py: nothing tuned, never optimized
    "default": {"optimize": False, "modes": ("exact",)},
    # the same after optimize(): merged segments, HNSW built
    "default-opt": {"optimize": True, "modes": ("exact", "hnsw")},
    # original vectors on disk (mmap, not preloaded), int8 copies in RAM, payload on disk
    "disk-sq": {
        "vectors": "Cold", "payload": "Cold", "quant": "Pinned", "hnsw": "Pinned",
        "optimize": True, "modes": ("hnsw", "exactq"),
    },
    # disk-sq, searched with larger hnsw_ef / ACORN (recall against search time)
    "disk-sq-ef": {
        "vectors": "Cold", "payload": "Cold", "quant": "Pinned", "hnsw": "Pinned",
        "optimize": True, "modes": ("hnsw256", "hnsw512", "hnsw256-acorn"),
    },
    # disk-sq with HNSW links per tag value (KeywordIndexParams(enable_hnsw=True) on tags)
    "disk-sq-taggraph": {
        "vectors": "Cold", "payload": "Cold", "quant": "Pinned", "hnsw": "Pinned",
        "tag_graph": True, "optimize": True, "modes": ("hnsw", "hnsw256"),
    },
    # disk-sq for big stores: segments of at most `segment_points` chunks, optimize() after
    # every `optimize_every` chunks written (bounds the writer's peak memory), searched with
    # hnsw_ef 256 / 512 and ACORN
    "disk-sq-seg": {
        "vectors": "Cold", "payload": "Cold", "quant": "Pinned", "hnsw": "Pinned",
        "optimize": True, "segment_points": 250_000, "optimize_every": 100_000,
        "modes": ("hnsw256-acorn", "hnsw512-acorn"),
    },
    # disk-sq-seg without the optimizer settings: the engine's segment sizes, one optimize()
    "disk-sq-auto": {
        "vectors": "Cold", "payload": "Cold", "quant": "Pinned", "hnsw": "Pinned",
        "optimize": True, "modes": ("hnsw512-acorn",),
    },
    # the same without quantization: HNSW in RAM walks the original vectors on disk
    "disk": {
        "vectors": "Cold", "payload": "Cold", "hnsw": "Pinned",
        "optimize": True, "modes": ("hnsw",),
    },
    # disk-sq with the payload indexes on disk too
    "disk-sq-coldidx": {
        "vectors": "Cold", "payload": "Cold", "quant": "Pinned", "hnsw": "Pinned",
        "index": "Cold", "optimize": True, "modes": ("hnsw",),
    },
    # default without payload indexes (filters scan payloads)
    "noidx": {"indexes": (), "optimize": False, "modes": ("exact",)},
}  # fmt: skip


def qe_mod() -> Any:
    import qdrant_edge

    return qdrant_edge


def memory(qe: Any, name: str | None) -> Any:
    return None if name is None else getattr(qe.Memory, name)


def edge_config(qe: Any, spec: dict[str, Any]) -> Any:
    quant = None
    if spec.get("quant"):
        quant = qe.ScalarQuantizationConfig(
            qe.ScalarType.Int8, quantile=0.99, memory=memory(qe, spec["quant"])
        )
    hnsw = None
    if spec.get("hnsw"):
        hnsw = qe.HnswIndexConfig(
            m=16, ef_construct=100, full_scan_threshold=10_000, memory=memory(qe, spec["hnsw"])
        )
    optimizers = None
    if spec.get("segment_points"):  # max_segment_size is in KB of (float32) vector data
        optimizers = qe.EdgeOptimizersConfig(
            max_segment_size=spec["segment_points"] * DIM * 4 // 1024
        )
    return qe.EdgeConfig(
        optimizers=optimizers,
        vectors={
            "dense": qe.EdgeVectorParams(
                size=DIM, distance=qe.Distance.Cosine, memory=memory(qe, spec.get("vectors"))
            )
        },
        sparse_vectors={"sparse": qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        payload_memory=memory(qe, spec.get("payload")),
        hnsw_config=hnsw,
        quantization_config=quant,
    )


def search_params(qe: Any, mode: str, quantized: bool) -> Any:
    if mode == "exact":  # ground truth: brute force over the original float vectors
        return qe.SearchParams(exact=True, quantization=qe.QuantizationSearchParams(ignore=True))
    q = qe.QuantizationSearchParams(rescore=True, oversampling=OVERSAMPLING) if quantized else None
    if mode == "exactq":  # exact=True with the quantization's default use (see the results)
        return qe.SearchParams(exact=True, quantization=q)
    # "hnsw", "hnsw256" (hnsw_ef 256), "hnsw256-acorn" (ACORN for filtered searches)
    base, _, extra = mode.partition("-")
    ef = int(base[4:] or HNSW_EF)
    acorn = qe.AcornSearchParams(enable=True) if extra == "acorn" else None
    return qe.SearchParams(hnsw_ef=ef, exact=False, quantization=q, acorn=acorn)


# --- synthetic data --------------------------------------------------------------------------
_ZIPF_CDF = np.cumsum(1.0 / (np.arange(VOCAB) + 10.0))
_ZIPF_CDF /= _ZIPF_CDF[-1]


def zipf_terms(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return np.minimum(np.searchsorted(_ZIPF_CDF, rng.random(shape)), VOCAB - 1)


def dense_batch(b: int) -> np.ndarray:
    rng = np.random.default_rng([SEED, 0, b])
    v = rng.standard_normal((BATCH, DIM), dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def sparse_batch(b: int) -> list[tuple[list[int], list[float]]]:
    rng = np.random.default_rng([SEED, 1, b])
    draws = zipf_terms(rng, (BATCH, TERMS + 8))
    # BM25's term weight, tf (k1 + 1) / (tf + k1 (1 - b + b len/avg)), with a random document
    # length: continuous weights, so that chunks rarely tie on the sparse side
    norm = 1.2 * (0.25 + 0.75 * rng.uniform(0.5, 1.5, BATCH))
    out = []
    for row, nk in zip(draws, norm, strict=True):
        ids, tf = np.unique(row, return_counts=True)
        ids, tf = ids[:TERMS], tf[:TERMS]
        out.append((ids.tolist(), (tf * 2.2 / (tf + nk)).astype(np.float32).tolist()))
    return out


_SENTENCES: list[str] = []


def sentences() -> list[str]:
    if not _SENTENCES:
        data = json.loads(JSQUAD.read_text(encoding="utf-8"))
        for article in data["data"]:
            for para in article["paragraphs"]:
                text = para["context"].partition(" [SEP] ")[2]
                _SENTENCES.extend(s + "。" for s in text.split("。") if len(s) > 10)
    return _SENTENCES


def payload_batch(b: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng([SEED, 2, b])
    pool = sentences()
    out = []
    for k in range(BATCH):
        n = b * BATCH + k
        f, i = divmod(n, PER_FILE)
        text = ""
        while len(text) < 300:
            text += pool[int(rng.integers(len(pool)))]
        text = text[:320]
        path = f"/home/user/notes/synthetic/{f:07d}.md"
        out.append({
            "path": path, "source": path[len("/home/user/"):], "title": f"ノート {f}",
            "headings": [f"ノート {f}", f"節 {i // 10}"], "line_start": 3 * i + 1,
            "line_end": 3 * i + 3, "char_start": 320 * i, "char_end": 320 * (i + 1),
            "text": text, "chunk_index": i, "content_hash": f"{n:016x}",
            "file_hash": f"{f:016x}", "generation": "g1", "page": None, "kind": "markdown",
            "tags": [f"tag{f % TAGS}"], "aliases": [], "lead_chars": 0, "lead_line": 0,
            "instruction_spans": [], "live": True, "state": "live",
        })  # fmt: skip
    return out


def point_id(path: str, chunk_index: int) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{path}\x00g1\x00{chunk_index}"))


def make_queries(size: int, n: int) -> list[dict[str, Any]]:
    """n queries per kind, each aimed at one stored chunk (of the filter's tag for 'tag')."""
    rng = np.random.default_rng([SEED, 3, size])
    files = size // PER_FILE
    out = []
    for kind in ("live", "tag"):
        for _ in range(n):
            tag = int(rng.integers(TAGS))
            f = (
                int(rng.integers(files))
                if kind == "live"
                else tag + TAGS * int(rng.integers((files - tag + TAGS - 1) // TAGS))
            )
            n_chunk = f * PER_FILE + int(rng.integers(PER_FILE))
            b, k = divmod(n_chunk, BATCH)
            target = dense_batch(b)[k]
            noise = rng.standard_normal(DIM).astype(np.float32)
            noise /= np.linalg.norm(noise)
            dense = target + noise
            ids = sparse_batch(b)[k][0]
            mine = [ids[j] for j in rng.choice(len(ids), 3, replace=False)]
            terms = sorted(set(mine) | set(zipf_terms(rng, (3,)).tolist()))
            out.append({
                "kind": kind, "tag": f"tag{f % TAGS}" if kind == "tag" else None,
                "dense": (dense / np.linalg.norm(dense)).tolist(),
                "sparse": (terms, [1.0] * len(terms)),
            })  # fmt: skip
    return out


# --- measurements ----------------------------------------------------------------------------
def proc_status() -> dict[str, float]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
            out[key] = int(line.split()[1]) / 1024  # MiB
    return out


def dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def evict(path: Path) -> None:
    """Drop the shard's files from the page cache (this store only, nothing global)."""
    for f in path.rglob("*"):
        if f.is_file():
            fd = os.open(f, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def write(store: Path, name: str, size: int) -> dict[str, Any]:
    qe = qe_mod()
    spec = CONFIGS[name]
    shard = qe.EdgeShard.create(str(store), edge_config(qe, spec))
    for field in spec.get("indexes", INDEXED):
        graph = field == "tags" and bool(spec.get("tag_graph"))
        params = qe.KeywordIndexParams(enable_hnsw=graph, memory=memory(qe, spec.get("index")))
        shard.update(qe.UpdateOperation.create_field_index(field, params))
    write_s = optimize_s = 0.0
    every = spec.get("optimize_every", 0) // BATCH
    for b in range(size // BATCH):
        if every and b and b % every == 0:
            began = time.perf_counter()
            shard.optimize()
            optimize_s += time.perf_counter() - began
        dense, sparse, payload = dense_batch(b), sparse_batch(b), payload_batch(b)
        began = time.perf_counter()
        points = [
            qe.Point(
                point_id(p["path"], p["chunk_index"]),
                {"dense": dense[k], "sparse": qe.SparseVector(*sparse[k])},
                p,
            )
            for k, p in enumerate(payload)
        ]
        shard.update(qe.UpdateOperation.upsert_points(points))
        write_s += time.perf_counter() - began
    began = time.perf_counter()
    shard.flush()
    write_s += time.perf_counter() - began
    out: dict[str, Any] = {"write_s": write_s, "optimize_s": None}
    if spec.get("optimize"):
        began = time.perf_counter()
        shard.optimize()
        out["optimize_s"] = optimize_s + time.perf_counter() - began
    info = shard.info()
    out |= {
        "points": info.points_count,
        "segments": info.segments_count,
        "indexed_vectors": info.indexed_vectors_count,
        "write_hwm_mb": proc_status()["VmHWM"],  # file-backed (mmap) pages included
    }
    shard.close()
    out["disk_mb"] = dir_mb(store)
    return out


def query_request(qe: Any, q: dict[str, Any], params: Any) -> Any:
    must = [qe.FieldCondition("state", match=qe.MatchValue("live"))]
    if q["tag"]:
        must.append(qe.FieldCondition("tags", match=qe.MatchValue(q["tag"])))
    condition = qe.Filter(must=must)
    dense = qe.Query.Nearest(q["dense"], using="dense")
    sparse = qe.Query.Nearest(qe.SparseVector(*q["sparse"]), using="sparse")
    return qe.QueryRequest(
        limit=LIMIT,
        prefetches=[
            qe.Prefetch(PREFETCH, query=dense, filter=condition, params=params),
            qe.Prefetch(PREFETCH, query=sparse, filter=condition),
        ],
        query=qe.Fusion.Dbsf(),
        with_payload=True,
        with_vector=False,
    )


def read(store: Path, name: str, mode: str, size: int, n: int, n_recall: int) -> dict[str, Any]:
    qe = qe_mod()
    spec = CONFIGS[name]
    todo = make_queries(size, n)
    sentences()  # loaded before the first reading, as the queries are: not the store's memory
    before = proc_status()
    began = time.perf_counter()
    shard = qe.EdgeShard.load(str(store))
    open_s = time.perf_counter() - began
    opened = proc_status()
    params = search_params(qe, mode, bool(spec.get("quant")))
    out: dict[str, Any] = {"open_s": open_s, "before": before, "opened": opened}
    tops: dict[str, list[list[Any]]] = {}
    for kind in ("live", "tag"):
        times, tops[kind] = [], []
        for q in (q for q in todo if q["kind"] == kind):
            request = query_request(qe, q, params)
            t0 = time.perf_counter()
            hits = shard.query(request)
            times.append((time.perf_counter() - t0) * 1000)
            tops[kind].append([h.id for h in hits])
            assert len(hits) == LIMIT and all(h.payload["text"] for h in hits)
        warm = times[5:]
        out[kind] = {
            "p50": float(np.percentile(warm, 50)),
            "p95": float(np.percentile(warm, 95)),
            "max": float(max(warm)),
            "first": times[0],
        }
    out["after"] = proc_status()
    if mode != "exact":  # recall against exact float search, after the memory readings
        exact = search_params(qe, "exact", bool(spec.get("quant")))
        for kind in ("live", "tag"):
            found = []
            for q, top in list(
                zip((q for q in todo if q["kind"] == kind), tops[kind], strict=True)
            )[:n_recall]:
                truth = {h.id for h in shard.query(query_request(qe, q, exact))}
                found.append(len(truth & set(top)) / LIMIT)
            out[kind]["recall"] = float(np.mean(found))
    shard.close()
    return out


def worker(*args: str) -> dict[str, Any]:
    """Run one step in a fresh process; its anonymous memory is sampled every 0.2 s from here
    (VmHWM also counts the shard's file pages, which the kernel may drop)."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--worker", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    anon_max = 0.0
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("RssAnon:"):
                    anon_max = max(anon_max, int(line.split()[1]) / 1024)
        except OSError:
            pass
        time.sleep(0.2)
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"worker {args} failed ({proc.returncode}):\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1]) | {f"{args[0]}_anon_max_mb": anon_max}


# --- report ----------------------------------------------------------------------------------
def table(rows: list[dict[str, Any]]) -> str:
    def ms(r: dict[str, Any]) -> str:
        return f"{r['p50']:.1f} / {r['p95']:.1f}"

    def sec(x: float | None) -> str:
        return "—" if x is None else f"{x:.1f} s"

    lines = [
        "| chunks | config | search | write | optimize | disk | open | RSS after queries "
        "(anon + file) | per chunk | peak (VmHWM) | live p50 / p95 ms | tag+live p50 / p95 ms "
        "| recall@4 live / tag |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        b, a = r["before"], r["after"]
        rss = a["VmRSS"] - b["VmRSS"]
        anon, file = a["RssAnon"] - b["RssAnon"], a["RssFile"] - b["RssFile"]
        recall = (
            f"{r['live']['recall']:.3f} / {r['tag']['recall']:.3f}"
            if "recall" in r["live"]
            else "exact"
        )
        lines.append(
            f"| {r['size']:,} | {r['config']} | {r['mode']} | {sec(r['write_s'])} | "
            f"{sec(r['optimize_s'])} | {r['disk_mb']:,.0f} MB | {r['open_s']:.1f} s | "
            f"{rss:,.0f} MB ({anon:,.0f} + {file:,.0f}) | {rss * 1024 / r['size']:.2f} KiB | "
            f"{a['VmHWM']:,.0f} MB | {ms(r['live'])} | {ms(r['tag'])} | {recall} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--configs", default="default,disk-sq", help=", ".join(CONFIGS))
    parser.add_argument("--queries", type=int, default=200, help="per kind (live, tag)")
    parser.add_argument("--recall-queries", type=int, default=200, help="per kind")
    parser.add_argument(
        "--root",
        type=Path,
        default=Path(tempfile.gettempdir()) / "shiori-bench-scale",
        help="where the shards are written (1M chunks: ~6 GB)",
    )
    parser.add_argument(
        "--results", type=Path, help="append JSON lines here (default ROOT/results.jsonl)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the shards")
    parser.add_argument("--table", type=Path, help="print the Markdown table of a results file")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, store, name, size, *rest = args.worker
        if kind == "write":
            result = write(Path(store), name, int(size))
        else:
            result = read(Path(store), name, rest[0], int(size), int(rest[1]), int(rest[2]))
        print(json.dumps(result))
        return
    if args.table:
        rows = [json.loads(line) for line in args.table.read_text().splitlines() if line]
        print(table(rows))
        return

    results = args.results or args.root / "results.jsonl"
    args.root.mkdir(parents=True, exist_ok=True)
    for name in args.configs.split(","):
        store = args.root / f"{name}-{args.size}"
        shutil.rmtree(store, ignore_errors=True)
        try:
            wrote = worker("write", str(store), name, str(args.size))
            print(args.size, name, json.dumps(wrote), flush=True)
            for mode in CONFIGS[name]["modes"]:
                evict(store)
                row = {"size": args.size, "config": name, "mode": mode, **wrote}
                row |= worker(
                    "read", str(store), name, str(args.size), mode, str(args.queries),
                    str(args.recall_queries),
                )  # fmt: skip
                row["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
                with results.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
                print(table([row]).splitlines()[-1], flush=True)
        finally:
            if not args.keep:
                shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    main()
