"""The Qdrant Edge prototype (shiori/edge.py) answers what today's embedded search answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from shiori.index import Chunk, ChunkFilter, Vectors
from shiori.memory_search import MemorySearch, Row
from shiori.sparse import SparseVector

pytest.importorskip("qdrant_edge")  # the bench extra installs it; CI has it

from shiori.edge import EdgeIndex

VOCAB = 40
DIM = 16


def data(n: int = 150, seed: int = 7) -> list[tuple[Chunk, Vectors]]:
    rng = np.random.default_rng(seed)
    rows: list[tuple[Chunk, Vectors]] = []
    per_path: dict[str, int] = {}
    for i in range(n):
        path = f"/notes/{'ab'[i % 2]}/{i % 6}.md"
        index = per_path[path] = per_path.get(path, -1) + 1
        chunk = Chunk(
            path=path, source=path.removeprefix("/"), title=f"T{i % 3}", headings=["h"],
            line_start=i, line_end=i, char_start=0, char_end=1, text=f"chunk {i}",
            chunk_index=index, content_hash=str(i), generation="g1",
            tags=[f"tag{i % 4}", f"tag{i % 5}"], aliases=[f"A{i % 6}"],
        )  # fmt: skip
        size = int(rng.integers(1, 8))
        ids = sorted(int(t) for t in rng.choice(VOCAB, size=size, replace=False))
        sparse = SparseVector(ids, rng.uniform(0.1, 2.0, size).tolist())
        rows.append((chunk, Vectors(rng.standard_normal(DIM).tolist(), sparse)))
    return rows


def both(tmp_path: Path) -> tuple[EdgeIndex, MemorySearch]:
    rows = data()
    edge = EdgeIndex(tmp_path / "edge", DIM)
    edge.write_chunks([c for c, _ in rows], [v for _, v in rows])
    for path in sorted({c.path for c, _ in rows}):
        edge.publish(path, "g1")
    memory = MemorySearch()
    memory.replace([], [Row(str(i), c, v.dense, v.sparse) for i, (c, v) in enumerate(rows)])
    return edge, memory


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EdgeIndex, MemorySearch]]:
    edge, memory = both(tmp_path_factory.mktemp("edge"))
    yield edge, memory
    edge.close()


@pytest.mark.parametrize("fusion", ["dbsf", "dense", "sparse"])
@pytest.mark.parametrize(
    "flt",
    [
        None,
        ChunkFilter(sources=("notes/a/0.md", "notes/b/3.md")),
        ChunkFilter(title="A2"),
        ChunkFilter(tags=("tag1", "tag2")),
        ChunkFilter(path_prefix="notes/a"),
    ],
    ids=["all", "sources", "alias", "tags", "prefix"],
)
def test_fused_results_equal_todays(
    shared: tuple[EdgeIndex, MemorySearch], fusion: str, flt: ChunkFilter | None
) -> None:
    edge, memory = shared
    rng = np.random.default_rng(3)
    for _ in range(5):
        dense = rng.standard_normal(DIM).tolist()
        sparse = SparseVector(sorted(rng.choice(VOCAB, 3, replace=False).tolist()), [1.0] * 3)
        ours = edge.hybrid_query(dense, sparse, 8, prefetch=20, fusion=fusion, flt=flt)
        today = memory.query(dense, sparse, 8, prefetch=20, fusion=fusion, flt=flt)
        assert ours, "the query should find something"
        assert [c.text for c, _, _ in ours] == [c.text for c, _, _ in today]
        np.testing.assert_allclose([s for _, s, _ in ours], [s for _, s, _ in today], atol=1e-4)
        if flt is not None:
            assert all(flt.accepts(c) for c, _, _ in ours)


def test_staged_chunks_are_invisible_until_published(tmp_path: Path) -> None:
    edge, _ = both(tmp_path)
    path = "/notes/a/0.md"
    new = Chunk(path, path[1:], "T0", ["h"], 1, 1, 0, 1, "the new text", 0, "n", generation="g2")
    edge.write_chunks([new], [Vectors([1.0] * DIM, SparseVector([1], [1.0]))])

    def texts() -> set[str]:
        only = ChunkFilter(sources=(path[1:],))
        query = SparseVector([1], [1.0])
        hits = edge.hybrid_query([1.0] * DIM, query, 50, fusion="dense", flt=only)
        return {c.text for c, _, _ in hits}

    assert "the new text" not in texts() and texts()
    edge.publish(path, "g2")
    assert texts() == {"the new text"}  # the old generation is gone with the publish
    count = edge.count()
    edge.close()
    reopened = EdgeIndex(tmp_path / "edge", DIM)  # what was written survives a reopen
    assert reopened.count() == count
    reopened.close()
