"""Hybrid search over an embedded store's live chunks, in process, with numpy and scipy.

Why: qdrant-client's embedded mode evaluates filters and sparse scores point by point in
Python. Measured here at 10,000 chunks, one filtered dense query took 133 ms (p50) and the
fused dense + sparse query several times that, far above a 50 ms budget. This mirror holds the
same vectors as matrices (dense: one matmul; sparse: a column slice of a CSC matrix) and fuses
the two lists exactly as Qdrant does (DBSF: mean ± 3 std normalisation of each prefetch list;
RRF: 1 / (rank + 2)), so results match Qdrant's own query (tests/unit/test_memory_search.py).

It mirrors only what `NoteIndex` publishes, so it is valid in the one process that owns the
embedded store (a lock file guarantees there is only one). On a Qdrant server the server's own
query is used instead.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse as sp

from shiori.chunk import Chunk
from shiori.sparse import SparseVector


@dataclass(frozen=True)
class ChunkFilter:
    """Optional restrictions on which chunks a query may return (all must hold).

    Names are compared in Unicode NFC on both sides: a name typed by a person finds a note
    whose file name macOS wrote decomposed (NFD)."""

    sources: tuple[str, ...] = ()  # exact `source` values (paths as shown)
    path_prefix: str | None = None  # `source` or absolute `path` starts with this
    title: str | None = None  # the note's title or one of its aliases
    tags: tuple[str, ...] = ()  # the note has every one of these tags

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", tuple(_nfc(s) for s in self.sources))
        if self.path_prefix:
            object.__setattr__(self, "path_prefix", _nfc(self.path_prefix))
        if self.title:
            object.__setattr__(self, "title", _nfc(self.title))
        object.__setattr__(self, "tags", tuple(_nfc(t).lstrip("#") for t in self.tags))

    @property
    def empty(self) -> bool:
        return not (self.sources or self.path_prefix or self.title or self.tags)

    def accepts(self, chunk: Chunk) -> bool:
        if self.sources and _nfc(chunk.source) not in self.sources:
            return False
        if self.title and self.title != chunk.title and self.title not in chunk.aliases:
            return False
        if self.tags and not set(self.tags) <= set(chunk.tags):
            return False
        prefix = self.path_prefix
        return (
            not prefix
            or _nfc(chunk.source).startswith(prefix)
            or _nfc(chunk.path).startswith(prefix)
        )


def _nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)


@dataclass(frozen=True)
class Row:
    """One live point: its id, chunk, and both vectors."""

    point_id: str
    chunk: Chunk
    dense: Sequence[float]
    sparse: SparseVector


Hit = tuple[Chunk, float, list[float]]


def bm25_idf(df: np.ndarray, n: int) -> np.ndarray:
    """Qdrant's IDF modifier, so that sparse scores equal the server's."""
    return np.log((n - df + 0.5) / (df + 0.5) + 1.0)


def dbsf_normalise(scores: np.ndarray) -> np.ndarray:
    """Distribution-based score fusion's per-list normalisation, as Qdrant defines it."""
    if len(scores) == 1:
        return np.full(1, 0.5)
    std = float(np.std(scores, ddof=1))
    if std == 0:
        return np.full(len(scores), 0.5)
    low = float(np.mean(scores)) - 3 * std
    return (scores - low) / (6 * std)


