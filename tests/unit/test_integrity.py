"""`shiori store check [--repair]` on a real embedded store, damaged in every way the module
doc lists (tiny vectors, no model). After the SIGKILL ingest tests, tests/integration/
test_ingest.py runs it on the store the killed process left."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from qdrant_client import models as qm
from typer.testing import CliRunner

from shiori.cli import app
from shiori.config import Settings
from shiori.index import DENSE, SPARSE, NoteIndex, file_record_id, open_client, point_id
from shiori.integrity import check
from tests.unit.test_index import chunk, record, vec


def open_index(location: Path) -> NoteIndex:
    settings = Settings(qdrant=str(location), collection="c", embed_dim=4)
    index = NoteIndex(open_client(settings), settings, 4)
    index.ensure_collections()
    return index


def publish(index: NoteIndex, path: str, gen: str, n: int) -> None:
    index.write_chunks([chunk(path, gen, i) for i in range(n)], [vec(i) for i in range(n)])
    index.publish([record(path, gen, n)])


def damage(index: NoteIndex) -> None:
    client, c = index.client, index.collection
    publish(index, "/whole", "g1", 3)
    publish(index, "/leftover", "g1", 2)  # then an ingest of g2 killed before publishing
    index.write_chunks([chunk("/leftover", "g2", i) for i in range(2)], [vec(0), vec(1)])
    publish(index, "/unrecorded", "g1", 2)  # killed between the chunks' and records' commits
    client.delete(index.files_collection, qm.PointIdsList(points=[file_record_id("/unrecorded")]))
    publish(index, "/mixed", "g1", 3)  # a half of g2 made live by hand
    index.write_chunks([chunk("/mixed", "g2", 0)], [vec(0)])
    client.set_payload(c, {"live": True}, points=[point_id("/mixed", "g2", 0)])
    publish(index, "/holed", "g1", 3)
    client.delete(c, qm.PointIdsList(points=[point_id("/holed", "g1", 1)]))
    publish(index, "/chunkless", "g1", 2)
    chunkless = qm.FieldCondition(key="path", match=qm.MatchValue(value="/chunkless"))
    client.delete(c, qm.Filter(must=[chunkless]))
    publish(index, "/miscounted", "g1", 2)
    index.publish([replace(record("/miscounted", "g1", 2), chunks=5)])
    publish(index, "/zero-vector", "g1", 1)
    client.upsert(c, [qm.PointStruct(
        id=point_id("/zero-vector", "g1", 0),
        vector={DENSE: [0.0] * 4, SPARSE: qm.SparseVector(indices=[1], values=[1.0])},
        payload=chunk("/zero-vector", "g1", 0).payload(live=True),
    )])  # fmt: skip
    client.upsert(c, [qm.PointStruct(  # a payload no chunk can be read from
        id="00000000-0000-0000-0000-000000000001",
        vector={DENSE: [1.0] * 4, SPARSE: qm.SparseVector(indices=[1], values=[1.0])},
        payload={"live": True},
    )])  # fmt: skip


def test_check_finds_every_kind_of_damage_and_repair_loses_no_whole_note(tmp_path: Path) -> None:
    index = open_index(tmp_path / "q")
    publish(index, "/clean", "g1", 2)
    assert check(index).ok
    damage(index)
    found = check(index)
    kinds = {(p.kind, p.path) for p in found.problems}
    assert kinds == {
        ("unpublished", ""),
        ("missing_record", "/unrecorded"),
        ("mixed_generations", "/mixed"),
        ("half_published", "/holed"),
        ("record_without_chunks", "/chunkless"),
        ("record_mismatch", "/miscounted"),
        ("bad_point", "/zero-vector"),
        ("bad_point", ""),
    }
    assert not found.repaired and check(index).problems == found.problems  # nothing written

    repaired = check(index, repair=True)
    assert repaired.repaired
    after = check(index)
    assert after.ok, after.problems
    records = index.file_records()
    # whole notes kept (the unrecorded one got its record back, the miscounted one a right
    # count, the mixed one its recorded generation); broken ones forgotten for the next ingest
    assert set(records) == {"/clean", "/whole", "/leftover", "/unrecorded", "/mixed",
                            "/miscounted"}  # fmt: skip
    assert records["/unrecorded"].chunks == 2 and records["/miscounted"].chunks == 2
    live = {(c.path, c.generation) for c in index.chunks()}
    assert ("/mixed", "g2") not in live and ("/mixed", "g1") in live
    assert index.count(live_only=False) == index.count() == 2 + 3 + 2 + 2 + 3 + 2
    index.client.close()


def test_cli_exit_status_and_json(tmp_path: Path) -> None:
    index = open_index(tmp_path / "q")
    damage(index)
    index.client.close()
    env = {"SHIORI_QDRANT": str(tmp_path / "q"), "SHIORI_COLLECTION": "c", "SHIORI_EMBED_DIM": "4"}
    runner = CliRunner()
    found = runner.invoke(app, ["store", "check", "--json"], env=env)
    assert found.exit_code == 1
    body = json.loads(found.stdout)
    assert not body["ok"] and len(body["problems"]) == 8 and body["after_repair"] is None
    fixed = runner.invoke(app, ["store", "check", "--repair", "--json"], env=env)
    assert fixed.exit_code == 0, fixed.output
    assert json.loads(fixed.stdout)["after_repair"]["ok"]
    assert runner.invoke(app, ["store", "check"], env=env).exit_code == 0
    wrong = runner.invoke(app, ["store", "check", "--json"], env={**env, "SHIORI_EMBED_DIM": "8"})
    assert wrong.exit_code == 1
    assert [p["kind"] for p in json.loads(wrong.stdout)["problems"]] == ["wrong_dimension"]
