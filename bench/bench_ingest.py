"""Ingest throughput: Shiori's pipeline beside a plain LlamaIndex pipeline, same model, same data.

Corpora: the JSQuAD validation paragraphs (one .txt file each) and the bundled notes/. Each
pipeline runs in its own subprocess (so its peak RSS is its own) against a fresh embedded Qdrant
store. Also measured here, at the start and the end of the run: the model-bound limit, the
tokens/s of EmbeddingGemma's weight matmuls alone at the model's own shapes in bf16
(`bench_embed.layer_matmul_limit`, the best of 512 and 4,096 rows per batch), and the time to
re-ingest an unchanged corpus.

    python bench/bench_ingest.py [--limit N] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_embed import layer_matmul_limit  # bench/ is on sys.path when run as a script
from blocks import write_block

REPO = Path(__file__).resolve().parents[1]
JSQUAD = REPO.parent / "shared/data/jsquad/valid-v1.3.json"
MARK_BEGIN, MARK_END = "<!-- bench-ingest:begin -->", "<!-- bench-ingest:end -->"


def model_limit() -> float:
    """Tokens/s EmbeddingGemma's weight matmuls alone reach here (bf16, the model's shapes)."""
    return max(layer_matmul_limit(rows) for rows in (512, 4096))


def write_jsquad_corpus(target: Path, limit: int | None) -> int:
    data = json.loads(JSQUAD.read_text(encoding="utf-8"))
    paragraphs = [p["context"] for a in data["data"] for p in a["paragraphs"]]
    paragraphs = paragraphs[:limit] if limit else paragraphs
    target.mkdir(parents=True, exist_ok=True)
    for i, context in enumerate(paragraphs):
        title, _, text = context.partition(" [SEP] ")
        (target / f"{i:04d}.txt").write_text(f"{title}\n{text}\n", encoding="utf-8")
    return len(paragraphs)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_shiori(corpus: Path, store: Path) -> dict[str, Any]:
    from ingest.pipeline import Ingestor, embed_title
    from shiori.config import Settings
    from shiori.embedding import Embedder, document_prompt
    from shiori.index import NoteIndex, open_client

    settings = Settings(qdrant=str(store), collection="bench")
    embedder = Embedder(settings)
    began = time.perf_counter()
    index = NoteIndex(open_client(settings), settings, embedder.dimension)
    index.ensure_collections()
    ingestor = Ingestor(settings, index, embedder)
    load_s = time.perf_counter() - began
    first = ingestor.run([corpus])
    again = ingestor.run([corpus])
    chunks = index.chunks()
    texts = [document_prompt(embed_title(c)) + c.text for c in chunks]
    tokens = sum(len(t) + 2 for t in embedder.tokenizer(texts)["input_ids"])  # + BOS/EOS
    # embedding alone, on the same chunks, to separate the model from the pipeline around it
    began = time.perf_counter()
    embedder.embed_documents([c.text for c in chunks], [embed_title(c) for c in chunks])
    embed_only_s = time.perf_counter() - began
    index.client.close()
    return {
        "pipeline": "shiori",
        "load_s": load_s,
        "seconds": first.seconds,
        "files": first.files_new,
        "chunks": first.chunks_written,
        "tokens": tokens,
        "embed_only_s": embed_only_s,
        "reingest_s": again.seconds,
        "reingest_unchanged": again.files_unchanged,
        "peak_rss_mb": peak_rss_mb(),
    }


def worker_llamaindex(corpus: Path, store: Path) -> dict[str, Any]:
    """The plain default pipeline a LlamaIndex user would write first."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from llama_index.core import SimpleDirectoryReader
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    from shiori.config import Settings
    from shiori.models import resolve

    settings = Settings()
    began = time.perf_counter()
    embed = HuggingFaceEmbedding(model_name=resolve(settings.embed_model, settings.models_dir))
    client = QdrantClient(path=str(store))
    store_ = QdrantVectorStore(client=client, collection_name="bench")
    pipeline = IngestionPipeline(transformations=[SentenceSplitter(), embed], vector_store=store_)
    load_s = time.perf_counter() - began
    began = time.perf_counter()
    documents = SimpleDirectoryReader(str(corpus), recursive=True).load_data()
    nodes = pipeline.run(documents=documents)
    seconds = time.perf_counter() - began
    client.close()
    return {
        "pipeline": "llamaindex-default",
        "load_s": load_s,
        "seconds": seconds,
        "files": len({d.metadata.get("file_path") for d in documents}),
        "chunks": len(nodes),
        "peak_rss_mb": peak_rss_mb(),
    }


