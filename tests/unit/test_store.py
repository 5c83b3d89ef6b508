"""`shiori store migrate`: real copies between embedded stores (no server, no model)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient
from qdrant_client import models as qm
from typer.testing import CliRunner

from shiori.cli import app
from shiori.config import Settings
from shiori.edge import EdgeClient
from shiori.engine import QdrantEngine, StoreEngine
from shiori.index import NoteIndex, open_client
from shiori.store import MigrationError, migrate_store
from tests.unit.test_index import RecordingClient, chunk, record, vec

N_CHUNKS = 300  # more than one scroll page at the batch sizes used below


def fill(location: Path, collection: str = "c") -> Settings:
    """An embedded store as `shiori ingest` leaves it: published chunks and a file record."""
    settings = Settings(qdrant=str(location), collection=collection)
    index = NoteIndex(open_client(settings), settings, 4)
    index.ensure_collections()
    index.write_chunks(
        [chunk("/a", "g1", i) for i in range(N_CHUNKS)], [vec(i) for i in range(N_CHUNKS)]
    )
    index.publish([record("/a", "g1", N_CHUNKS)])
    index.write_chunks([chunk("/b", "g1", 0)], [vec(0)])  # an unpublished leftover moves too
    index.client.close()
    return settings


def dump(client: StoreEngine | QdrantClient, collection: str) -> dict[str, Any]:
    """Every point of a collection: id → (payload, sparse vectors, dense vectors)."""
    points: dict[str, Any] = {}
    offset: Any = None
    while True:
        batch, offset = client.scroll(
            collection, limit=128, offset=offset, with_payload=True, with_vectors=True
        )
        for p in batch:
            vectors = p.vector if isinstance(p.vector, dict) else {}
            sparse = {n: (list(v.indices), list(v.values)) for n, v in vectors.items()
                      if isinstance(v, qm.SparseVector)}  # fmt: skip
            dense = {n: v for n, v in vectors.items() if not isinstance(v, qm.SparseVector)}
            points[str(p.id)] = (p.payload, sparse, dense)
        if offset is None:
            return points


def unit(values: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in values))
    return [x / norm for x in values]


def assert_same_points(
    copy: StoreEngine | QdrantClient, source: StoreEngine | QdrantClient, collection: str
) -> None:
    """Same ids, payloads and sparse vectors, and dense vectors of the same direction to float32
    precision: a cosine collection stores vectors normalised (an embedded store reopened from
    disk returns a point never rewritten since its upsert as given), and normalising again
    may move the last bit."""
    got, want = dump(copy, collection), dump(source, collection)
    assert got.keys() == want.keys()
    for point_id, (payload, sparse, dense) in want.items():
        assert got[point_id][:2] == (payload, sparse)
        assert got[point_id][2].keys() == dense.keys()
        for name, values in dense.items():
            assert unit(got[point_id][2][name]) == pytest.approx(unit(values), abs=1e-6)


def test_migrate_copies_both_collections_with_their_vectors(tmp_path: Path) -> None:
    source_settings = fill(tmp_path / "src")
    source = open_client(source_settings)
    dest = QdrantEngine.local()
    seen: dict[str, int] = {}
    report = migrate_store(
        source, dest, source_settings, Settings(qdrant=":memory:", collection="c"),
        batch_size=64, progress=lambda name, n: seen.__setitem__(name, seen.get(name, 0) + n),
    )  # fmt: skip
    assert report.points == {"c": N_CHUNKS + 1, "c__files": 1}
    assert seen == report.points  # progress saw every point
    for name in ("c", "c__files"):
        assert_same_points(dest, source, name)
    assert len(dump(dest, "c")) == N_CHUNKS + 1
    vectors = dest.client.get_collection("c").config.params
    assert vectors.vectors["dense"].size == 4  # type: ignore[index]
    assert vectors.sparse_vectors["sparse"].modifier == qm.Modifier.IDF  # type: ignore[index]
    assert report.layout == {}
    source.close()


def test_migrate_refuses_a_destination_that_has_the_collections(tmp_path: Path) -> None:
    source_settings = fill(tmp_path / "src")
    other = fill(tmp_path / "dst")  # a store of its own, with different content
    source, dest = open_client(source_settings), open_client(other)
    dest.delete(other.collection, points_selector=qm.FilterSelector(filter=qm.Filter()))
    before = dump(dest, "c__files")
    with pytest.raises(MigrationError, match=r"already has 'c' \(0 points\).*--recreate"):
        migrate_store(source, dest, source_settings, other)
    assert dump(dest, "c__files") == before and dest.count("c").count == 0  # untouched
    migrate_store(source, dest, source_settings, other, recreate=True)
    assert_same_points(dest, source, "c")
    source.close()
    dest.close()


def test_migrate_names_a_missing_source_collection(tmp_path: Path) -> None:
    source_settings = fill(tmp_path / "src")
    source = open_client(source_settings)
    wrong = source_settings.model_copy(update={"collection": "other"})
    with pytest.raises(MigrationError, match="no collection other, other__files"):
        migrate_store(source, QdrantEngine.local(), wrong, wrong)
    source.close()


def test_a_server_destination_gets_the_layout_of_its_settings_not_the_sources(
    tmp_path: Path,
) -> None:
    """qdrant-client's migrate copies the source's single shard; Shiori creates the collections
    with the settings' layout instead, and adds the payload indexes a server needs."""
    source_settings = fill(tmp_path / "src")
    source = open_client(source_settings)
    recording = RecordingClient()  # stands in for the server: a real in-memory client, recorded
    server = Settings(
        qdrant="http://qdrant:6333", collection="c",
        shard_number=6, replication_factor=2, write_consistency_factor=1,
    )  # fmt: skip
    dest = QdrantEngine.for_server(server, client=recording)  # type: ignore[arg-type]
    report = migrate_store(source, dest, source_settings, server)
    layout = {"shard_number": 6, "replication_factor": 2, "write_consistency_factor": 1}
    assert report.layout == layout
    for name in ("c", "c__files"):
        assert {k: recording.created[name].get(k) for k in layout} == layout
        assert_same_points(recording.real, source, name)
    assert recording.indexed["c"] == {
        "path",
        "source",
        "generation",
        "content_hash",
        "kind",
        "tags",
        "live",
    }
    source.close()


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.upper().startswith("SHIORI_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    fill(tmp_path / "src")
    monkeypatch.setenv("SHIORI_QDRANT", str(tmp_path / "src"))
    monkeypatch.setenv("SHIORI_COLLECTION", "c")
    return tmp_path


def test_the_command_moves_an_embedded_store_to_another(cli_env: Path) -> None:
    runner = CliRunner()
    target = str(cli_env / "dst")
    result = runner.invoke(
        app, ["store", "migrate", "--to", target, "--batch-size", "50", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["points"] == {"c": N_CHUNKS + 1, "c__files": 1}
    source = EdgeClient(cli_env / "src")
    copy = EdgeClient(Path(target))
    for name in ("c", "c__files"):
        assert_same_points(copy, source, name)
    source.close()
    copy.close()

    again = runner.invoke(app, ["store", "migrate", "--to", target])
    assert again.exit_code == 1 and "--recreate" in again.stderr
    assert runner.invoke(app, ["store", "migrate", "--to", target, "--recreate"]).exit_code == 0


def test_the_command_explains_bad_destinations(cli_env: Path) -> None:
    runner = CliRunner()
    itself = runner.invoke(app, ["store", "migrate", "--to", str(cli_env / "src")])
    assert itself.exit_code == 2 and "the source itself" in itself.stderr
    memory = runner.invoke(app, ["store", "migrate", "--to", ":memory:"])
    assert memory.exit_code == 2 and "lost" in memory.stderr
    unreachable = runner.invoke(app, ["store", "migrate", "--to", "http://127.0.0.1:9"])
    assert unreachable.exit_code == 3 and "cannot reach Qdrant" in unreachable.stderr
