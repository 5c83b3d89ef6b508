"""Ingest time of two checkouts of Shiori, back to back on the same corpora: is a change slower?

Runs `bench_ingest.py`'s Shiori worker (fresh embedded store, ingest, then the same chunks
embedded alone) from each checkout in turn, alternating A B A B … so that drift of a shared
machine falls on both, and reports each checkout's median seconds and the ratio head / base.

    python bench/compare_ingest.py --base ../shiori-base --head . [--limit 400] [--rounds 2]
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
from pathlib import Path
from typing import Any

from bench_ingest import write_jsquad_corpus  # bench/ is on sys.path when run as a script


def run(tree: Path, corpus: Path) -> dict[str, Any]:
    store = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    try:
        done = subprocess.run(
            [sys.executable, str(tree / "bench" / "bench_ingest.py"), "--worker", "shiori",
             "--corpus", str(corpus), "--store", str(store)],
            capture_output=True, text=True, check=False, cwd=tree,
            env={**os.environ, "PYTHONPATH": str(tree)},  # that checkout's code, not the venv's
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"worker in {tree} failed:\n{done.stderr[-3000:]}")
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))
    finally:
        shutil.rmtree(store, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, required=True, help="the checkout before")
    parser.add_argument("--head", type=Path, required=True, help="the checkout after")
    parser.add_argument("--limit", type=int, default=400, help="JSQuAD paragraphs")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
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
        "\n| corpus | checkout | chunks | ingest s (median) | embedding alone s | ingest / base |"
    )
    print("|---|---|---|---|---|---|")
    for corpus_name in corpora:
        base_s = statistics.median(r["seconds"] for r in rows[(corpus_name, "base")])
        for name in trees:
            got = rows[(corpus_name, name)]
            seconds = statistics.median(r["seconds"] for r in got)
            embed = statistics.median(r["embed_only_s"] for r in got)
            print(
                f"| {corpus_name} | {name} | {got[0]['chunks']} | {seconds:.1f} | {embed:.1f} | "
                f"{seconds / base_s:.3f} |"
            )


if __name__ == "__main__":
    main()
