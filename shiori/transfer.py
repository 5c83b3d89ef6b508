"""Copying collections between stores, and upgrading a store of an earlier Shiori.

`copy_collection` works between any two `shiori.engine.StoreEngine`s (a `QdrantEngine` for a
server, or qdrant-client's own local mode; an `EdgeClient` for a store in a directory): it reads
the source's vector parameters, creates the collection at the destination (with the
destination's cluster layout), and copies every point (vectors and payload) in batches.
`shiori store migrate` and the upgrade below are built on it.

The upgrade: Shiori up to 0.1 kept an embedded store in qdrant-client's local mode (a pure
Python engine: ``meta.json`` and ``collection/<name>/storage.sqlite`` in the directory). Opening
such a directory now copies it, once, into Qdrant Edge shards (``edge/``) and moves the old
files into ``legacy-local-mode/`` beside them, which the user may delete when satisfied.
Nothing is lost at any point: the copy is written to ``edge.partial/`` and renamed when it is
complete and counted; a process killed before the rename leaves the old store as it was (the
next open starts the copy again), one killed after it finds ``edge/`` complete and only
finishes moving the old files.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from qdrant_client import models as qm

from shiori.edge import EDGE_DIR, EdgeClient
from shiori.engine import QdrantEngine, StoreEngine

Progress = Callable[[str, int], None]  # (collection, points just copied)

LEGACY_FILES = ("meta.json", "collection", ".lock")
LEGACY_BACKUP = "legacy-local-mode"
PARTIAL = EDGE_DIR + ".partial"

_log = logging.getLogger(__name__)


def copy_collection(
    source: StoreEngine,
    dest: StoreEngine,
    name: str,
    *,
    batch_size: int = 256,
    progress: Progress | None = None,
) -> int:
    """Create ``name`` at ``dest`` with the source's vector parameters (and the destination's
    cluster layout: shard number, replication… on a server) and copy every point into it.
    Returns the number of points copied. The destination must not have the collection."""
    params = source.collection_params(name)
    dest.create_collection(name, params.vectors, params.sparse_vectors)
    copied = 0
    offset: Any = None
    while True:
        records, offset = source.scroll(
            name, limit=batch_size, offset=offset, with_payload=True, with_vectors=True
        )
        if records:
            dest.upsert(
                name,
                [
                    qm.PointStruct(
                        id=r.id, vector=cast(Any, r.vector) or {}, payload=r.payload or {}
                    )
                    for r in records
                ],
                wait=True,
            )
            copied += len(records)
            if progress is not None:
                progress(name, len(records))
        if offset is None:
            return copied


def is_legacy_store(root: Path) -> bool:
    """A directory qdrant-client's local mode wrote (and not yet upgraded)."""
    return (root / "meta.json").is_file() and (root / "collection").is_dir()


def _retire_legacy(root: Path) -> None:
    """Move the old store's files aside. Into ``legacy-local-mode/``, unless it already holds
    one of them: then an older Shiori wrote the folder again after the upgrade (its writes are
    not in the new store), and they go to a numbered folder of their own, nothing overwritten."""
    present = [name for name in LEGACY_FILES if (root / name).exists()]
    backup = root / LEGACY_BACKUP
    n = 1
    while any((backup / name).exists() for name in present):
        n += 1
        backup = root / f"{LEGACY_BACKUP}-{n}"
    if n > 1:
        _log.warning(
            "an older Shiori wrote to %s after it was upgraded; its files are moved to %s and "
            "are not in the store: ingest those notes again",
            root,
            backup,
        )
    backup.mkdir(exist_ok=True)
    for name in present:
        os.replace(root / name, backup / name)


def upgrade_legacy_store(root: Path, batch_size: int = 512) -> dict[str, int]:
    """Copy a local-mode store at ``root`` into Qdrant Edge shards (see the module doc).
    Returns the points copied per collection. Raises RuntimeError (the old store untouched)
    when another process holds the old store or the copy comes out short."""
    if (root / EDGE_DIR).is_dir():  # the copy finished before; only the old files remain
        _retire_legacy(root)
        return {}
    partial = root / PARTIAL
    # the old store's lock first: a process upgrading it now holds it, and its copy in progress
    # must not be removed under it (raises if another process holds the old store)
    legacy = QdrantEngine.local(str(root))
    counts: dict[str, int] = {}
    try:
        if partial.exists():
            shutil.rmtree(partial)  # an upgrade that was killed: start again
        names = [c.name for c in legacy.client.get_collections().collections]
        _log.warning(
            "upgrading the embedded store at %s to Qdrant Edge (once): collections %s",
            root,
            ", ".join(names) or "none",
        )
        staging = EdgeClient(partial)
        try:
            for name in names:
                expected = legacy.count(name, exact=True).count
                counts[name] = copy_collection(legacy, staging, name, batch_size=batch_size)
                have = staging.count(name, exact=True).count
                if not counts[name] == have == expected:
                    raise RuntimeError(
                        f"upgrade of {root}: collection '{name}' has {expected} points, the "
                        f"copy {have}; the old store is untouched"
                    )
            staging.flush()
        finally:
            staging.close()
    finally:
        legacy.close()
    os.replace(partial / EDGE_DIR, root / EDGE_DIR)  # the new store exists from here on
    shutil.rmtree(partial)
    _retire_legacy(root)
    _log.warning(
        "upgraded %s: %s; the old files are in %s (delete them when you are satisfied)",
        root,
        ", ".join(f"'{n}' {c} points" for n, c in counts.items()),
        root / LEGACY_BACKUP,
    )
    return counts
