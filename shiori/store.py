"""Moving a Shiori store from one Qdrant deployment to another (`shiori store migrate`).

The typical move: the embedded store a laptop filled with `shiori ingest` goes to a Qdrant server
or cluster, so that the service's replicas share it. The copying is qdrant-client's own
``migrate`` (scroll the source, upload to the destination, compare counts); what Shiori adds:

* both of its collections move together (the chunks and the ``<collection>__files`` records, or
  the next ingest would embed every file again);
* the destination gets the cluster layout from the settings (``SHIORI_SHARD_NUMBER``,
  ``SHIORI_REPLICATION_FACTOR``, ``SHIORI_WRITE_CONSISTENCY_FACTOR``), not the source's: an
  embedded store has one shard and no replicas, which ``migrate`` would otherwise copy;
* the payload indexes a server needs (an embedded store has none to copy);
* a clear refusal when the destination already has the collections, and progress.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from qdrant_client import QdrantClient

from shiori.config import CLUSTER_LAYOUT_KEYS, Settings
from shiori.index import FILES_SUFFIX, create_payload_indexes

Progress = Callable[[str, int], None]  # (collection, points just uploaded)


class MigrationError(RuntimeError):
    """The migration cannot start or did not copy everything; the message says what to do."""


@dataclass(frozen=True)
class MigrationReport:
    points: dict[str, int]  # per collection, as counted in the destination
    layout: dict[str, Any]  # the cluster layout the destination collections were created with


def collection_names(settings: Settings) -> list[str]:
    """Shiori's two collections: the chunks and the file records."""
    return [settings.collection, settings.collection + FILES_SUFFIX]


class _Destination:
    """The destination as ``migrate`` sees it: collections are created with ``layout`` instead
    of the source's, and every upload is reported. Everything else goes to the real client."""

    def __init__(self, client: QdrantClient, layout: dict[str, Any], progress: Progress) -> None:
        self._client = client
        self._layout = layout
        self._progress = progress

    def create_collection(self, collection_name: str, **kwargs: Any) -> bool:
        for key in CLUSTER_LAYOUT_KEYS:  # the source's, replaced by the settings'
            kwargs.pop(key, None)
        return self._client.create_collection(collection_name, **kwargs, **self._layout)

    def upload_points(self, collection_name: str, points: Iterable[Any], **kwargs: Any) -> None:
        batch = list(points)
        self._client.upload_points(collection_name, batch, **kwargs)
        self._progress(collection_name, len(batch))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def point_counts(client: QdrantClient, names: Iterable[str]) -> dict[str, int]:
    return {name: client.count(name, exact=True).count for name in names}


def migrate_store(
    source: QdrantClient,
    dest: QdrantClient,
    settings: Settings,
    dest_settings: Settings,
    *,
    batch_size: int = 256,
    recreate: bool = False,
    progress: Progress | None = None,
) -> MigrationReport:
    """Copy Shiori's collections (named by ``settings``) from ``source`` to ``dest``.

    ``dest_settings`` describes the destination: when it is a server, collections are created
    with its cluster layout and the chunk collection gets its payload indexes. Refuses (before
    writing anything) when the source lacks a collection or the destination has one, unless
    ``recreate``: then the destination's are deleted first."""
    if batch_size < 1:
        raise MigrationError(f"batch size must be at least 1, not {batch_size}")
    names = collection_names(settings)
    missing = [name for name in names if not source.collection_exists(name)]
    if missing:
        raise MigrationError(
            f"the source {settings.qdrant} has no collection {', '.join(missing)}: "
            "check SHIORI_QDRANT and SHIORI_COLLECTION, or run `shiori ingest` first"
        )
    existing = [name for name in names if dest.collection_exists(name)]
    if existing and not recreate:
        held = point_counts(dest, existing)
        raise MigrationError(
            f"the destination {dest_settings.qdrant} already has "
            + ", ".join(f"'{name}' ({n} points)" for name, n in held.items())
            + ": pass --recreate to delete and replace them, or set SHIORI_COLLECTION to "
            "another name"
        )
    expected = point_counts(source, names)
    layout = dest_settings.cluster_layout() if dest_settings.is_remote else {}
    target = _Destination(dest, layout, progress or (lambda _name, _n: None))
    try:
        source.migrate(
            cast(Any, target),
            collection_names=names,
            batch_size=batch_size,
            recreate_on_collision=recreate,
        )
    except AssertionError as exc:  # migrate checks the counts with an assert
        raise MigrationError(f"the copy is incomplete: {exc}") from exc
    if dest_settings.is_remote:
        create_payload_indexes(dest, settings.collection)
    copied = point_counts(dest, names)
    if copied != expected:
        raise MigrationError(f"the copy is incomplete: source {expected}, destination {copied}")
    return MigrationReport(points=copied, layout=layout)
