"""The embedded store (Qdrant Edge behind qdrant-client's calls) answers what Qdrant answers.

The reference is qdrant-client's own local mode (':memory:'), which implements the server's
query semantics (prefetch, DBSF and RRF fusion, IDF for sparse vectors) in Python: the same
`NoteIndex` calls go to both, and the hits must be the same chunks in the same order with the
same fused scores (1e-4). Property-based: random notes, vectors, queries and filters."""

from __future__ import annotations

import itertools
import tempfile
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from shiori.config import Settings
from shiori.edge import EdgeClient, EdgeLockedError
from shiori.index import Chunk, ChunkFilter, FileRecord, NoteIndex, Vectors, open_client
from shiori.sparse import SparseVector

DIM = 8
VOCAB = 12
PATHS = ["/n/a/0.md", "/n/a/1.md", "/n/b/2.md", "/n/b/3.md", "/n/c.md"]


@st.composite
def notes(draw: st.DrawFn) -> list[tuple[Chunk, Vectors]]:
    n = draw(st.integers(3, 40))
    unit = st.floats(-1, 1, allow_nan=False, width=32)
    rows = []
    per_path: dict[str, int] = {}
    for i in range(n):
        path = draw(st.sampled_from(PATHS))
        index = per_path[path] = per_path.get(path, -1) + 1
        dense = draw(st.lists(unit, min_size=DIM, max_size=DIM).filter(lambda v: any(v)))
        terms = draw(st.lists(st.integers(0, VOCAB - 1), min_size=1, max_size=4, unique=True))
        weights = draw(st.lists(st.floats(0.125, 3, width=32), min_size=len(terms),
                                max_size=len(terms)))  # fmt: skip
        chunk = Chunk(
            path=path, source=path.removeprefix("/"), title=f"T{PATHS.index(path) % 2}",
            headings=["h"], line_start=index + 1, line_end=index + 1, char_start=0, char_end=1,
            text=f"chunk {i}", chunk_index=index, content_hash=str(i), generation="g1",
            tags=draw(st.lists(st.sampled_from(["x", "y", "z"]), max_size=2, unique=True)),
            aliases=["A"] if path.endswith("c.md") else [],
        )  # fmt: skip
        rows.append((chunk, Vectors(dense, SparseVector(sorted(terms), weights))))
    return rows


FILTERS = st.sampled_from(
    [
        None,
        ChunkFilter(sources=("n/a/0.md", "n/b/3.md")),
        ChunkFilter(title="T1"),
        ChunkFilter(title="A"),
        ChunkFilter(tags=("x",)),
        ChunkFilter(tags=("x", "y")),
        ChunkFilter(path_prefix="n/a"),
        ChunkFilter(path_prefix="/n/b/"),
    ]
)


def fill(index: NoteIndex, rows: list[tuple[Chunk, Vectors]]) -> None:
    index.ensure_collections()
    index.write_chunks([c for c, _ in rows], [v for _, v in rows])
    paths = sorted({c.path for c, _ in rows})
    index.publish([FileRecord(p, p, "f", "g1", 1, 1, sum(c.path == p for c, _ in rows))
                   for p in paths])  # fmt: skip


def reference(rows: list[tuple[Chunk, Vectors]]) -> NoteIndex:
    settings = Settings(qdrant=":memory:", collection="c")
    index = NoteIndex(open_client(settings), settings, DIM)
    fill(index, rows)
    return index


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(
    rows=notes(),
    query=st.tuples(
        st.lists(st.floats(-1, 1, width=32), min_size=DIM, max_size=DIM).filter(any),
        st.lists(st.integers(0, VOCAB - 1), min_size=1, max_size=3, unique=True),
    ),
    flt=FILTERS,
    fusion=st.sampled_from(["dbsf", "dense", "sparse"]),
    limit=st.integers(1, 6),
)
def test_hybrid_query_equals_qdrants(
    rows: list[tuple[Chunk, Vectors]],
    query: tuple[list[float], list[int]],
    flt: ChunkFilter | None,
    fusion: str,
    limit: int,
) -> None:
    dense, terms = query
    sparse = SparseVector(sorted(terms), [1.0] * len(terms))
    with tempfile.TemporaryDirectory() as tmp:
        settings_ = Settings(qdrant=tmp, collection="c")
        client = open_client(settings_)
        assert isinstance(client, EdgeClient)
        edge = NoteIndex(client, settings_, DIM)
        fill(edge, rows)
        got = edge.hybrid_query(dense, sparse, limit, prefetch=10, fusion=fusion, flt=flt)
        client.close()
    if flt is not None and flt.path_prefix:
        # the embedded engine filters the prefix before each side's prefetch; a server can not
        # (Qdrant has no prefix match on keywords): the reference names the sources under it
        under = {c.source for c, _ in rows if flt.accepts(c)}
        flt = ChunkFilter(sources=tuple(sorted(under)) or ("nothing",))
    ref = reference(rows)
    want = ref.hybrid_query(dense, sparse, limit, prefetch=10, fusion=fusion, flt=flt)
    # equal scores are ranked in an order neither engine promises (Qdrant Edge's even varies
    # from call to call), and decide which chunks make a prefetch list: only data without ties
    for side in sorted({"dense", "sparse", fusion}):  # each list, and the fused one
        scores = sorted(s for _, s, _ in ref.hybrid_query(
            dense, sparse, len(rows), prefetch=10, fusion=side, flt=flt, distinct=False
        ))  # fmt: skip
        assume(all(b - a > 1e-5 for a, b in itertools.pairwise(scores)))
    ref.client.close()
    assert [(c.path, c.chunk_index) for c, _, _ in got] == [
        (c.path, c.chunk_index) for c, _, _ in want
    ]
    assert [s for _, s, _ in got] == pytest.approx([s for _, s, _ in want], abs=1e-4)
    for (_, _, v1), (_, _, v2) in zip(got, want, strict=True):
        assert v1 == pytest.approx(v2, abs=1e-5)  # unit vectors, as a server returns them


