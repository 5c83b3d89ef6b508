"""A store written by the previous Shiori (qdrant-client's local mode) is upgraded to Qdrant Edge
when it is opened: every chunk, vector and file record kept, the old files kept aside, searches
answering as before, and nothing lost when the upgrade is interrupted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from shiori.config import Settings
from shiori.edge import EdgeClient
from shiori.index import NoteIndex, StoreLockedError, open_client
from shiori.sparse import SparseVector
from shiori.transfer import LEGACY_BACKUP, PARTIAL, is_legacy_store, upgrade_legacy_store
from tests.unit.test_index import chunk, record, vec
from tests.unit.test_store import dump, unit

N = 300  # more than one page of the copy's scroll


def legacy_store(root: Path) -> Settings:
    """What `shiori ingest` of the previous version left: qdrant-client's local mode on disk,
    written through the same `NoteIndex` calls (published chunks, a file record, a leftover)."""
    settings = Settings(qdrant=str(root), collection="c")
    index = NoteIndex(QdrantClient(path=str(root)), settings, 4)
    index.ensure_collections()
    index.write_chunks([chunk("/a", "g1", i) for i in range(N)], [vec(i) for i in range(N)])
    index.publish([record("/a", "g1", N)])
    index.write_chunks([chunk("/b", "g1", 0)], [vec(0)])
    index.client.close()
    assert is_legacy_store(root)
    return settings


def snapshot(client: QdrantClient | EdgeClient) -> dict[str, object]:
    """Every point of both collections; dense vectors as unit vectors, rounded (cosine: the
    old store kept some as written, the engine normalises)."""
    found: dict[str, object] = {}
    for name in ("c", "c__files"):
        points = dump(client, name)
        found[name] = {
            pid: (payload, sparse,
                  {n: [round(x, 5) for x in unit(v)] for n, v in dense.items()})
            for pid, (payload, sparse, dense) in points.items()
        }  # fmt: skip
    return found


def test_opening_an_old_store_upgrades_it_and_keeps_everything(tmp_path: Path) -> None:
    root = tmp_path / "store"
    settings = legacy_store(root)
    before_client = QdrantClient(path=str(root))
    before = snapshot(before_client)
    old = NoteIndex(before_client, settings, 4)
    query = ([0.3, 1.0, 0.2, 0.5], SparseVector([3, 7], [1.0, 0.5]))
    want = old.hybrid_query(*query, 5)
    before_client.close()

    client = open_client(settings)  # upgrades
    assert isinstance(client, EdgeClient)
    assert snapshot(client) == before  # every point: payload, sparse and (unit) dense vectors
    index = NoteIndex(client, settings, 4)
    index.ensure_collections()
    got = index.hybrid_query(*query, 5)
    assert [(c.path, c.chunk_index) for c, _, _ in got] == [
        (c.path, c.chunk_index) for c, _, _ in want
    ]
    assert [s for _, s, _ in got] == pytest.approx([s for _, s, _ in want], abs=1e-4)
    assert index.file_records()["/a"].chunks == N
    client.close()
    assert not is_legacy_store(root)
    assert (root / LEGACY_BACKUP / "meta.json").is_file()  # the old files, kept aside
    again = open_client(settings)  # no second upgrade
    assert snapshot(again) == before
    again.close()


def test_an_interrupted_upgrade_starts_again_and_loses_nothing(tmp_path: Path) -> None:
    root = tmp_path / "store"
    settings = legacy_store(root)
    before_client = QdrantClient(path=str(root))
    before = snapshot(before_client)
    before_client.close()
    # killed during the copy: a partial copy beside the intact old store
    (root / PARTIAL / "edge" / "c").mkdir(parents=True)
    (root / PARTIAL / "edge" / "c.json").write_text("{")
    client = open_client(settings)
    assert snapshot(client) == before
    client.close()
    assert not (root / PARTIAL).exists()


def test_killed_after_the_copy_only_the_old_files_are_moved(tmp_path: Path) -> None:
    root = tmp_path / "store"
    settings = legacy_store(root)
    counts = upgrade_legacy_store(root)
    assert counts == {"c": N + 1, "c__files": 1}
    # as if killed between the rename of the copy and the move of the old files
    for name in ("meta.json", "collection"):
        os.replace(root / LEGACY_BACKUP / name, root / name)
    client = open_client(settings)
    assert client.count("c", exact=True).count == N + 1
    client.close()
    assert not is_legacy_store(root)


def test_an_old_store_held_by_another_process_is_not_touched(tmp_path: Path) -> None:
    root = tmp_path / "store"
    settings = legacy_store(root)
    holder = QdrantClient(path=str(root))  # the previous version's server, still running
    with pytest.raises(StoreLockedError, match="in use by another process"):
        open_client(settings)
    assert is_legacy_store(root) and not (root / "edge").exists()
    holder.close()


def test_an_upgraded_store_gets_the_payload_indexes_of_a_new_one(tmp_path: Path) -> None:
    settings = legacy_store(tmp_path / "old")
    upgraded = NoteIndex(open_client(settings), settings, 4)
    upgraded.ensure_collections()
    fresh_settings = Settings(qdrant=str(tmp_path / "new"), collection="c")
    fresh = NoteIndex(open_client(fresh_settings), fresh_settings, 4)
    fresh.ensure_collections()
    schema = [
        set(ix.client._shard("c").info().payload_schema)  # type: ignore[union-attr]
        for ix in (upgraded, fresh)
    ]
    assert schema[0] == schema[1] and "path" in schema[0]
    upgraded.client.close()
    fresh.client.close()


def test_an_upgrade_in_progress_is_not_disturbed_by_a_second_process(tmp_path: Path) -> None:
    root = tmp_path / "store"
    settings = legacy_store(root)
    upgrading = QdrantClient(path=str(root))  # what the upgrading process holds first
    (root / PARTIAL / "edge" / "c").mkdir(parents=True)  # … and its copy in progress
    with pytest.raises(StoreLockedError):
        open_client(settings)
    assert (root / PARTIAL / "edge" / "c").is_dir()  # left alone
    upgrading.close()


def test_files_an_older_shiori_wrote_after_the_upgrade_are_kept_apart(tmp_path: Path) -> None:
    root = tmp_path / "store"
    settings = legacy_store(root)
    open_client(settings).close()  # upgraded
    legacy_store(root)  # the old version, run again on the same folder, writes its files
    client = open_client(settings)
    assert client.count("c", exact=True).count == N + 1
    client.close()
    assert (root / f"{LEGACY_BACKUP}-2" / "meta.json").is_file()
    assert (root / LEGACY_BACKUP / "meta.json").is_file()
    assert not is_legacy_store(root)


def test_a_file_where_the_store_should_be_is_explained(tmp_path: Path) -> None:
    from shiori.index import StoreUnavailableError

    (tmp_path / "f").write_text("not a folder")
    with pytest.raises(StoreUnavailableError, match="is a file"):
        open_client(Settings(qdrant=str(tmp_path / "f"), collection="c"))
