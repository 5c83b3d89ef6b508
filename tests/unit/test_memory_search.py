"""The in-process search of embedded stores returns what Qdrant's own fused query returns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shiori.config import Settings
from shiori.index import Chunk, ChunkFilter, FileRecord, NoteIndex, Vectors, open_client
from shiori.memory_search import MemorySearch, dbsf_normalise
from shiori.sparse import SparseEncoder, SparseVector

VOCAB = 40  # term ids; random term weights make tied scores (whose order is arbitrary) unlikely


def random_sparse(rng: np.random.Generator, size: int, weights: bool = True) -> SparseVector:
    ids = sorted(int(t) for t in rng.choice(VOCAB, size=size, replace=False))
    values = rng.uniform(0.1, 2.0, size).tolist() if weights else [1.0] * size
    return SparseVector(ids, values)


def build(tmp_path: Path, n: int = 120) -> NoteIndex:
    settings = Settings(qdrant=str(tmp_path / "q"), collection="m")
    index = NoteIndex(open_client(settings), settings, 16)
    index.ensure_collections()
    rng = np.random.default_rng(7)
    by_path: dict[str, list[tuple[Chunk, Vectors]]] = {}
    for i in range(n):
        path = f"/notes/{'ab'[i % 2]}/{i % 6}.md"
        text = f"chunk {i}"
        chunk = Chunk(
            path=path, source=path.removeprefix("/"), title=f"T{i % 3}", headings=["h"],
            line_start=i, line_end=i, char_start=0, char_end=1, text=text,
            chunk_index=len(by_path.get(path, [])), content_hash=str(i), generation="g",
            tags=[f"tag{i % 4}", f"tag{i % 5}"], aliases=[f"A{i % 6}"],
        )  # fmt: skip
        vectors = Vectors(
            rng.standard_normal(16).tolist(), random_sparse(rng, int(rng.integers(1, 8)))
        )
        by_path.setdefault(path, []).append((chunk, vectors))
    for path, items in by_path.items():
        index.write_chunks([c for c, _ in items], [v for _, v in items])
        index.publish([FileRecord(path, path, "f", "g", 1, 1, len(items))])
    return index


@pytest.mark.parametrize("fusion", ["dbsf", "rrf", "dense", "sparse"])
@pytest.mark.parametrize(
    "flt",
    [
        None,
        ChunkFilter(sources=("notes/a/0.md", "notes/b/3.md")),
        ChunkFilter(title="T1"),
        ChunkFilter(title="A2"),
        ChunkFilter(tags=("tag1",)),
        ChunkFilter(tags=("#tag2", "tag3")),
    ],
    ids=["all", "sources", "title", "alias", "tag", "tags"],
)
def test_matches_qdrant(tmp_path: Path, fusion: str, flt: ChunkFilter | None) -> None:
    index = build(tmp_path)
    rng = np.random.default_rng(3)
    for _ in range(5):
        dense = rng.standard_normal(16).tolist()
        sparse = random_sparse(rng, 3, weights=False)
        ours = index.hybrid_query(dense, sparse, 8, prefetch=20, fusion=fusion, flt=flt)
        theirs = index.qdrant_query(dense, sparse, 8, prefetch=20, fusion=fusion, flt=flt)
        assert ours, "the query should find something"
        assert [(c.text, round(s, 4)) for c, s, _ in ours] == [
            (c.text, round(s, 4)) for c, s, _ in theirs
        ]
        if flt is not None:
            assert all(flt.accepts(c) for c, _, _ in ours)
    index.client.close()


def test_follows_publish_and_remove(tmp_path: Path) -> None:
    index = build(tmp_path, n=12)
    dense, sparse = [1.0] * 16, SparseEncoder().encode_query("LoRA")
    before = {c.path for c, _, _ in index.hybrid_query(dense, sparse, 50, fusion="dense")}
    assert "/notes/a/0.md" in before
    index.remove_file("/notes/a/0.md")
    after = {c.path for c, _, _ in index.hybrid_query(dense, sparse, 50, fusion="dense")}
    assert after == before - {"/notes/a/0.md"}
    index.client.close()


def test_path_prefix_and_empty_store() -> None:
    assert MemorySearch().query([1.0], SparseEncoder().encode_query("x"), 3) == []
    flt = ChunkFilter(path_prefix="notes/a")
    chunk = Chunk("/abs/notes/b/x.md", "notes/b/x.md", "t", [], 1, 1, 0, 1, "x", 0, "h")
    assert not flt.accepts(chunk)
    assert ChunkFilter(path_prefix="/abs/notes/b").accepts(chunk)


def test_dbsf_normalisation_edges() -> None:
    assert dbsf_normalise(np.array([3.0])).tolist() == [0.5]
    assert dbsf_normalise(np.array([2.0, 2.0])).tolist() == [0.5, 0.5]
    low, high = dbsf_normalise(np.array([0.0, 1.0])).tolist()
    assert 0 < low < 0.5 < high < 1


def test_names_compare_in_nfc() -> None:
    import unicodedata

    nfc = "notes/データ拡張.md"
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfd != nfc
    stored = Chunk(f"/abs/{nfd}", nfc, "t", [], 1, 1, 0, 1, "x", 0, "h")
    assert ChunkFilter(sources=(nfc,)).accepts(stored)
    assert ChunkFilter(sources=(nfd,)).accepts(stored)
    assert ChunkFilter(path_prefix="/abs/notes/デ").accepts(stored)
    legacy = Chunk(f"/abs/{nfd}", nfd, "t", [], 1, 1, 0, 1, "x", 0, "h")  # stored before NFC
    assert ChunkFilter(sources=(nfc,)).accepts(legacy)
    memory = MemorySearch()
    from shiori.memory_search import Row

    memory.replace([], [Row("1", legacy, [1.0, 0.0], SparseVector([1], [1.0]))])
    hits = memory.query([1.0, 0.0], SparseVector([1], [1.0]), 3, flt=ChunkFilter(sources=(nfc,)))
    assert [c.source for c, _, _ in hits] == [nfd]


def test_copies_of_a_passage_take_one_place(tmp_path: Path) -> None:
    settings = Settings(qdrant=str(tmp_path / "q"), collection="d")
    index = NoteIndex(open_client(settings), settings, 2)
    index.ensure_collections()
    texts = ["ReLU passage", "sigmoid passage", "GELU passage"]
    for path in ("/n/2024/a.md", "/n/backup/a.md", "/n/other.md"):
        chunks = [
            Chunk(path, path[1:], "t", [], i + 1, i + 1, 0, 1,
                  texts[i] if path != "/n/other.md" else f"other {i}", i, f"{path}{i}",
                  generation="g")
            for i in range(3)
        ]  # fmt: skip
        vectors = [Vectors([1.0, 0.1 * i], SparseVector([i + 1], [1.0])) for i in range(3)]
        index.write_chunks(chunks, vectors)
        index.publish([FileRecord(path, path[1:], "f", "g", 1, 1, 3)])
    for fusion in ("dbsf", "rrf", "dense"):
        hits = index.hybrid_query([1.0, 0.0], SparseVector([1], [1.0]), 4, fusion=fusion)
        found = [c.text for c, _, _ in hits]
        assert len(found) == 4 and len(set(found)) == 4, found
        both = index.hybrid_query(
            [1.0, 0.0], SparseVector([1], [1.0]), 4, fusion=fusion, distinct=False
        )
        assert len({c.text for c, _, _ in both}) < 4  # without it, the copies crowd the list
    index.client.close()