def test_the_store_survives_reopening_and_keeps_booleans_private(tmp_path: Path) -> None:
    client = EdgeClient(tmp_path)
    settings_ = Settings(qdrant=str(tmp_path), collection="c")
    index = NoteIndex(client, settings_, DIM)
    chunk = Chunk(path="/p.md", source="p.md", title="t", headings=[], line_start=1, line_end=1,
                  char_start=0, char_end=1, text="x", chunk_index=0, content_hash="h",
                  generation="g")  # fmt: skip
    index.ensure_collections()
    index.write_chunks([chunk], [Vectors([1.0] * DIM, SparseVector([1], [1.0]))])
    assert index.count() == 0 and index.count(live_only=False) == 1
    index.publish([FileRecord("/p.md", "p.md", "f", "g", 1, 1, 1)])
    with pytest.raises(EdgeLockedError):
        EdgeClient(tmp_path)  # one process at a time
    client.close()
    again = NoteIndex(EdgeClient(tmp_path), settings_, DIM)
    again.ensure_collections()  # finds the collections, checks their dimension
    assert again.count() == 1 and list(again.file_records()) == ["/p.md"]
    (point,), _ = again.client.scroll("c", limit=5, with_payload=True)
    assert point.payload is not None and point.payload["live"] is True
    assert not [k for k in point.payload if k.startswith("_bool_")]
    with pytest.raises(ValueError, match="8-d vectors"):
        NoteIndex(again.client, settings_, 4).ensure_collections()
    again.client.close()


def one(path: str, i: int, terms: list[int]) -> tuple[Chunk, Vectors]:
    chunk = Chunk(path=path, source=unicodedata.normalize("NFC", path).removeprefix("/"),
                  title="t", headings=[], line_start=i + 1, line_end=i + 1, char_start=0,
                  char_end=1, text=f"x{path}{i}", chunk_index=i, content_hash=f"{path}{i}",
                  generation="g1")  # fmt: skip
    return chunk, Vectors([1.0, float(i), 0.5] + [0.0] * (DIM - 3), SparseVector(terms, [1.0]))


def test_a_path_prefix_finds_notes_whose_file_names_are_decomposed(tmp_path: Path) -> None:
    """macOS writes file names in NFD; a person types NFC. `source` is stored NFC, `path` as the
    file system spells it: an absolute prefix must find the note either way."""
    nfd = unicodedata.normalize("NFD", "/Users/me/notes/café/a.md")
    settings_ = Settings(qdrant=str(tmp_path), collection="c")
    index = NoteIndex(open_client(settings_), settings_, DIM)
    fill(index, [one(nfd, 0, [1]), one("/Users/me/other.md", 0, [1])])
    for prefix in ("/Users/me/notes/café", unicodedata.normalize("NFD", "/Users/me/notes/café")):
        hits = index.hybrid_query([1.0] * DIM, SparseVector([1], [1.0]), 5,
                                  flt=ChunkFilter(path_prefix=prefix))  # fmt: skip
        assert [c.path for c, _, _ in hits] == [nfd]
    index.client.close()


def test_sparse_scores_forget_deleted_notes_once_optimized(tmp_path: Path) -> None:
    """The engine's IDF counts deleted points until its shards are rebuilt or reopened: after
    removing notes, `optimize` (which ingest and removal call) brings the scores back to
    Qdrant's for the points that remain."""
    rows = [one(f"/n/{f}.md", i, [1] if f == 0 else [2]) for f in range(10) for i in range(10)]
    settings_ = Settings(qdrant=str(tmp_path), collection="c")
    index = NoteIndex(open_client(settings_), settings_, DIM)
    fill(index, rows)
    for f in range(1, 10):
        index.remove_file(f"/n/{f}.md")
    index.optimize()
    query = ([1.0] * DIM, SparseVector([1], [1.0]))
    got = index.hybrid_query(*query, 3, fusion="sparse")
    ref = reference([r for r in rows if r[0].path == "/n/0.md"])
    want = ref.hybrid_query(*query, 3, fusion="sparse")
    assert [s for _, s, _ in got] == pytest.approx([s for _, s, _ in want], abs=1e-4)
    index.client.close()
    ref.client.close()


def test_a_key_that_stops_being_boolean_is_not_matched_as_one(tmp_path: Path) -> None:
    from qdrant_client import models as qm

    client = EdgeClient(tmp_path)
    client.create_collection("p", {}, {"s": qm.SparseVectorParams()})
    client.upsert("p", [qm.PointStruct(id=1, vector={}, payload={"b": True})])
    client.set_payload("p", {"b": "no"}, points=[1])
    is_true = qm.Filter(must=[qm.FieldCondition(key="b", match=qm.MatchValue(value=True))])
    assert client.count("p", count_filter=is_true).count == 0
    client.set_payload("p", {"b": True}, points=[1])
    assert client.count("p", count_filter=is_true).count == 1
    client.close()