def run_worker(kind: str, corpus: Path) -> dict[str, Any]:
    store = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-"))
    try:
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--worker",
                kind,
                "--corpus",
                str(corpus),
                "--store",
                str(store),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{kind} worker failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(store, ignore_errors=True)


def report(results: dict[str, dict[str, dict[str, Any]]], limits: list[float], command: str) -> str:
    limit = sum(limits) / len(limits)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    lines = [
        MARK_BEGIN,
        f"Command: `{command}` — run on {time.strftime('%Y-%m-%d')}, {cpu}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}.",
        "",
        "- Model-bound limit, measured in this run (EmbeddingGemma's weight matmuls alone at "
        "its shapes, bf16; start / end of the run): "
        + " / ".join(f"{x:,.0f}" for x in limits)
        + f" tokens/s, **{limit:,.0f} tokens/s** on average.",
        "",
        "| corpus | pipeline | files | chunks | seconds | docs/s | chunks/s | speed-up "
        "| peak RSS |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    notes_lines = []
    for corpus, pair in results.items():
        ours, plain = pair["shiori"], pair["llamaindex-default"]
        for row in (ours, plain):
            docs_s = row["files"] / row["seconds"]
            speed = (plain["seconds"] / ours["seconds"]) if row is ours else 1.0
            lines.append(
                f"| {corpus} | {row['pipeline']} | {row['files']} | {row['chunks']} | "
                f"{row['seconds']:.1f} | {docs_s:.2f} | {row['chunks'] / row['seconds']:.2f} | "
                f"{speed:.2f}x | {row['peak_rss_mb']:,.0f} MB |"
            )
        tok_s = ours["tokens"] / ours["seconds"]
        embed_tok_s = ours["tokens"] / ours["embed_only_s"]
        per_1000 = ours["reingest_s"] / max(ours["reingest_unchanged"], 1) * 1000
        notes_lines.append(
            f"- {corpus}: {ours['tokens']:,} tokens embedded; whole pipeline "
            f"{tok_s:,.0f} tokens/s = **{tok_s / limit:.0%} of the model-bound limit** "
            f"(embedding alone {embed_tok_s:,.0f} tokens/s = {embed_tok_s / limit:.0%}); "
            f"re-ingesting it unchanged: {ours['reingest_s']:.2f} s "
            f"(**{per_1000:.2f} s per 1,000 files**)."
        )
    lines += ["", *notes_lines, "", MARK_END]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="JSQuAD paragraphs to use")
    parser.add_argument("--write", type=Path, help="update this Markdown file in place")
    parser.add_argument("--worker", choices=["shiori", "llamaindex"], help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        fn = worker_shiori if args.worker == "shiori" else worker_llamaindex
        print(json.dumps(fn(args.corpus, args.store)))
        return

    command = "make bench-ingest" + (f' ARGS="--limit {args.limit}"' if args.limit else "")
    limits = [model_limit()]
    print(f"model-bound limit: {limits[0]:,.0f} tokens/s", flush=True)
    results: dict[str, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-corpus-") as tmp:
        jsquad = Path(tmp) / "jsquad"
        n = write_jsquad_corpus(jsquad, args.limit)
        corpora = ((f"JSQuAD valid ({n} paragraphs)", jsquad), ("notes/", REPO / "notes"))
        for name, corpus in corpora:
            results[name] = {}
            for kind in ("shiori", "llamaindex"):
                row = run_worker(kind, corpus)
                results[name][row["pipeline"]] = row
                print(name, json.dumps(row), flush=True)
    limits.append(model_limit())  # the machine may drift: both ends, averaged
    text = report(results, limits, command)
    print(text)
    if args.write:
        write_block(args.write, MARK_BEGIN, MARK_END, text, "Ingest (`make bench-ingest`)")


if __name__ == "__main__":
    main()
