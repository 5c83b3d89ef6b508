"""Retrieval quality on JSQuAD: dense, sparse and fused, through the real Qdrant query path.

The 1,145 validation paragraphs are ingested with Shiori's own pipeline (one file each, kept in
.bench/ so a second run re-ingests nothing); each question's relevant document is its paragraph.

    python bench/retrieval_jsquad.py [--every N] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from blocks import write_block  # bench/ is on sys.path when run as a script

from ingest.pipeline import Ingestor
from rag.packing import pack
from rag.prompt import build_messages
from rag.retrieve import Passage
from shiori.config import Settings
from shiori.embedding import Embedder
from shiori.index import NoteIndex, open_client
from shiori.sparse import SparseEncoder

REPO = Path(__file__).resolve().parents[1]
JSQUAD = REPO.parent / "shared/data/jsquad/valid-v1.3.json"
WORK = REPO / ".bench" / "jsquad"
MARK_BEGIN, MARK_END = "<!-- bench-retrieval:begin -->", "<!-- bench-retrieval:end -->"


def corpus_and_questions(every: int) -> list[tuple[str, str]]:
    data = json.loads(JSQUAD.read_text(encoding="utf-8"))
    docs = WORK / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    questions: list[tuple[str, str]] = []
    n = 0
    for article in data["data"]:
        for para in article["paragraphs"]:
            title, _, text = para["context"].partition(" [SEP] ")
            name = f"{n:04d}"
            target = docs / f"{name}.txt"
            if not target.exists():
                target.write_text(f"{title}\n{text}\n", encoding="utf-8")
            questions.extend((qa["question"], name) for qa in para["qas"])
            n += 1
    return questions[::every]


def packing_table(
    questions: list[tuple[str, str]],
    vectors: Any,
    index: NoteIndex,
    embedder: Embedder,
    settings: Settings,
) -> list[str]:
    """For each top_k: how often the gold paragraph reaches the prompt, and the prompt's size."""
    sparse = SparseEncoder()
    found: dict[tuple[int, float], int] = {}
    tokens: dict[tuple[int, float], list[int]] = {}
    # (top_k, relative score cut): the cut drops passages far below the best one
    ks = [(1, 0.0), (2, 0.0), (3, 0.0), (4, 0.0), (6, 0.0), (8, 0.0), (4, 0.5), (4, 0.6), (6, 0.5)]
    for (question, gold), vec in zip(questions, vectors, strict=True):
        hits = index.hybrid_query(vec.tolist(), sparse.encode_query(question), 8)
        passages = [Passage(chunk=c, score=s, similarity=0.0, term_overlap=0.0) for c, s, _ in hits]
        for k in ks:
            packed = pack(passages[: k[0]], settings.context_tokens, embedder.count_tokens, k[1])
            found[k] = found.get(k, 0) + any(Path(p.chunk.path).stem == gold for p in packed)
            prompt = "\n".join(
                m["content"] for m in build_messages(question, [p.chunk for p in packed])
            )
            tokens.setdefault(k, []).append(embedder.count_tokens([prompt])[0])
    n = len(questions)
    rows = []
    for k in ks:
        ts = sorted(tokens[k])
        rows.append(
            f"| {k[0]} | {k[1] or '—'} | {found[k] / n:.3f} | {statistics.mean(ts):.0f} "
            f"| {ts[int(0.95 * (n - 1))]} |"
        )
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--every", type=int, default=1, help="use every Nth question")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    questions = corpus_and_questions(args.every)
    settings = Settings(qdrant=str(WORK / "qdrant"), collection="jsquad")
    embedder = Embedder(settings)
    index = NoteIndex(open_client(settings), settings, embedder.dimension)
    index.ensure_collections()
    report = Ingestor(settings, index, embedder).run([WORK / "docs"])
    print(f"ingest: {report.files_new} new, {report.files_unchanged} unchanged", flush=True)
    began = time.perf_counter()
    vectors = embedder.embed_queries([q for q, _ in questions])
    embed_ms = (time.perf_counter() - began) / len(questions) * 1000
    sparse = SparseEncoder()
    rows = []
    for fusion in ("dense", "sparse", "rrf", "dbsf"):
        hits_at = {1: 0, 5: 0, 10: 0}
        rr = 0.0
        latencies = []
        for (question, gold), vec in zip(questions, vectors, strict=True):
            t0 = time.perf_counter()
            hits = index.hybrid_query(
                vec.tolist(), sparse.encode_query(question), 10, prefetch=40, fusion=fusion
            )
            latencies.append((time.perf_counter() - t0) * 1000)
            names = [Path(c.path).stem for c, _, _ in hits]
            rank = names.index(gold) + 1 if gold in names else None
            if rank:
                rr += 1 / rank
                for k in hits_at:
                    hits_at[k] += rank <= k
        n = len(questions)
        latencies.sort()
        row = (
            f"| {fusion} | {hits_at[1] / n:.3f} | {hits_at[5] / n:.3f} | {hits_at[10] / n:.3f} "
            f"| {rr / n:.3f} | {statistics.median(latencies):.1f} ms "
            f"| {latencies[int(0.95 * (n - 1))]:.1f} ms |"
        )
        rows.append(row)
        print(row, flush=True)
    pack_rows = packing_table(questions, vectors, index, embedder, settings)
    index.client.close()
    every = f" --every {args.every}" if args.every > 1 else ""
    text = "\n".join(
        [
            MARK_BEGIN,
            f"Command: `python bench/retrieval_jsquad.py{every}`"
            f" — {time.strftime('%Y-%m-%d')}; {len(questions)} questions over 1,145 paragraphs "
            f"(1,148 chunks), embedded Qdrant, prefetch 40 per side. Query embedding "
            f"{embed_ms:.0f} ms per question (batched), not included in the latencies.",
            "",
            "| mode | R@1 | R@5 | R@10 | MRR@10 | query p50 | query p95 |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            "Prompt size against recall (DBSF; top_k passages packed into the prompt with "
            f"Shiori's packing, budget {settings.context_tokens} tokens; score cut: passages "
            "below that share of the best fused score are left out, 0.5 is the default; tokens "
            "counted with the embedding model's tokenizer, whole prompt: rules + sources + "
            "question):",
            "",
            "| top_k | score cut | answer paragraph in the prompt | prompt tokens, mean | p95 |",
            "|---|---|---|---|---|",
            *pack_rows,
            MARK_END,
        ]
    )
    print(text)
    if args.write:
        write_block(
            args.write,
            MARK_BEGIN,
            MARK_END,
            text,
            "Retrieval on JSQuAD (`python bench/retrieval_jsquad.py`)",
        )


if __name__ == "__main__":
    main()
