"""One store interface, two engines: where Shiori's points live.

`StoreEngine` is every call `shiori.index.NoteIndex` (and the store's maintenance: migration,
upgrade, `shiori store check`) makes on a store, in qdrant-client's shapes (collections,
`qdrant_client.models` points, filters, prefetch + fusion queries). Two engines answer it, the
way qdrant-client puts ``QdrantLocal`` and ``QdrantRemote`` behind ``QdrantBase``:

* `shiori.edge.EdgeClient`: Qdrant Edge, Qdrant's engine in process, for a store in a folder;
* `QdrantEngine`: a `qdrant_client.QdrantClient`, for a Qdrant server or cluster (and
  qdrant-client's local mode, ``:memory:``, in tests and for upgrading an older store).

`shiori.index.open_client` chooses one from the settings, once; above this interface nothing
asks which engine it has. What differs between them is said by the engine, not asked of it:
its cluster `layout`, whether payload indexes exist there (`ensure_payload_indexes`), whether
its filters match prefixes (`matches_prefix`), and whether `optimize` has work to do.

Every method has explicit parameters: an argument an engine does not take is a TypeError, not
silently dropped.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from qdrant_client import QdrantClient
from qdrant_client import models as qm
from qdrant_client.http.models import QueryResponse  # (qm.QueryResponse is fastembed's)

from shiori.config import Settings

LAYOUT_KEYS = ("shard_number", "replication_factor", "write_consistency_factor")

PointIds = Sequence[qm.ExtendedPointId]
Selector = qm.Filter | qm.FilterSelector | qm.PointIdsList | PointIds
"""Which points an update or deletion applies to: a filter, or point ids."""

Payload = bool | Sequence[str]
"""``with_payload``: all of it, none, or these keys."""


@dataclass
class CollectionParams:
    """A collection's shape: its named dense and sparse vectors, and (on a server) the cluster
    layout it was created with (`LAYOUT_KEYS`; empty for an engine without one)."""

    vectors: dict[str, qm.VectorParams] = field(default_factory=dict)
    sparse_vectors: dict[str, qm.SparseVectorParams] = field(default_factory=dict)
    layout: dict[str, Any] = field(default_factory=dict)

    def size(self, name: str) -> int | None:
        """The size of the dense vector ``name``; None when the collection has none such."""
        params = self.vectors.get(name)
        return params.size if params is not None else None


class StoreEngine(ABC):
    """The calls Shiori makes on a store (see the module doc). Not thread-safe: `NoteIndex`
    serialises calls. Errors are the engine's own (a server's `UnexpectedResponse`, Qdrant
    Edge's `RuntimeError`, ValueError for a collection that does not exist)."""

    matches_prefix: ClassVar[bool] = False
    """Whether a `qm.MatchPrefix` condition may be used in filters (keyword payload indexes
    with prefixes). Where not, callers check a prefix on the hits themselves."""

    # --- lifecycle -------------------------------------------------------------------------
    @abstractmethod
    def close(self) -> None:
        """Release the store (files, lock, connections). Idempotent."""

    @abstractmethod
    def optimize(self) -> bool:
        """Run the engine's optimizers now, blocking, where nothing else runs them; True when
        something changed. A server optimizes in the background: False."""

    # --- collections -----------------------------------------------------------------------
    @property
    @abstractmethod
    def layout(self) -> dict[str, Any]:
        """The cluster layout new collections get (`LAYOUT_KEYS`); empty for one shard."""

    @abstractmethod
    def collection_exists(self, collection_name: str) -> bool: ...

    @abstractmethod
    def collection_params(self, collection_name: str) -> CollectionParams:
        """The collection's vectors and layout. Raises when it does not exist."""

    @abstractmethod
    def create_collection(
        self,
        collection_name: str,
        vectors_config: Mapping[str, qm.VectorParams],
        sparse_vectors_config: Mapping[str, qm.SparseVectorParams],
    ) -> bool:
        """Create an empty collection with these vectors and the engine's `layout`. Raises
        when it exists (on a server: when another process created it first)."""

    @abstractmethod
    def delete_collection(self, collection_name: str) -> bool:
        """Delete a collection and its points; False when there was none."""

    @abstractmethod
    def ensure_payload_indexes(
        self, collection_name: str, schema: Mapping[str, qm.PayloadSchemaType]
    ) -> None:
        """Create the payload indexes (field → keyword or bool) the collection lacks, where the
        engine has payload indexes (qdrant-client's local mode has none). Idempotent."""

    # --- points ----------------------------------------------------------------------------
    @abstractmethod
    def upsert(
        self, collection_name: str, points: Sequence[qm.PointStruct], wait: bool = True
    ) -> qm.UpdateResult: ...

    @abstractmethod
    def set_payload(
        self,
        collection_name: str,
        payload: Mapping[str, Any],
        points: Selector,
        wait: bool = True,
    ) -> qm.UpdateResult:
        """Set these payload keys (others kept) on the selected points."""

    @abstractmethod
    def delete(
        self, collection_name: str, points_selector: Selector, wait: bool = True
    ) -> qm.UpdateResult: ...

    @abstractmethod
    def count(
        self, collection_name: str, count_filter: qm.Filter | None = None, exact: bool = True
    ) -> qm.CountResult: ...

    @abstractmethod
    def scroll(
        self,
        collection_name: str,
        scroll_filter: qm.Filter | None = None,
        limit: int = 10,
        offset: qm.ExtendedPointId | None = None,
        with_payload: Payload = True,
        with_vectors: bool | Sequence[str] = False,
    ) -> tuple[list[qm.Record], qm.ExtendedPointId | None]:
        """A page of points in id order, and the offset of the next page (None: the last)."""

    @abstractmethod
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
        (`qm.FusionQuery`) of ``prefetch`` lists, best first."""


def _layout_of(params: Any) -> dict[str, Any]:
    return {key: getattr(params, key, None) for key in LAYOUT_KEYS}


class QdrantEngine(StoreEngine):
    """qdrant-client's `QdrantClient` as a `StoreEngine`: a Qdrant server (HTTP) or
    qdrant-client's local mode. ``layout``: what new collections are created with (a
    server's shards and replicas); ``payload_indexes``: whether the store has them (a server
    does, local mode ignores them)."""

    matches_prefix = False  # a server's keyword index matches whole values only

    def __init__(
        self,
        client: QdrantClient,
        *,
        layout: Mapping[str, Any] | None = None,
        payload_indexes: bool = False,
    ) -> None:
        self.client = client
        self._layout = dict(layout or {})
        self._payload_indexes = payload_indexes

    @classmethod
    def for_server(cls, settings: Settings, client: QdrantClient | None = None) -> QdrantEngine:
        """The engine for the server at ``settings.qdrant``, with the settings' cluster
        layout; ``client`` instead of connecting (tests). Raises what qdrant-client raises
        when the server cannot be reached (asked now, not at the first query)."""
        if client is None:
            key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
            client = QdrantClient(url=settings.qdrant, api_key=key, timeout=30)
            client.get_collections()
        return cls(client, layout=settings.cluster_layout(), payload_indexes=True)

    @classmethod
    def local(cls, location: str = ":memory:") -> QdrantEngine:
        """qdrant-client's local mode: ``:memory:``, or the folder of a store written by an
        older Shiori (raises RuntimeError when another process holds it)."""
        if location == ":memory:":
            return cls(QdrantClient(location=location))
        return cls(QdrantClient(path=location))

    def close(self) -> None:
        self.client.close()

    def optimize(self) -> bool:
        return False

    @property
    def layout(self) -> dict[str, Any]:
        return dict(self._layout)

    def collection_exists(self, collection_name: str) -> bool:
        return self.client.collection_exists(collection_name)

    def collection_params(self, collection_name: str) -> CollectionParams:
        params = self.client.get_collection(collection_name).config.params
        vectors = params.vectors
        return CollectionParams(
            vectors=dict(vectors) if isinstance(vectors, Mapping) else {"": vectors}
            if vectors is not None else {},
            sparse_vectors=dict(params.sparse_vectors or {}),
            layout=_layout_of(params),
        )  # fmt: skip

    def create_collection(
        self,
        collection_name: str,
        vectors_config: Mapping[str, qm.VectorParams],
        sparse_vectors_config: Mapping[str, qm.SparseVectorParams],
    ) -> bool:
        return self.client.create_collection(
            collection_name,
            vectors_config=dict(vectors_config),
            sparse_vectors_config=dict(sparse_vectors_config),
            **self._layout,
        )

    def delete_collection(self, collection_name: str) -> bool:
        return self.client.delete_collection(collection_name)

    def ensure_payload_indexes(
        self, collection_name: str, schema: Mapping[str, qm.PayloadSchemaType]
    ) -> None:
        if not self._payload_indexes:
            return
        have = self.client.get_collection(collection_name).payload_schema or {}
        for key, kind in schema.items():
            if key not in have:
                self.client.create_payload_index(collection_name, key, kind, wait=True)

    def upsert(
        self, collection_name: str, points: Sequence[qm.PointStruct], wait: bool = True
    ) -> qm.UpdateResult:
        return self.client.upsert(collection_name, list(points), wait=wait)

    def set_payload(
        self,
        collection_name: str,
        payload: Mapping[str, Any],
        points: Selector,
        wait: bool = True,
    ) -> qm.UpdateResult:
        return self.client.set_payload(
            collection_name, dict(payload), points=_selector(points), wait=wait
        )

    def delete(
        self, collection_name: str, points_selector: Selector, wait: bool = True
    ) -> qm.UpdateResult:
        return self.client.delete(
            collection_name, points_selector=_selector(points_selector), wait=wait
        )

    def count(
        self, collection_name: str, count_filter: qm.Filter | None = None, exact: bool = True
    ) -> qm.CountResult:
        return self.client.count(collection_name, count_filter=count_filter, exact=exact)

    def scroll(
        self,
        collection_name: str,
        scroll_filter: qm.Filter | None = None,
        limit: int = 10,
        offset: qm.ExtendedPointId | None = None,
        with_payload: Payload = True,
        with_vectors: bool | Sequence[str] = False,
    ) -> tuple[list[qm.Record], qm.ExtendedPointId | None]:
        records, next_offset = self.client.scroll(
            collection_name,
            scroll_filter=scroll_filter,
            limit=limit,
            offset=offset,
            with_payload=_with_payload(with_payload),
            with_vectors=_with_vectors(with_vectors),
        )
        return records, next_offset

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
        return self.client.query_points(
            collection_name,
            query=query,
            using=using,
            prefetch=prefetch if isinstance(prefetch, qm.Prefetch | None) else list(prefetch),
            query_filter=query_filter,
            search_params=search_params,
            limit=limit,
            with_payload=_with_payload(with_payload),
            with_vectors=_with_vectors(with_vectors),
        )


def _selector(selector: Selector) -> Any:
    if isinstance(selector, qm.Filter | qm.FilterSelector | qm.PointIdsList):
        return selector
    return list(selector)


def _with_payload(with_payload: Payload) -> bool | list[str]:
    return with_payload if isinstance(with_payload, bool) else list(with_payload)


def _with_vectors(with_vectors: bool | Sequence[str]) -> bool | list[str]:
    return with_vectors if isinstance(with_vectors, bool) else list(with_vectors)


def as_engine(client: StoreEngine | QdrantClient) -> StoreEngine:
    """``client`` itself, or a bare `QdrantClient` as a `QdrantEngine` without layout or
    payload indexes (qdrant-client's local mode, as tests and the upgrade open it)."""
    return client if isinstance(client, StoreEngine) else QdrantEngine(client)
