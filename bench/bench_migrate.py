"""How fast `shiori store migrate` copies an embedded store to another (docs/deploy.md).

Usage: .venv/bin/python bench/bench_migrate.py [CHUNKS]   (default 10000)

Synthetic chunks shaped like Shiori's: 768-d dense vectors, 200-term sparse vectors, a payload
written by NoteIndex. Prints the command's JSON report and the wall time; no model is loaded."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shiori.chunk import Chunk
from shiori.config import Settings
from shiori.index import NoteIndex, Vectors, open_client
from shiori.sparse import SparseVector


def main(n: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="shiori-migrate-"))
    settings = Settings(qdrant=str(root / "src"), collection="bench")
    index = NoteIndex(open_client(settings), settings, 768)
    index.ensure_collections()
    rng = random.Random(0)
    for start in range(0, n, 1000):
        chunks = [
            Chunk(
                path=f"/notes/{i // 10}.md",
                source=f"{i // 10}.md",
                title="t",
                headings=["t"],
                line_start=i,
                line_end=i + 5,
                char_start=0,
                char_end=500,
                text="x" * 500,
                chunk_index=i % 10,
                content_hash=f"h{i}",
                file_hash="f",
                generation="g",
            )
            for i in range(start, min(start + 1000, n))
        ]
        vectors = [
            Vectors(
                [rng.random() for _ in range(768)],
                SparseVector(sorted(rng.sample(range(50_000), 200)), [1.0] * 200),
            )
            for _ in chunks
        ]
        index.write_chunks(chunks, vectors)
    index.client.close()
    env = dict(os.environ, SHIORI_QDRANT=str(root / "src"), SHIORI_COLLECTION="bench")
    shiori = Path(sys.executable).with_name("shiori")
    started = time.monotonic()
    done = subprocess.run(
        [str(shiori), "store", "migrate", "--to", str(root / "dst"), "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    print(done.stdout.strip() or done.stderr[-2000:])
    print(f"wall {time.monotonic() - started:.1f} s (store in {root})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