class MemorySearch:
    """The live chunks as matrices. Rebuilt lazily after a change; queries are read-only."""

    def __init__(self) -> None:
        self._rows: dict[str, Row] = {}
        self._built = False
        self._chunks: list[Chunk] = []
        self._dense = np.zeros((0, 0), dtype=np.float32)
        self._sparse = sp.csc_matrix((0, 0), dtype=np.float32)
        self._columns: dict[int, int] = {}
        self._df = np.zeros(0)
        self._sources = np.zeros(0, dtype=object)
        self._paths = np.zeros(0, dtype=object)
        self._titles = np.zeros(0, dtype=object)

    def __len__(self) -> int:
        return len(self._rows)

    def replace(self, paths: Iterable[str], rows: Iterable[Row]) -> None:
        """Forget every row of these files, then add these rows (a file's new generation)."""
        gone = set(paths)
        if gone:
            self._rows = {k: r for k, r in self._rows.items() if r.chunk.path not in gone}
        for row in rows:
            self._rows[row.point_id] = row
        self._built = False

    def _build(self) -> None:
        rows = list(self._rows.values())
        self._chunks = [r.chunk for r in rows]
        if rows:
            dense = np.asarray([r.dense for r in rows], dtype=np.float32)
            norms = np.linalg.norm(dense, axis=1, keepdims=True)
            self._dense = (dense / np.where(norms == 0, 1, norms)).astype(np.float32)
        else:
            self._dense = np.zeros((0, 0), dtype=np.float32)
        self._columns = {}
        row_ix: list[int] = []
        col_ix: list[int] = []
        data: list[float] = []
        for i, r in enumerate(rows):
            for term, value in zip(r.sparse.indices, r.sparse.values, strict=True):
                col_ix.append(self._columns.setdefault(term, len(self._columns)))
                row_ix.append(i)
                data.append(value)
        self._sparse = sp.csc_matrix(
            (np.asarray(data, dtype=np.float64), (row_ix, col_ix)),
            shape=(len(rows), len(self._columns)),
        )
        self._df = np.diff(self._sparse.indptr).astype(np.float64)
        self._sources = np.asarray([_nfc(c.source) for c in self._chunks], dtype=object)
        self._paths = np.asarray([_nfc(c.path) for c in self._chunks], dtype=object)
        self._titles = np.asarray([c.title for c in self._chunks], dtype=object)
        self._built = True

    def _mask(self, flt: ChunkFilter | None) -> np.ndarray | None:
        if flt is None or flt.empty:
            return None
        mask = np.ones(len(self._chunks), dtype=bool)
        if flt.sources:
            mask &= np.isin(self._sources, list(flt.sources))
        if flt.title or flt.tags:
            mask &= np.fromiter((flt.accepts(c) for c in self._chunks), bool, len(self._chunks))
        if flt.path_prefix:
            prefix = flt.path_prefix
            starts = np.frompyfunc(lambda s: s.startswith(prefix), 1, 1)
            mask &= starts(self._sources).astype(bool) | starts(self._paths).astype(bool)
        return mask

    def _sparse_scores(self, query: SparseVector) -> np.ndarray:
        pairs = [
            (self._columns[t], v)
            for t, v in zip(query.indices, query.values, strict=True)
            if t in self._columns
        ]
        n = len(self._chunks)
        if not pairs:
            return np.zeros(n)
        cols = [c for c, _ in pairs]
        weights = np.asarray([v for _, v in pairs]) * bm25_idf(self._df[cols], n)
        return np.asarray(self._sparse[:, cols] @ weights).ravel()

    def query(
        self,
        dense: Sequence[float],
        sparse: SparseVector,
        limit: int,
        *,
        prefetch: int = 40,
        fusion: str = "dbsf",
        flt: ChunkFilter | None = None,
        distinct: bool = True,
    ) -> list[Hit]:
        """Same contract as `NoteIndex.hybrid_query`: (chunk, score, dense vector) per hit.
        ``distinct``: a text already returned (a copy of a note at another path) is skipped."""
        if not self._built:
            self._build()
        if not self._chunks:
            return []
        mask = self._mask(flt)
        want = limit * 3 if distinct else limit  # room for copies that will be skipped
        if fusion == "dense":
            scores = self._dense @ _unit(dense)
            order = _top(scores, want, mask)
            return self._hits(order, scores[order], limit, distinct)
        sparse_scores = self._sparse_scores(sparse)
        has_terms = sparse_scores > 0
        sparse_mask = has_terms if mask is None else has_terms & mask
        if fusion == "sparse":
            order = _top(sparse_scores, want, sparse_mask)
            return self._hits(order, sparse_scores[order], limit, distinct)
        dense_scores = self._dense @ _unit(dense)
        dense_order = _top(dense_scores, prefetch, mask)
        sparse_order = _top(sparse_scores, prefetch, sparse_mask)
        lists = [
            (dense_order, dense_scores[dense_order]),
            (sparse_order, sparse_scores[sparse_order]),
        ]
        fused: dict[int, float] = {}
        for order, scores in lists:
            if len(order) == 0:
                continue
            if fusion == "rrf":
                parts = 1.0 / (np.arange(len(order)) + 2.0)
            elif fusion == "dbsf":
                parts = dbsf_normalise(scores.astype(np.float64))
            else:
                raise ValueError(f"unknown fusion '{fusion}'")
            for i, part in zip(order.tolist(), parts.tolist(), strict=True):
                fused[i] = fused.get(i, 0.0) + part
        best = sorted(fused.items(), key=lambda item: -item[1])
        order_all = np.asarray([i for i, _ in best], dtype=int)
        return self._hits(order_all, [s for _, s in best], limit, distinct)

    def _hits(
        self,
        order: np.ndarray,
        scores: Sequence[float] | np.ndarray,
        limit: int,
        distinct: bool,
    ) -> list[Hit]:
        hits: list[Hit] = []
        seen: set[str] = set()
        for i, s in zip(order.tolist(), list(scores), strict=True):
            chunk = self._chunks[i]
            if distinct:
                if chunk.text in seen:
                    continue
                seen.add(chunk.text)
            hits.append((chunk, float(s), self._dense[i].tolist()))
            if len(hits) == limit:
                break
        return hits


def _unit(vector: Sequence[float]) -> np.ndarray:
    q = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(q))
    return q / norm if norm else q


def _top(scores: np.ndarray, k: int, mask: np.ndarray | None) -> np.ndarray:
    """Indices of the k highest scores (allowed by the mask), best first."""
    if mask is not None:
        allowed = np.flatnonzero(mask)
        if len(allowed) == 0:
            return allowed
        sub = scores[allowed]
        if len(sub) > k:
            part = np.argpartition(-sub, k - 1)[:k]
            return allowed[part[np.argsort(-sub[part], kind="stable")]]
        return allowed[np.argsort(-sub, kind="stable")]
    if len(scores) > k:
        part = np.argpartition(-scores, k - 1)[:k]
        return part[np.argsort(-scores[part], kind="stable")]
    return np.argsort(-scores, kind="stable")
