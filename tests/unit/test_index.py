"""The Qdrant contract with a real embedded store and tiny vectors (no model needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from qdrant_client import models as qm

from shiori.config import Settings
from shiori.engine import QdrantEngine
from shiori.index import (
    Chunk,
    FileRecord,
    NoteIndex,
    StoreLockedError,
    Vectors,
    open_client,
)
from shiori.sparse import SparseVector


def chunk(path: str, gen: str, i: int) -> Chunk:
    return Chunk(
        path=path, source=path, title="t", headings=["t"], line_start=i + 1, line_end=i + 1,
        char_start=i, char_end=i + 1, text=f"text {i}", chunk_index=i, content_hash=f"h{i}",
        file_hash="f", generation=gen,
    )  # fmt: skip


def vec(i: int) -> Vectors:
    return Vectors([1.0, float(i), 0.0, 0.5], SparseVector([i + 1], [1.0]))


def record(path: str, gen: str, n: int) -> FileRecord:
    return FileRecord(path, path, "f", gen, 1, 1, n)


def open_index(location: Path) -> NoteIndex:
    settings = Settings(qdrant=str(location), collection="c")
    index = NoteIndex(open_client(settings), settings, 4)
    index.ensure_collections()
    return index


def test_publish_swaps_generations_and_records_the_file(tmp_path: Path) -> None:
    index = open_index(tmp_path / "q")
    index.write_chunks([chunk("/a", "g1", i) for i in range(3)], [vec(i) for i in range(3)])
    assert index.count() == 0 and index.count(live_only=False) == 3  # invisible until published
    assert index.publish([record("/a", "g1", 3)]) == 0
    assert index.count() == 3 and index.file_records()["/a"].generation == "g1"
    index.write_chunks([chunk("/a", "g2", i) for i in range(2)], [vec(i) for i in range(2)])
    assert index.publish([record("/a", "g2", 2)]) == 3
    assert [c.generation for c in index.chunks()] == ["g2", "g2"]
    assert index.count(live_only=False) == 2
    assert index.remove_file("/a") == 2 and index.count(live_only=False) == 0
    assert index.file_records() == {}
    index.client.close()


def test_discard_unpublished_only_touches_invisible_points(tmp_path: Path) -> None:
    index = open_index(tmp_path / "q")
    index.write_chunks([chunk("/a", "g1", 0)], [vec(0)])
    index.publish([record("/a", "g1", 1)])
    index.write_chunks([chunk("/a", "g2", 0), chunk("/b", "g1", 0)], [vec(0), vec(1)])
    assert index.discard_unpublished(["/a"]) == 1
    assert index.count() == 1 and index.count(live_only=False) == 2  # /b untouched
    index.client.close()


def test_other_dimension_and_locked_store_are_explained(tmp_path: Path) -> None:
    index = open_index(tmp_path / "q")
    settings = Settings(qdrant=str(tmp_path / "q"), collection="c")
    with pytest.raises(StoreLockedError, match="in use by another process"):
        open_client(settings)
    wrong = NoteIndex(index.client, settings, 8)
    with pytest.raises(ValueError, match="4-d vectors"):
        wrong.ensure_collections()
    index.client.close()


class RecordingClient:
    """A real in-memory Qdrant client that records the schema calls made through it (the
    cluster parameters are only accepted, not acted on, by an in-memory client)."""

    def __init__(self) -> None:
        from qdrant_client import QdrantClient

        self.real = QdrantClient(location=":memory:")
        self.created: dict[str, dict[str, object]] = {}
        self.indexed: dict[str, set[str]] = {}
        self.index_calls = 0

    def create_collection(self, name: str, **kwargs: object) -> bool:
        self.created[name] = kwargs
        return self.real.create_collection(name, **kwargs)  # type: ignore[arg-type]

    def create_payload_index(
        self, name: str, field: str, schema: object, wait: bool = True
    ) -> None:
        self.indexed.setdefault(name, set()).add(field)
        self.index_calls += 1

    def get_collection(self, name: str) -> Any:
        """The real collection, with the recorded indexes in its schema, as a server says."""
        info = self.real.get_collection(name)
        keyword = qm.PayloadIndexInfo(data_type=qm.PayloadSchemaType.KEYWORD, points=0)
        info.payload_schema = dict.fromkeys(self.indexed.get(name, ()), keyword)
        return info

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)


def server_settings(**layout: int) -> Settings:
    return Settings(qdrant="http://qdrant.shiori.svc:6333", collection="c", **layout)


def server(client: RecordingClient, settings: Settings) -> QdrantEngine:
    """The engine `open_client` makes for a server URL, over the recording client."""
    return QdrantEngine.for_server(settings, client=client)  # type: ignore[arg-type]


def test_a_collection_on_a_server_gets_the_cluster_layout_from_the_settings() -> None:
    client = RecordingClient()
    settings = server_settings(shard_number=6, replication_factor=2, write_consistency_factor=1)
    index = NoteIndex(server(client, settings), settings, 4)
    index.ensure_collections()
    layout = {"shard_number": 6, "replication_factor": 2, "write_consistency_factor": 1}
    for name in ("c", "c__files"):  # the file records get replicas too
        assert {k: client.created[name].get(k) for k in layout} == layout
    assert client.indexed == {
        "c": {"path", "source", "generation", "content_hash", "kind", "tags", "live"}
    }
    # the collection really exists with the vectors Shiori expects
    params = client.real.get_collection("c").config.params
    assert params.vectors["dense"].size == 4  # type: ignore[index]
    assert index.stored_dimension() == 4
    # an existing collection whose indexes are all there: none created again; one that lacks
    # one (its creation cut short) gets it
    calls = client.index_calls
    NoteIndex(server(client, settings), settings, 4).ensure_collections()
    assert client.index_calls == calls
    client.indexed["c"].discard("tags")
    NoteIndex(server(client, settings), settings, 4).ensure_collections()
    assert client.index_calls == calls + 1 and "tags" in client.indexed["c"]


def test_without_a_layout_a_server_keeps_qdrants_defaults_and_embedded_ignores_it(
    tmp_path: Path,
) -> None:
    client = RecordingClient()
    NoteIndex(server(client, server_settings()), server_settings(), 4).ensure_collections()
    keys = {"shard_number", "replication_factor", "write_consistency_factor"}
    assert not keys & set(client.created["c"]) and not keys & set(client.created["c__files"])

    # no layout for one process's shard (its payload indexes: tests/unit/test_transfer.py)
    settings = Settings(qdrant=str(tmp_path / "q"), collection="c", shard_number=6,
                        replication_factor=2)  # fmt: skip
    embedded = open_client(settings)
    assert embedded.layout == {}
    NoteIndex(embedded, settings, 4).ensure_collections()
    assert embedded.collection_params("c").layout == {}
    embedded.close()
    # nor for qdrant-client's local mode, which has no payload indexes either
    memory = RecordingClient()
    local = Settings(qdrant=":memory:", collection="c", shard_number=6)
    NoteIndex(QdrantEngine(memory), local, 4).ensure_collections()  # type: ignore[arg-type]
    assert not keys & set(memory.created["c"]) and memory.indexed == {}


def test_an_existing_collection_with_another_layout_is_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = RecordingClient()
    one = server_settings(shard_number=1)
    NoteIndex(server(client, one), one, 4).ensure_collections()
    # the in-memory client does not keep the layout: give the existing collection one
    info = client.real.get_collection("c")
    info.config.params.shard_number = 1
    info.config.params.replication_factor = 1
    client.get_collection = lambda name: info  # type: ignore[method-assign]
    with caplog.at_level("WARNING", logger="shiori.index"):
        NoteIndex(server(client, one), one, 4).ensure_collections()
        assert not caplog.records
        six = server_settings(shard_number=6, replication_factor=2)
        NoteIndex(server(client, six), six, 4).ensure_collections()
    assert "shard_number=1, replication_factor=1" in caplog.text
    assert "shard_number=6, replication_factor=2" in caplog.text


def test_a_replica_that_loses_the_creation_race_uses_the_winners_collection() -> None:
    """Two API replicas starting together on a new cluster: the loser saw no collection, its
    create fails (409 on a server; an error in memory too) because the winner's now exists;
    it goes on with the winner's collection, and still checks its dimension."""
    client = RecordingClient()
    settings = server_settings(shard_number=6, replication_factor=2)
    NoteIndex(server(client, settings), settings, 4).ensure_collections()  # the winner
    real_exists = client.real.collection_exists

    def loser_view() -> list[str]:
        seen: list[str] = []

        def stale_then_real(name: str) -> bool:
            if name not in seen:  # looked before the winner's create landed
                seen.append(name)
                return False
            return real_exists(name)

        client.collection_exists = stale_then_real  # type: ignore[method-assign]
        return seen

    seen = loser_view()
    NoteIndex(server(client, settings), settings, 4).ensure_collections()
    assert seen == ["c", "c__files"]  # both creates were tried, lost, and accepted
    loser_view()
    with pytest.raises(ValueError, match="4-d vectors"):
        NoteIndex(server(client, settings), settings, 8).ensure_collections()
