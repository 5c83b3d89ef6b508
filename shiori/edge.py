"""The embedded store: Qdrant Edge (Qdrant's Rust engine, in process) as a `StoreEngine`.

`shiori.index` speaks `shiori.engine.StoreEngine` (qdrant-client's collections, points, filters,
prefetch + fusion queries). On a server that is a `QdrantEngine`; for a store in a directory it
is an `EdgeClient`, which answers the same calls, with the same models (`qdrant_client.models`),
from one `EdgeShard` per collection. So the same query reaches the same engine code whether
Shiori runs on a laptop or against a cluster: dense + sparse (IDF modifier) prefetches fused by
DBSF or RRF, filters with payload indexes, a write-ahead log (a process killed mid-write loses
at most the last update, never the shard). Only the calls of `StoreEngine` are implemented, with
explicit parameters: anything else raises `AttributeError` or `TypeError`, as a typo would.

Layout of a store directory ``root``::

    root/edge/.lock               held (flock) while a process has the store open
    root/edge/<collection>.json   the collection's vector parameters (`collection_params`)
    root/edge/<collection>/       the EdgeShard (segments, WAL, payload indexes)

Why the booleans: qdrant-edge-py 0.9.0 turns ``MatchValue(True)`` into ``MatchValue(1)``, which
matches no boolean payload value (found while building the prototype). Every top-level boolean
payload value is therefore also stored as a keyword, ``"true"`` / ``"false"``, under a shadow
key (``__shiori_bool__<key>``, a reserved prefix), filters on a boolean are translated to that
key, and readers never see it. Booleans nested in objects or lists cannot be filtered on (Shiori
filters only its top-level ``live`` flag).

Why `optimize` reopens the shards after deletions: the engine keeps counting deleted points in
the sparse side's IDF statistics until its segments are rebuilt or reopened (measured: 90 of
100 points deleted, a term's IDF stayed that of 100 points), so a long-running service would
score with stale IDF, and differently after a restart.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from qdrant_client import models as qm
from qdrant_client.http.models import QueryResponse  # (qm.QueryResponse is fastembed's)

from shiori.engine import CollectionParams, Payload, Selector, StoreEngine

SHADOW = "__shiori_bool__"  # keyword shadow of a top-level boolean payload value (module doc)
EDGE_DIR = "edge"
MAX_SEGMENT_KB = 750_000  # of float32 vectors: ~250k chunks of 768-d per segment
HNSW_EF = 512  # candidates an HNSW search keeps (recall 0.955 / 0.995 at 1M, measured)
PREFIX_FIELDS = ("path", "source")  # matched by prefix (a path filter)


class EdgeLockedError(RuntimeError):
    """Another process has this store open (only one may)."""


class EdgeUnavailableError(RuntimeError):
    """The ``qdrant-edge-py`` package is missing."""


def _edge() -> Any:
    try:
        import qdrant_edge
    except ImportError as exc:
        raise EdgeUnavailableError(
            "Qdrant Edge is not installed: pip install 'qdrant-edge-py>=0.9,<0.10'"
        ) from exc
    return qdrant_edge


def _shadow_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(payload)
    for key, value in payload.items():
        if isinstance(value, bool):
            out[SHADOW + key] = "true" if value else "false"
    return out


def _visible_payload(payload: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (payload or {}).items() if not k.startswith(SHADOW)}


def _point_id(value: Any) -> str | int:
    return value if isinstance(value, int) else str(value)


class EdgeClient(StoreEngine):
    """`StoreEngine` over Qdrant Edge shards in ``root``: one shard per collection, no cluster
    layout, payload indexes that match prefixes (on `PREFIX_FIELDS`).

    Raises `EdgeLockedError` when another process holds the store, `EdgeUnavailableError` when
    qdrant-edge-py is not installed. ``search_threads``: each shard's search pool (None: the
    engine's default, one per CPU). Not thread-safe: `NoteIndex` serialises calls."""

    matches_prefix = True

    def __init__(self, root: Path, search_threads: int | None = None) -> None:
        self._qe = _edge()
        self.root = Path(root)
        self.dir = self.root / EDGE_DIR
        self.dir.mkdir(parents=True, exist_ok=True)
        self._search_threads = search_threads
        self._lock: IO[str] | None = open(self.dir / ".lock", "a+")  # noqa: SIM115 (held open)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            self._lock.close()
            self._lock = None
            raise EdgeLockedError(f"the store at {self.root} is open in another process") from exc
        self._shards: dict[str, Any] = {}
        # shards with deletions since they were opened (Shiori replaces points only after
        # deleting them: a file's new generation has new ids, leftovers are discarded first)
        self._stale: set[str] = set()

    # --- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        for shard in self._shards.values():
            shard.close()
        self._shards.clear()
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def flush(self) -> None:
        for shard in self._shards.values():
            shard.flush()

    def optimize(self) -> bool:
        """Merge segments and drop deleted points (Qdrant's optimizers, run now, blocking), then
        reopen the shards that points were deleted from since they were opened, so
        that IDF counts only the points there are (see the module doc). True when something
        was optimized or reopened."""
        changed = False
        for name in self._names():
            changed = bool(self._shard(name).optimize()) or changed
        for name in sorted(self._stale):
            shard = self._shards.pop(name, None)
            if shard is not None:
                shard.close()  # flushes; the next call loads it again, statistics recomputed
                changed = True
        self._stale.clear()
        return changed

    # --- collections -----------------------------------------------------------------------
    @property
    def layout(self) -> dict[str, Any]:
        return {}  # one process, one shard

    def _meta_path(self, name: str) -> Path:
        if not name or "/" in name or name.startswith(".") or "\x00" in name:
            raise ValueError(f"'{name}' is not a usable collection name")
        return self.dir / f"{name}.json"

    def _names(self) -> list[str]:
        return sorted(p.stem for p in self.dir.glob("*.json") if (self.dir / p.stem).is_dir())

    def collection_exists(self, collection_name: str) -> bool:
        return self._meta_path(collection_name).is_file() and (self.dir / collection_name).is_dir()

    def collection_params(self, collection_name: str) -> CollectionParams:
        if not self.collection_exists(collection_name):
            raise ValueError(f"collection '{collection_name}' does not exist")
        meta = json.loads(self._meta_path(collection_name).read_text(encoding="utf-8"))
        return CollectionParams(
            vectors={k: qm.VectorParams(**v) for k, v in meta["vectors"].items()},
            sparse_vectors={k: qm.SparseVectorParams(**v) for k, v in meta["sparse"].items()},
        )

    def _config(self, params: CollectionParams) -> Any:
        qe = self._qe
        distances = {
            qm.Distance.COSINE: qe.Distance.Cosine,
            qm.Distance.DOT: qe.Distance.Dot,
            qm.Distance.EUCLID: qe.Distance.Euclid,
            qm.Distance.MANHATTAN: qe.Distance.Manhattan,
        }
        sparse = {
            name: qe.EdgeSparseVectorParams(
                modifier=qe.Modifier.Idf if p.modifier == qm.Modifier.IDF else None
            )
            for name, p in params.sparse_vectors.items()
        }
        # The placement measured to hold 1M chunks in ~2.2 GB and answer a filtered hybrid
        # query in < 90 ms p95 here (docs/benchmarks.md, "Qdrant Edge at scale"): original
        # vectors and payloads on disk (mmap, read on demand: the page cache, not the heap,
        # holds them), the HNSW graph and int8 copies of the vectors in RAM, searched with
        # rescoring by the originals, segments of at most ~250k chunks of 768-d (recall fell
        # with 500k-chunk segments). Below the indexing threshold (~3k such chunks) segments
        # stay plain and are searched exactly.
        return qe.EdgeConfig(
            vectors={
                name: qe.EdgeVectorParams(
                    size=p.size, distance=distances[p.distance], memory=qe.Memory.Cold
                )
                for name, p in params.vectors.items()
            },
            sparse_vectors=sparse,
            payload_memory=qe.Memory.Cold,
            hnsw_config=qe.HnswIndexConfig(
                m=16, ef_construct=100, full_scan_threshold=10_000, memory=qe.Memory.Pinned
            ),
            quantization_config=qe.ScalarQuantizationConfig(
                qe.ScalarType.Int8, quantile=0.99, memory=qe.Memory.Pinned
            ),
            optimizers=qe.EdgeOptimizersConfig(max_segment_size=MAX_SEGMENT_KB),
            max_search_threads=self._search_threads,
        )

    def create_collection(
        self,
        collection_name: str,
        vectors_config: Mapping[str, qm.VectorParams],
        sparse_vectors_config: Mapping[str, qm.SparseVectorParams],
    ) -> bool:
        """Create an empty collection; ValueError if it exists. A collection without any vector
        (Shiori's file records) gets one unused sparse vector: a shard needs one."""
        if self.collection_exists(collection_name):
            raise ValueError(f"collection '{collection_name}' already exists")
        params = CollectionParams(
            vectors=dict(vectors_config), sparse_vectors=dict(sparse_vectors_config)
        )
        if not params.vectors and not params.sparse_vectors:
            params.sparse_vectors["unused"] = qm.SparseVectorParams()
        shard_dir = self.dir / collection_name
        if shard_dir.exists():  # left by a creation that died before its metadata was written
            shutil.rmtree(shard_dir)
        self._shards[collection_name] = self._qe.EdgeShard.create(
            str(shard_dir), self._config(params)
        )
        meta = {
            "vectors": {k: v.model_dump(mode="json", exclude_none=True)
                        for k, v in params.vectors.items()},
            "sparse": {k: v.model_dump(mode="json", exclude_none=True)
                       for k, v in params.sparse_vectors.items()},
        }  # fmt: skip
        tmp = self._meta_path(collection_name).with_suffix(".json.tmp")
        tmp.write_text(json.dumps(meta), encoding="utf-8")
        os.replace(tmp, self._meta_path(collection_name))  # the collection exists from here on
        return True

    def delete_collection(self, collection_name: str) -> bool:
        if not self.collection_exists(collection_name):
            return False
        shard = self._shards.pop(collection_name, None)
        if shard is not None:
            shard.close()
        self._meta_path(collection_name).unlink()
        shutil.rmtree(self.dir / collection_name)
        return True

    def ensure_payload_indexes(
        self, collection_name: str, schema: Mapping[str, qm.PayloadSchemaType]
    ) -> None:
        for key, kind in schema.items():
            self.create_payload_index(collection_name, key, kind)

    def create_payload_index(
        self, collection_name: str, field_name: str, field_schema: qm.PayloadSchemaType | str
    ) -> None:
        """A keyword (with prefixes on `PREFIX_FIELDS`) or bool index; idempotent."""
        qe = self._qe
        if field_schema in (qm.PayloadSchemaType.BOOL, "bool"):
            field_name = SHADOW + field_name  # booleans are filtered through their shadow
        elif field_schema not in (qm.PayloadSchemaType.KEYWORD, "keyword"):
            raise ValueError(f"unsupported payload index {field_schema!r} on {field_name}")
        shard = self._shard(collection_name)
        if field_name in shard.info().payload_schema:
            return  # idempotent, as on a server
        # not linked into the HNSW graph (no visible gain measured); filtered searches use
        # ACORN instead (see `query_points`)
        params = qe.KeywordIndexParams(enable_hnsw=False, prefix=field_name in PREFIX_FIELDS)
        shard.update(qe.UpdateOperation.create_field_index(field_name, params))

    def _shard(self, name: str) -> Any:
        shard = self._shards.get(name)
        if shard is None:
            if not self.collection_exists(name):
                raise ValueError(f"collection '{name}' does not exist")
            shard = self._qe.EdgeShard.load(str(self.dir / name), None)
            self._shards[name] = shard
        return shard

    # --- conversions -----------------------------------------------------------------------
    def _filter(self, flt: qm.Filter | None) -> Any:
        if flt is None:
            return None
        qe = self._qe

        def conditions(items: Any) -> list[Any] | None:
            if items is None:
                return None
            items = items if isinstance(items, list) else [items]
            return [self._condition(c) for c in items]

        return qe.Filter(
            must=conditions(flt.must),
            should=conditions(flt.should),
            must_not=conditions(flt.must_not),
        )

    def _condition(self, condition: Any) -> Any:
        qe = self._qe
        if isinstance(condition, qm.Filter):
            return self._filter(condition)
        if isinstance(condition, qm.HasIdCondition):
            return qe.HasIdCondition({_point_id(i) for i in condition.has_id})
        if isinstance(condition, qm.FieldCondition):
            match = condition.match
            if isinstance(match, qm.MatchValue):
                if isinstance(match.value, bool):
                    shadow = "true" if match.value else "false"
                    return qe.FieldCondition(SHADOW + condition.key, match=qe.MatchValue(shadow))
                return qe.FieldCondition(condition.key, match=qe.MatchValue(match.value))
            if isinstance(match, qm.MatchAny):
                return qe.FieldCondition(condition.key, match=qe.MatchAny(list(match.any)))
            if isinstance(match, qm.MatchExcept):
                return qe.FieldCondition(condition.key, match=qe.MatchExcept(list(match.except_)))
            if isinstance(match, qm.MatchPrefix):
                return qe.FieldCondition(condition.key, match=qe.MatchPrefix(match.prefix))
        raise NotImplementedError(f"condition not supported by the embedded store: {condition!r}")

    def _vector_in(self, vector: Any) -> Any:
        qe = self._qe
        if isinstance(vector, qm.SparseVector):
            return qe.SparseVector(list(vector.indices), list(vector.values))
        return [float(x) for x in vector]

    def _vectors_in(self, vector: Any) -> dict[str, Any]:
        if isinstance(vector, Mapping):
            return {name: self._vector_in(v) for name, v in vector.items()}
        if vector is None:
            return {}
        return {"": self._vector_in(vector)}

    def _vectors_out(self, vector: Any) -> Any:
        if not isinstance(vector, Mapping):
            return vector
        out: dict[str, Any] = {}
        for name, value in vector.items():
            if hasattr(value, "indices"):
                out[name] = qm.SparseVector(indices=list(value.indices), values=list(value.values))
            else:
                out[name] = [float(x) for x in value]
        return out

    def _fields(self, point: Any, with_payload: Any, with_vectors: Any) -> dict[str, Any]:
        """What a `qm.Record` and a `qm.ScoredPoint` share, from an engine record or point."""
        return {
            "id": _point_id(point.id),
            "payload": _visible_payload(point.payload) if with_payload else None,
            "vector": self._vectors_out(point.vector) if with_vectors else None,
            "shard_key": None,
            "order_value": None,
        }

    @staticmethod
    def _with_vector(with_vectors: Any) -> Any:
        return list(with_vectors) if isinstance(with_vectors, list) else with_vectors

    @staticmethod
    def _with_payload(with_payload: Any) -> Any:
        if isinstance(with_payload, bool):
            return with_payload
        if isinstance(with_payload, Sequence) and not isinstance(with_payload, str):
            return list(with_payload)
        raise NotImplementedError(f"with_payload={with_payload!r}")

    # --- points ----------------------------------------------------------------------------
    def upsert(
        self, collection_name: str, points: Iterable[qm.PointStruct], wait: bool = True
    ) -> qm.UpdateResult:
        # (``wait``: every update is applied, and logged, before the call returns)
        qe = self._qe
        batch = [
            qe.Point(
                _point_id(p.id),
                self._vectors_in(p.vector),
                _shadow_payload(p.payload or {}),
            )
            for p in points
        ]
        if batch:
            self._shard(collection_name).update(qe.UpdateOperation.upsert_points(batch))
        return qm.UpdateResult(operation_id=None, status=qm.UpdateStatus.COMPLETED)

    def set_payload(
        self,
        collection_name: str,
        payload: Mapping[str, Any],
        points: Selector,
        wait: bool = True,
    ) -> qm.UpdateResult:
        qe = self._qe
        values = _shadow_payload(payload)
        # a key that held a boolean and now holds something else loses its shadow
        stale = [SHADOW + k for k, v in payload.items() if not isinstance(v, bool)]
        selector: Any = points
        if isinstance(selector, qm.FilterSelector):
            selector = selector.filter
        if isinstance(selector, qm.PointIdsList):
            selector = selector.points
        shard = self._shard(collection_name)
        if isinstance(selector, qm.Filter):
            flt = self._filter(selector)
            shard.update(qe.UpdateOperation.set_payload_by_filter(flt, values))
            if stale:
                shard.update(qe.UpdateOperation.delete_payload_by_filter(flt, stale))
        else:
            ids = [_point_id(i) for i in selector]
            shard.update(qe.UpdateOperation.set_payload(ids, values))
            if stale:
                shard.update(qe.UpdateOperation.delete_payload(ids, stale))
        return qm.UpdateResult(operation_id=None, status=qm.UpdateStatus.COMPLETED)

    def delete(
        self, collection_name: str, points_selector: Selector, wait: bool = True
    ) -> qm.UpdateResult:
        qe = self._qe
        selector: Any = points_selector
        if isinstance(selector, qm.FilterSelector):
            selector = selector.filter
        if isinstance(selector, qm.PointIdsList):
            selector = selector.points
        if isinstance(selector, qm.Filter):
            op = qe.UpdateOperation.delete_points_by_filter(self._filter(selector))
        else:
            op = qe.UpdateOperation.delete_points([_point_id(i) for i in selector])
        self._shard(collection_name).update(op)
        self._stale.add(collection_name)
        return qm.UpdateResult(operation_id=None, status=qm.UpdateStatus.COMPLETED)

    def count(
        self, collection_name: str, count_filter: qm.Filter | None = None, exact: bool = True
    ) -> qm.CountResult:
        # (always exact: a shard counts what it holds)
        request = self._qe.CountRequest(exact=True, filter=self._filter(count_filter))
        return qm.CountResult(count=int(self._shard(collection_name).count(request)))

    def scroll(
        self,
        collection_name: str,
        scroll_filter: qm.Filter | None = None,
        limit: int = 10,
        offset: qm.ExtendedPointId | None = None,
        with_payload: Payload = True,
        with_vectors: bool | Sequence[str] = False,
    ) -> tuple[list[qm.Record], qm.ExtendedPointId | None]:
        request = self._qe.ScrollRequest(
            offset=uuid.UUID(offset) if isinstance(offset, str) else offset,
            limit=limit,
            filter=self._filter(scroll_filter),
            with_payload=self._with_payload(with_payload),
            with_vector=self._with_vector(with_vectors),
        )
        records, next_offset = self._shard(collection_name).scroll(request)
        return [
            qm.Record.model_construct(**self._fields(r, with_payload, with_vectors))
            for r in records
        ], (None if next_offset is None else _point_id(next_offset))

    def _query(self, query: Any, using: str | None) -> Any:
        qe = self._qe
        if isinstance(query, qm.FusionQuery):
            if query.fusion == qm.Fusion.DBSF:
                return qe.Fusion.Dbsf()
            return qe.Fusion.Rrf(k=2)  # Qdrant's default k for the RRF query
        if isinstance(query, qm.NearestQuery):
            query = query.nearest
        return qe.Query.Nearest(self._vector_in(query), using=using or "")

    def query_points(
        self,
        collection_name: str,
        query: Any = None,
        using: str | None = None,
        prefetch: Sequence[qm.Prefetch] | qm.Prefetch | None = None,
        query_filter: qm.Filter | None = None,
        search_params: qm.SearchParams | None = None,
        limit: int = 10,
        with_payload: Payload = True,
        with_vectors: bool | Sequence[str] = False,
    ) -> QueryResponse:
        """One query: nearest to a dense or sparse vector (``using`` names it), or a fusion
        (`FusionQuery`) of ``prefetch`` lists. As on a server: segments that `optimize` indexed
        (HNSW, above Qdrant's indexing threshold) are searched approximately unless
        ``search_params.exact``; the others, and filters the payload indexes find selective, by
        brute force."""
        qe = self._qe
        # int8 candidates rescored by the original vectors (2x oversampling); ACORN keeps a
        # filtered HNSW search's recall (0.67-0.85 without it, 0.98-1.00 with it, measured with
        # a quarter of the chunks passing the filter)
        params = qe.SearchParams(
            hnsw_ef=HNSW_EF,
            exact=bool(search_params and search_params.exact),
            quantization=qe.QuantizationSearchParams(rescore=True, oversampling=2.0),
            acorn=qe.AcornSearchParams(enable=True),
        )
        prefetches = [prefetch] if isinstance(prefetch, qm.Prefetch) else list(prefetch or [])
        request = qe.QueryRequest(
            limit=limit,
            query=self._query(query, using) if query is not None else None,
            prefetches=[
                qe.Prefetch(
                    p.limit if p.limit is not None else 10,
                    query=self._query(p.query, p.using),
                    filter=self._filter(p.filter),
                    params=params,
                )
                for p in prefetches
            ]
            or None,
            filter=self._filter(query_filter),
            params=params,
            with_payload=self._with_payload(with_payload),
            with_vector=self._with_vector(with_vectors),
        )
        points = self._shard(collection_name).query(request)
        return QueryResponse(
            points=[
                qm.ScoredPoint.model_construct(
                    version=0, score=float(p.score), **self._fields(p, with_payload, with_vectors)
                )
                for p in points
            ]
        )
