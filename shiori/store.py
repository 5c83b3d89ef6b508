"""Moving a Shiori store from one Qdrant deployment to another (`shiori store migrate`).

The typical move: the embedded store a laptop filled with `shiori ingest` goes to a Qdrant server
or cluster, so that the service's replicas share it (or back: a server's collections into a
directory). The copying is `shiori.transfer.copy_collection` (scroll the source, upsert into the
destination), then the counts are compared; what else this adds:

* both of its collections move together (the chunks and the ``<collection>__files`` records, or
  the next ingest would embed every file again);
* the destination gets the cluster layout from the settings (``SHIORI_SHARD_NUMBER``,
  ``SHIORI_REPLICATION_FACTOR``, ``SHIORI_WRITE_CONSISTENCY_FACTOR``), not the source's: an
  embedded store has one shard and no replicas, which ``migrate`` would otherwise copy;
* the payload indexes the filters need, created at the destination;
* a clear refusal when the destination already has the collections, and progress.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from shiori.config import Settings
from shiori.engine import StoreEngine
from shiori.index import FILES_SUFFIX, PAYLOAD_INDEXES
from shiori.transfer import copy_collection

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


def point_counts(client: StoreEngine, names: Iterable[str]) -> dict[str, int]:
    return {name: client.count(name, exact=True).count for name in names}


def migrate_store(
    source: StoreEngine,
    dest: StoreEngine,
    settings: Settings,
    dest_settings: Settings,
    *,
    batch_size: int = 256,
    recreate: bool = False,
    progress: Progress | None = None,
) -> MigrationReport:
    """Copy Shiori's collections (named by ``settings``) from ``source`` to ``dest``.

    ``dest`` creates the collections with its cluster layout (a server's, from its settings)
    and gives the chunk collection its payload indexes (where it has them); ``dest_settings``
    names it in messages. Refuses (before
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
    for name in existing:
        dest.delete_collection(name)
    for name in names:
        copy_collection(
            source, dest, name, batch_size=batch_size,
            progress=progress or (lambda _name, _n: None),
        )  # fmt: skip
    dest.ensure_payload_indexes(settings.collection, PAYLOAD_INDEXES)
    copied = point_counts(dest, names)
    if copied != expected:
        raise MigrationError(f"the copy is incomplete: source {expected}, destination {copied}")
    return MigrationReport(points=copied, layout=dest.layout)
