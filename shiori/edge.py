"""Prototype: Shiori's chunks in Qdrant Edge, Qdrant's own Rust engine running in this process.

Not wired into the product (issue 15 measures it first: `bench/bench_store.py`). Today the
embedded store is qdrant-client's local mode plus the in-process mirror of
`shiori.memory_search`; this adapter stores the same points (named dense vector ``dense``,
cosine; sparse vector ``sparse`` with Qdrant's IDF modifier; the same payload, ``live`` flag
included) in an `EdgeShard` (WAL, segments, payload indexes, optional HNSW) and answers the
same fused query as a Qdrant server: dense and sparse prefetches fused by DBSF (the product's
fusion; tests/unit/test_edge.py checks ranks and scores against today's search) or RRF (not
checked: Qdrant Edge's RRF ranks ties and its k differently from today's mirror).

Needs the optional package ``qdrant-edge-py`` (`pip install qdrant-edge-py`, module
``qdrant_edge``); `EdgeUnavailableError` says so when it is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shiori.chunk import Chunk
from shiori.index import DENSE, SPARSE, Vectors, point_id
from shiori.memory_search import ChunkFilter, Hit
from shiori.sparse import SparseVector

KEYWORD_FIELDS = ("source", "path", "title", "aliases", "tags", "generation", "state")
# qdrant-edge-py 0.9.0 turns MatchValue(True) into MatchValue(1), which matches no boolean
# payload value (found while building this prototype): visibility is also kept as a keyword,
# `state` = "live" | "staged", and filtered on that; `live` stays for the payload's readers.
LIVE_STATE, STAGED_STATE = "live", "staged"


class EdgeUnavailableError(RuntimeError):
    """The ``qdrant-edge-py`` package is not installed."""


def _edge() -> Any:
    try:
        import qdrant_edge
    except ImportError as exc:  # optional: only this prototype needs it
        raise EdgeUnavailableError(
            "Qdrant Edge is not installed: pip install 'qdrant-edge-py>=0.9,<0.10'"
        ) from exc
    return qdrant_edge


class EdgeIndex:
    """Shiori's collection in one Qdrant Edge shard at ``path`` (created on first use).

    ``dimension``: the dense vectors' size; opening a shard of another size raises ValueError.
    ``search_threads``: the shard's search pool (None: one per CPU).
    """

    def __init__(self, path: Path, dimension: int, search_threads: int | None = None) -> None:
        qe = _edge()
        self._qe = qe
        self.dimension = dimension
        config = qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=dimension, distance=qe.Distance.Cosine)},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            max_search_threads=search_threads,
        )
        if path.is_dir() and any(path.iterdir()):
            try:
                self.shard = qe.EdgeShard.load(str(path), config)
            except Exception as exc:  # the engine reports an incompatible layout as a string
                raise ValueError(f"cannot open the Qdrant Edge shard at {path}: {exc}") from exc
        else:
            path.mkdir(parents=True, exist_ok=True)
            self.shard = qe.EdgeShard.create(str(path), config)
            for name in KEYWORD_FIELDS:
                self.shard.update(
                    qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Keyword)
                )

    def close(self) -> None:
        self.shard.close()

    def flush(self) -> None:
        self.shard.flush()

    def count(self) -> int:
        return int(self.shard.info().points_count)

    def optimize(self) -> bool:
        """Merge segments and build the HNSW index where Qdrant's thresholds say so."""
        return bool(self.shard.optimize())

    def write_chunks(
        self,
        chunks: Sequence[Chunk],
        vectors: Sequence[Vectors],
        live: bool = False,
        batch_size: int = 1024,
    ) -> int:
        """Upsert chunks (invisible unless ``live``), ids as `shiori.index.point_id`."""
        qe = self._qe
        points = [
            qe.Point(
                point_id(c.path, c.generation, c.chunk_index),
                {
                    DENSE: list(v.dense),
                    SPARSE: qe.SparseVector(list(v.sparse.indices), list(v.sparse.values)),
                },
                {**c.payload(live=live), "state": LIVE_STATE if live else STAGED_STATE},
            )
            for c, v in zip(chunks, vectors, strict=True)
        ]
        for start in range(0, len(points), batch_size):
            self.shard.update(qe.UpdateOperation.upsert_points(points[start : start + batch_size]))
        return len(points)

    def publish(self, path: str, generation: str) -> None:
        """Switch one file's generation live and delete its other generations."""
        qe = self._qe
        of_path = qe.FieldCondition("path", match=qe.MatchValue(path))
        this = qe.FieldCondition("generation", match=qe.MatchValue(generation))
        self.shard.update(
            qe.UpdateOperation.set_payload_by_filter(
                qe.Filter(must=[of_path, this]), {"live": True, "state": LIVE_STATE}
            )
        )
        self.shard.update(
            qe.UpdateOperation.delete_points_by_filter(qe.Filter(must=[of_path], must_not=[this]))
        )

    def _filter(self, flt: ChunkFilter | None) -> Any:
        qe = self._qe
        must: list[Any] = [qe.FieldCondition("state", match=qe.MatchValue(LIVE_STATE))]
        if flt and flt.sources:
            must.append(qe.FieldCondition("source", match=qe.MatchAny(list(flt.sources))))
        if flt and flt.title:
            must.append(
                qe.Filter(
                    should=[
                        qe.FieldCondition("title", match=qe.MatchValue(flt.title)),
                        qe.FieldCondition("aliases", match=qe.MatchValue(flt.title)),
                    ]
                )
            )
        if flt and flt.path_prefix:
            prefix = qe.MatchPrefix(flt.path_prefix)
            must.append(
                qe.Filter(
                    should=[
                        qe.FieldCondition("source", match=prefix),
                        qe.FieldCondition("path", match=prefix),
                    ]
                )
            )
        for tag in flt.tags if flt else ():
            must.append(qe.FieldCondition("tags", match=qe.MatchValue(tag)))
        return qe.Filter(must=must)

    def hybrid_query(
        self,
        dense: Sequence[float],
        sparse: SparseVector,
        limit: int,
        *,
        prefetch: int = 40,
        fusion: str = "dbsf",
        flt: ChunkFilter | None = None,
        distinct: bool = True,
        exact: bool = True,
    ) -> list[Hit]:
        """`NoteIndex.hybrid_query`'s contract: (chunk, fused score, dense vector) per hit.

        ``exact``: brute force (as today's embedded store); False lets an HNSW index built by
        `optimize` answer the dense side. Every filter, the path prefix included (Qdrant's
        MatchPrefix on ``source`` or ``path``), applies before each side's prefetch, as in
        today's embedded search; hits are checked against ``flt`` once more (names in NFC)."""
        qe = self._qe
        condition = self._filter(flt)
        params = qe.SearchParams(exact=exact)
        want = limit * 3 if distinct else limit  # room for copies that will be skipped
        dense_q = qe.Query.Nearest(list(dense), using=DENSE)
        sparse_q = qe.Query.Nearest(
            qe.SparseVector(list(sparse.indices), list(sparse.values)), using=SPARSE
        )
        if fusion in ("dense", "sparse"):
            request = qe.QueryRequest(
                limit=want,
                query=dense_q if fusion == "dense" else sparse_q,
                filter=condition,
                params=params,
                with_payload=True,
                with_vector=[DENSE],
            )
        elif fusion in ("dbsf", "rrf"):
            # each side's list is ``prefetch`` long, as in today's embedded search: DBSF
            # normalises over those lists, so a longer list would change the fused scores
            side = prefetch
            request = qe.QueryRequest(
                limit=want,
                prefetches=[
                    qe.Prefetch(side, query=dense_q, filter=condition, params=params),
                    qe.Prefetch(side, query=sparse_q, filter=condition, params=params),
                ],
                query=qe.Fusion.Dbsf() if fusion == "dbsf" else qe.Fusion.Rrf(k=2),
                with_payload=True,
                with_vector=[DENSE],
            )
        else:
            raise ValueError(f"unknown fusion '{fusion}'")
        kept: list[Hit] = []
        seen: set[str] = set()
        for point in self.shard.query(request):
            chunk = Chunk.from_payload(point.payload or {})
            if (flt is not None and not flt.accepts(chunk)) or (distinct and chunk.text in seen):
                continue
            seen.add(chunk.text)
            vector = point.vector.get(DENSE) if isinstance(point.vector, dict) else None
            kept.append((chunk, float(point.score), [float(x) for x in vector or []]))
            if len(kept) == limit:
                break
        return kept
