"""Ingest cost of two checkouts of Shiori, back to back on the same corpora: is a change slower?

Each measurement is a fresh process that imports Shiori from one checkout (PYTHONPATH), loads
the embedding model, and ingests one corpus into a fresh embedded store; the ingest alone is
timed, in wall-clock seconds and in CPU seconds of the process (all its threads). The checkouts
alternate A B A B … so that drift of a shared machine falls on both. CPU seconds are the figure
to compare on a machine shared with other work: other processes lengthen the wall clock, not
this process's CPU time. Reported: medians per checkout and the ratio head / base.

    python bench/compare_ingest.py --base ../shiori-base --head . [--limit 400] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_ingest import write_jsquad_corpus  # bench/ is on sys.path when run as a script


def worker(corpus: Path, store: Path) -> dict[str, Any]:
    """Runs inside the checkout being measured (its code comes first on sys.path)."""
    from ingest.pipeline import Ingestor
    from shiori.config import Settings
    from shiori.embedding import Embedder
    from shiori.index import NoteIndex, open_client

    settings = Settings(qdrant=str(store), collection="bench")
    embedder = Embedder(settings)
    embedder.embed_queries(["warm-up"])  # load the model before the clock starts
    index = NoteIndex(open_client(settings), settings, embedder.dimension)
    index.ensure_collections()
    ingestor = Ingestor(settings, index, embedder)
    wall, cpu = time.perf_counter(), time.process_time()
    report = ingestor.run([corpus])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    index.client.close()
    import ingest

    return {
        "code": str(Path(ingest.__file__).parents[1]),
        "files": report.files_new,
        "chunks": report.chunks_written,
        "wall_s": wall,
        "cpu_s": cpu,
    }


def run(tree: Path, corpus: Path) -> dict[str, Any]:
    store = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    try:
        done = subprocess.run(
            [sys.executable, __file__, "--worker", "--corpus", str(corpus), "--store", str(store)],
            capture_output=True,
            text=True,
            check=False,
            cwd=tree,
            env={**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{Path(__file__).parent}"},
        )
        if done.returncode != 0:
            raise RuntimeError(f"worker in {tree} failed:\n{done.stderr[-3000:]}")
        row = dict(json.loads(done.stdout.strip().splitlines()[-1]))
        if Path(row["code"]).resolve() != tree:
            raise RuntimeError(f"the worker for {tree} imported Shiori from {row['code']}")
        return row
    finally:
        shutil.rmtree(store, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, help="the checkout before")
    parser.add_argument("--head", type=Path, help="the checkout after")
    parser.add_argument("--limit", type=int, default=400, help="JSQuAD paragraphs")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.corpus, args.store)))
        return
    if args.base is None or args.head is None:
        parser.error("--base and --head are required")
    trees = {"base": args.base.resolve(), "head": args.head.resolve()}
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-corpus-") as tmp:
        jsquad = Path(tmp) / "jsquad"
        n = write_jsquad_corpus(jsquad, args.limit)
        corpora = {f"JSQuAD valid ({n} paragraphs)": jsquad, "notes/": trees["base"] / "notes"}
        for _ in range(args.rounds):
            for corpus_name, corpus in corpora.items():
                for name, tree in trees.items():
                    row = run(tree, corpus)
                    rows.setdefault((corpus_name, name), []).append(row)
                    print(corpus_name, name, json.dumps(row), flush=True)
    print(
        f"\n{args.rounds} rounds, medians\n\n"
        "| corpus | checkout | chunks | ingest CPU s | ingest wall s | CPU / base | wall / base |"
    )
    print("|---|---|---|---|---|---|---|")
    for corpus_name in corpora:
        base = rows[(corpus_name, "base")]
        base_cpu = statistics.median(r["cpu_s"] for r in base)
        base_wall = statistics.median(r["wall_s"] for r in base)
        for name in trees:
            got = rows[(corpus_name, name)]
            cpu = statistics.median(r["cpu_s"] for r in got)
            wall = statistics.median(r["wall_s"] for r in got)
            print(
                f"| {corpus_name} | {name} | {got[0]['chunks']} | {cpu:.1f} | {wall:.1f} | "
                f"{cpu / base_cpu:.3f} | {wall / base_wall:.3f} |"
            )


if __name__ == "__main__":
    main()
