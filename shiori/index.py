"""The contract between the writer (ingest) and the readers (service, eval): one Qdrant collection.

Everything that knows Qdrant's shape lives here: vector names, payload keys, how a collection is
created (embedded or server, cluster parameters), and how a document version is published. Nothing
else in Shiori branches on "embedded or server".

Where the points live: a `shiori.engine.StoreEngine`, chosen once by `open_client`: a Qdrant
server (`QdrantEngine`: `QdrantClient` over HTTP, for servers and clusters; or qdrant-client's
local mode for ':memory:', in tests), or a store in a directory (`shiori.edge.EdgeClient`:
Qdrant Edge, the same engine in process). Both answer the same calls, so the same query runs
everywhere; nothing mirrors the points in Python, and nothing here asks which engine it has.

Publishing protocol (crash safety): a document's chunks are written with ``live=false`` and a
``generation`` (a digest of the file's bytes and of the chunking/embedding settings); queries only
see ``live=true``. When every chunk of a generation is stored, it is switched live and the other
generations of that file are deleted; then the file's record is written. An ingest killed at any
point leaves only invisible points behind, which the next run overwrites (point ids are derived
from path, generation and chunk number, so re-writing is idempotent) or deletes.
"""

from __future__ import annotations

import logging
import threading
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import wraps
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from qdrant_client import QdrantClient
from qdrant_client import models as qm

from shiori.chunk import Chunk
from shiori.config import Settings
from shiori.edge import EdgeClient, EdgeLockedError
from shiori.engine import QdrantEngine, StoreEngine, as_engine
from shiori.query import ChunkFilter, Hit
from shiori.sparse import SparseVector
from shiori.transfer import is_legacy_store, upgrade_legacy_store

__all__ = [
    "Chunk",
    "ChunkFilter",
    "FileRecord",
    "NoteIndex",
    "StoreEngine",
    "Vectors",
    "file_record_id",
    "open_client",
]

DENSE = "dense"
SPARSE = "sparse"
FILES_SUFFIX = "__files"
_NAMESPACE = uuid.UUID("6f1c2a4e-5b1d-4c8e-9a57-8e3f1d2c0b7a")

_log = logging.getLogger(__name__)

LIVE = qm.FieldCondition(key="live", match=qm.MatchValue(value=True))


class StoreLockedError(RuntimeError):
    """The embedded store is held by another process (only one may open it)."""


class StoreUnavailableError(RuntimeError):
    """Qdrant could not be reached or opened."""


@dataclass(frozen=True)
class FileRecord:
    """What the index knows of one source file, to make re-ingestion incremental."""

    path: str
    source: str
    file_hash: str
    generation: str
    size: int
    mtime_ns: int
    chunks: int
    title: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)


@dataclass
class Vectors:
    dense: list[float]
    sparse: SparseVector


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _locked(
    method: Callable[Concatenate[NoteIndex, _P], _R],
) -> Callable[Concatenate[NoteIndex, _P], _R]:
    @wraps(method)
    def run(self: NoteIndex, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self.lock:
            return method(self, *args, **kwargs)

    return run


def point_id(path: str, generation: str, chunk_index: int) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{path}\x00{generation}\x00{chunk_index}"))


def file_record_id(path: str) -> str:
    """The id of the point that holds a file's `FileRecord` (in the files collection)."""
    return str(uuid.uuid5(_NAMESPACE, f"file\x00{path}"))


def _path_is(path: str) -> qm.FieldCondition:
    return qm.FieldCondition(key="path", match=qm.MatchValue(value=path))


def open_client(settings: Settings) -> StoreEngine:
    """The engine for ':memory:' (qdrant-client's local mode), a store directory (Qdrant Edge),
    or a server URL (with the settings' cluster layout): the one place the engine is chosen.

    A directory written by an earlier Shiori (qdrant-client's local mode) is upgraded to
    Qdrant Edge first, once, keeping the old files (`shiori.transfer`). Raises
    `StoreLockedError` when another process has the store open, `StoreUnavailableError` when a
    server cannot be reached; the messages say what to do."""
    location = settings.qdrant
    try:
        if location == ":memory:":
            return QdrantEngine.local()
        if settings.is_remote:
            return QdrantEngine.for_server(settings)
        root = Path(location).expanduser()
        if root.exists() and not root.is_dir():
            raise StoreUnavailableError(
                f"SHIORI_QDRANT={location} is a file; it must name a folder for the embedded "
                "store (created if missing) or a Qdrant server URL"
            )
        if is_legacy_store(root):
            upgrade_legacy_store(root)
        return EdgeClient(root)
    except RuntimeError as exc:  # (EdgeLockedError is one; so is the old store's lock error)
        if isinstance(exc, EdgeLockedError) or "already accessed by another instance" in str(exc):
            raise StoreLockedError(
                f"the embedded store at {location} is in use by another process "
                "(another `shiori ingest`, or a running Shiori server). Only one process may "
                "open an embedded store at a time. Wait for it or stop it and run again, or "
                "set SHIORI_QDRANT to a Qdrant server URL, which any number of processes share."
            ) from exc
        raise
    except Exception as exc:  # connection refused, TLS, auth ...
        if settings.is_remote:
            raise StoreUnavailableError(f"cannot reach Qdrant at {location}: {exc}") from exc
        raise


KEYWORD_FIELDS = ("path", "source", "generation", "content_hash", "kind", "tags")
PAYLOAD_INDEXES: dict[str, qm.PayloadSchemaType] = {
    **dict.fromkeys(KEYWORD_FIELDS, qm.PayloadSchemaType.KEYWORD),
    "live": qm.PayloadSchemaType.BOOL,
}
"""The payload indexes the chunk collection needs (the filters' fields)."""


class NoteIndex:
    """Read and write Shiori's collection. One instance per process, sharing one engine.

    ``client``: the engine `open_client` chose; a bare `QdrantClient` (qdrant-client's local
    mode) is taken as a `QdrantEngine` without layout or payload indexes."""

    def __init__(
        self, client: StoreEngine | QdrantClient, settings: Settings, dimension: int
    ) -> None:
        self.client = as_engine(client)
        self.settings = settings
        self.dimension = dimension
        self.collection = settings.collection
        self.files_collection = settings.collection + FILES_SUFFIX
        # An embedded client is not safe to use from several threads at once (the service
        # runs searches and an ingest in worker threads): every client call holds this lock.
        self.lock = threading.RLock()

    # --- schema ----------------------------------------------------------------------------
    @_locked
    def ensure_collections(self) -> None:
        """Create the collections on first use; refuse a collection of another dimension.

        Several processes may do this at once (API replicas starting together against a new
        cluster): a creation that loses the race goes on with the winner's collection."""
        created = False
        if not self.client.collection_exists(self.collection):
            created = self._create(
                self.collection,
                {DENSE: qm.VectorParams(size=self.dimension, distance=qm.Distance.COSINE)},
                {SPARSE: qm.SparseVectorParams(modifier=qm.Modifier.IDF)},
            )
        if not created:
            params = self.client.collection_params(self.collection)
            size = params.size(DENSE)
            if size != self.dimension:
                raise ValueError(
                    f"collection '{self.collection}' holds {size}-d vectors, but the embedding "
                    f"model gives {self.dimension}-d. Use another SHIORI_COLLECTION or delete it."
                )
            self._warn_on_other_layout(params.layout)
        # every time (only the missing ones are created): a store upgraded from an older
        # Shiori, or one whose creation was cut short, gets them too
        self.client.ensure_payload_indexes(self.collection, PAYLOAD_INDEXES)
        if not self.client.collection_exists(self.files_collection):
            # the file records get the same layout: with a replica each, losing a node loses
            # no record (without them the next ingest would re-embed every file)
            self._create(self.files_collection, {}, {"unused": qm.SparseVectorParams()})

    def _create(
        self,
        name: str,
        vectors: dict[str, qm.VectorParams],
        sparse: dict[str, qm.SparseVectorParams],
    ) -> bool:
        """Create a collection (with the engine's cluster layout). False when another process
        created it first."""
        try:
            self.client.create_collection(name, vectors, sparse)
        except Exception:
            if self.client.collection_exists(name):
                return False
            raise
        return True

    def _warn_on_other_layout(self, have: dict[str, Any]) -> None:
        """A collection keeps the layout it was created with (shards cannot be added later
        without resharding): say so when the settings ask for another one."""
        differs = {
            key: (have.get(key), wanted)
            for key, wanted in self.client.layout.items()
            if have.get(key) != wanted
        }
        if differs:
            _log.warning(
                "collection '%s' exists with %s; the settings ask for %s. Existing collections "
                "keep their layout: migrate to a new collection to change it (docs/deploy.md).",
                self.collection,
                ", ".join(f"{k}={have}" for k, (have, _) in differs.items()),
                ", ".join(f"{k}={want}" for k, (_, want) in differs.items()),
            )

    # --- file records ----------------------------------------------------------------------
    @_locked
    def file_records(self) -> dict[str, FileRecord]:
        records: dict[str, FileRecord] = {}
        for point in self._scroll(self.files_collection, None, payload=True):
            payload = point.payload or {}
            record = FileRecord(**payload)
            records[record.path] = record
        return records

    def _scroll(
        self, collection: str, flt: qm.Filter | None, payload: Any = True, vectors: Any = False
    ) -> Iterator[qm.Record]:
        offset: Any = None
        while True:
            points, offset = self.client.scroll(
                collection,
                scroll_filter=flt,
                limit=512,
                offset=offset,
                with_payload=payload,
                with_vectors=vectors,
            )
            yield from points
            if offset is None:
                return

    # --- writing ---------------------------------------------------------------------------
    @_locked
    def existing_vectors(self, path: str) -> dict[str, Vectors]:
        """Vectors of a file's live chunks by content hash: reused when a file changes a little."""
        found: dict[str, Vectors] = {}
        flt = qm.Filter(must=[_path_is(path), LIVE])
        for point in self._scroll(self.collection, flt, payload=["content_hash"], vectors=True):
            vec = point.vector
            if not isinstance(vec, dict) or point.payload is None:
                continue
            dense, sparse = vec.get(DENSE), vec.get(SPARSE)
            if isinstance(dense, list) and isinstance(sparse, qm.SparseVector):
                found[point.payload["content_hash"]] = Vectors(
                    [float(x) for x in dense],  # type: ignore[arg-type]
                    SparseVector(list(sparse.indices), list(sparse.values)),
                )
        return found

    @_locked
    def write_chunks(
        self, chunks: Sequence[Chunk], vectors: Sequence[Vectors], batch_size: int = 256
    ) -> int:
        """Store chunks invisibly (``live=false``); `publish` makes them visible."""
        points = [
            qm.PointStruct(
                id=point_id(c.path, c.generation, c.chunk_index),
                vector={
                    DENSE: v.dense,
                    SPARSE: qm.SparseVector(indices=v.sparse.indices, values=v.sparse.values),
                },
                payload=c.payload(live=False),
            )
            for c, v in zip(chunks, vectors, strict=True)
        ]
        for start in range(0, len(points), batch_size):
            self.client.upsert(self.collection, points[start : start + batch_size], wait=True)
        return len(points)

    @_locked
    def publish(self, records: Sequence[FileRecord]) -> int:
        """Make these files' new generations live, drop their other generations, record them.

        Three operations (each atomic, and logged before it applies in the embedded store),
        during which a query may briefly see a file's old and new chunks, but never half of
        either; a process killed between them leaves what the next ingest or `shiori store
        check --repair` completes. Returns how many points of older generations were deleted."""
        if not records:
            return 0
        paths = qm.FieldCondition(key="path", match=qm.MatchAny(any=[r.path for r in records]))
        generations = qm.FieldCondition(
            key="generation", match=qm.MatchAny(any=[r.generation for r in records])
        )
        stale = qm.Filter(must=[paths], must_not=[generations])
        self.client.set_payload(
            self.collection,
            {"live": True},
            points=qm.Filter(must=[paths, generations]),
            wait=True,
        )
        deleted = self.client.count(self.collection, count_filter=stale, exact=True).count
        if deleted:
            self.client.delete(self.collection, points_selector=stale, wait=True)
        self.record_files(records)
        return deleted

    @_locked
    def record_files(self, records: Sequence[FileRecord]) -> None:
        """Write these files' records (replacing the ones they had). `publish` does this;
        `shiori store check --repair` rebuilds records from the live chunks with it."""
        if not records:
            return
        self.client.upsert(
            self.files_collection,
            [
                qm.PointStruct(id=file_record_id(r.path), vector={}, payload=asdict(r))
                for r in records
            ],
            wait=True,
        )

    @_locked
    def discard_unpublished(self, paths: Iterable[str]) -> int:
        """Delete invisible leftovers (an earlier run killed mid-file) of these files."""
        wanted = list(paths)
        if not wanted:
            return 0
        flt = qm.Filter(
            must=[
                qm.FieldCondition(key="path", match=qm.MatchAny(any=wanted)),
                qm.FieldCondition(key="live", match=qm.MatchValue(value=False)),
            ]
        )
        n = self.client.count(self.collection, count_filter=flt, exact=True).count
        if n:
            self.client.delete(self.collection, points_selector=flt, wait=True)
        return n

    @_locked
    def remove_file(self, path: str) -> int:
        """Delete every chunk of a file and its record; returns the number of chunks deleted."""
        flt = qm.Filter(must=[_path_is(path)])
        n = self.client.count(self.collection, count_filter=flt, exact=True).count
        # chunks first: a kill in between leaves a record without chunks, which the next
        # ingest re-embeds and `store check --repair` deletes, never chunks without a record
        self.client.delete(self.collection, points_selector=flt, wait=True)
        self.client.delete(
            self.files_collection,
            points_selector=qm.PointIdsList(points=[file_record_id(path)]),
            wait=True,
        )
        return n

    @_locked
    def delete_points(self, ids: Sequence[str]) -> None:
        """Delete chunk points by id (what `store check --repair` finds broken or unpublished)."""
        if ids:
            self.client.delete(self.collection, qm.PointIdsList(points=list(ids)), wait=True)

    @_locked
    def keep_generation(self, path: str, generation: str) -> None:
        """Delete a file's points of every generation but ``generation``."""
        other = qm.Filter(
            must=[_path_is(path)],
            must_not=[qm.FieldCondition(key="generation", match=qm.MatchValue(value=generation))],
        )
        self.client.delete(self.collection, points_selector=other, wait=True)

    # --- reading ---------------------------------------------------------------------------
    @_locked
    def optimize(self) -> bool:
        """Let the embedded engine merge segments, drop deleted points and build its HNSW index
        where Qdrant's thresholds say so (a server does this in the background by itself).
        Blocking; True when something changed. Called after an ingest that wrote or deleted."""
        return self.client.optimize()

    @_locked
    def warm(self) -> None:
        """Open the store's files now (the embedded store loads its segments), not at the
        first query."""
        self.client.count(self.collection, exact=True)

    @_locked
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
    ) -> list[Hit]:
        """Dense and sparse candidates, fused (live chunks only).

        ``fusion``: "dbsf" (distribution-based score fusion), "rrf" (reciprocal rank), "dense"
        or "sparse" (one side alone), as one Qdrant query (prefetch + fusion). Returns
        (chunk, fused score, dense vector) per hit; the vector lets callers compute the raw
        cosine similarity as retrieval evidence.
        ``distinct``: a passage whose text an earlier hit already has (the same note at two
        paths) is skipped, so copies do not take the places of other passages."""
        # copies are dropped here, and on a server a path prefix is checked here: over-fetch
        want = limit * 4 if (flt and flt.path_prefix) or distinct else limit
        hits = self.qdrant_query(
            dense, sparse, want, prefetch=max(prefetch, want), fusion=fusion, flt=flt
        )
        # `qdrant_query` has the store apply every condition but one: a path prefix, which a
        # server's keyword index cannot match (`matches_prefix`), so only that is checked here
        recheck = flt if flt and flt.path_prefix and not self.client.matches_prefix else None
        kept: list[Hit] = []
        seen: set[str] = set()
        for hit in hits:
            if (recheck and not recheck.accepts(hit[0])) or (distinct and hit[0].text in seen):
                continue
            seen.add(hit[0].text)
            kept.append(hit)
        return kept[:limit]

    def qdrant_query(
        self,
        dense: Sequence[float],
        sparse: SparseVector,
        limit: int,
        *,
        prefetch: int = 40,
        fusion: str = "dbsf",
        flt: ChunkFilter | None = None,
    ) -> list[Hit]:
        """The fused query as Qdrant runs it (prefetch + fusion in one request)."""
        must: list[qm.Condition] = [LIVE]
        if flt and flt.sources:
            must.append(qm.FieldCondition(key="source", match=qm.MatchAny(any=list(flt.sources))))
        if flt and flt.title:
            must.append(
                qm.Filter(
                    should=[
                        qm.FieldCondition(key="title", match=qm.MatchValue(value=flt.title)),
                        qm.FieldCondition(key="aliases", match=qm.MatchValue(value=flt.title)),
                    ]
                )
            )
        for tag in flt.tags if flt else ():
            must.append(qm.FieldCondition(key="tags", match=qm.MatchValue(value=tag)))
        forms = flt.prefix_forms() if flt else None
        if forms is not None and self.client.matches_prefix:
            # the embedded engine matches prefixes (a server's keyword index does not): the
            # prefetches then hold only chunks under the prefix
            # `source` is stored in NFC; `path` as the file system spells it (NFD on macOS)
            # A folder, not a string: the file itself (exact value) or a name under
            # "<prefix>/" (prefix match), so `notes/ml` never takes in `notes/ml-old/x.md`.
            # One pair per spelling of the prefix (as typed, and its real path when absolute).
            nfd = unicodedata.normalize
            exacts = sorted({name for exact, _ in forms for name in (exact, nfd("NFD", exact))})
            folders = sorted({name for _, f in forms for name in (f, nfd("NFD", f))})
            must.append(
                qm.Filter(
                    should=[
                        condition
                        for key in ("source", "path")
                        for condition in (
                            *(
                                qm.FieldCondition(key=key, match=qm.MatchValue(value=name))
                                for name in exacts
                            ),
                            *(
                                qm.FieldCondition(key=key, match=qm.MatchPrefix(prefix=name))
                                for name in folders
                            ),
                        )
                    ]
                )
            )
        condition = qm.Filter(must=must)
        dense_q = list(dense)
        sparse_q = qm.SparseVector(indices=sparse.indices, values=sparse.values)
        if fusion == "dense":
            kwargs: dict[str, Any] = {"query": dense_q, "using": DENSE}
        elif fusion == "sparse":
            kwargs = {"query": sparse_q, "using": SPARSE}
        else:
            kwargs = {
                "prefetch": [
                    qm.Prefetch(query=dense_q, using=DENSE, limit=prefetch, filter=condition),
                    qm.Prefetch(query=sparse_q, using=SPARSE, limit=prefetch, filter=condition),
                ],
                "query": qm.FusionQuery(
                    fusion=qm.Fusion.RRF if fusion == "rrf" else qm.Fusion.DBSF
                ),
            }
        with self.lock:
            points = self.client.query_points(
                self.collection,
                query_filter=condition,
                limit=limit,
                with_payload=True,
                with_vectors=[DENSE],
                **kwargs,
            ).points
        hits = []
        for p in points:
            vec = p.vector.get(DENSE) if isinstance(p.vector, dict) else None
            dense_vec = [float(x) for x in vec] if isinstance(vec, list) else []  # type: ignore[arg-type]
            hits.append((Chunk.from_payload(p.payload or {}), float(p.score), dense_vec))
        return hits

    def stored_dimension(self) -> int | None:
        """The size of the dense vectors the collection was created with (None: it has none)."""
        with self.lock:
            return self.client.collection_params(self.collection).size(DENSE)

    def points(self, batch_size: int = 256) -> Iterator[qm.Record]:
        """Every point of the chunk collection, live or not, with payload and vectors, in id
        order (for `shiori.integrity`, which must see what no query would)."""
        offset: Any = None
        while True:
            with self.lock:  # per page: a long check does not hold up searches
                batch, offset = self.client.scroll(
                    self.collection,
                    limit=batch_size,
                    offset=offset,
                    with_payload=True,
                    with_vectors=True,
                )
            yield from batch
            if offset is None:
                return

    @_locked
    def count(self, live_only: bool = True) -> int:
        flt = qm.Filter(must=[LIVE]) if live_only else None
        return self.client.count(self.collection, count_filter=flt, exact=True).count

    @_locked
    def chunks(self, path: str | None = None, live_only: bool = True) -> list[Chunk]:
        must: list[qm.Condition] = [LIVE] if live_only else []
        if path is not None:
            must.append(_path_is(path))
        found = [
            Chunk.from_payload(p.payload or {})
            for p in self._scroll(self.collection, qm.Filter(must=must))
        ]
        return sorted(found, key=lambda c: (c.path, c.chunk_index))
