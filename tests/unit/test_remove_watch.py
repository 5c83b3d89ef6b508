"""Forgetting notes, duplicate notes, NFC names and watching folders, through the real pipeline and
a real embedded Qdrant store; only the embedding model is a small stand-in (the same paths run
with the real model in tests/integration/test_ingest_cases.py)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.pipeline import Ingestor
from ingest.remove import RemoveReport, matches, remove_notes
from ingest.watch import ingest_changes, watch
from shiori.config import Settings
from shiori.index import FileRecord, NoteIndex, open_client

REPO = Path(__file__).resolve().parents[2]


class HashEmbedder:
    """Deterministic 8-d vectors from a text's digest; tokens are characters."""

    reference = "hash-embedder"
    dimension = 8

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(t) for t in texts]

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_documents(texts, [""] * len(texts))

    def embed_documents(self, texts: Sequence[str], titles: Sequence[str]) -> np.ndarray:
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[:32], np.int32) for t in texts]
        out = np.asarray(rows, dtype=np.float32).reshape(len(texts), 8)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Ingestor, Path]]:
    monkeypatch.chdir(tmp_path)
    settings = Settings(
        qdrant=str(tmp_path / "store"), collection="c", uploads_dir=tmp_path / "uploads"
    )
    index = NoteIndex(open_client(settings), settings, HashEmbedder.dimension)
    index.ensure_collections()
    yield Ingestor(settings, index, HashEmbedder()), tmp_path  # type: ignore[arg-type]
    index.client.close()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def sources(ingestor: Ingestor) -> list[str]:
    return sorted(r.source for r in ingestor.index.file_records().values())


def test_remove_by_source_path_folder_and_gone_file(store: tuple[Ingestor, Path]) -> None:
    ingestor, root = store
    for name in ("notes/a.md", "notes/sub/b.md", "notes/sub/c.md", "other/d.md", "other/e.md"):
        write(root / name, f"# {name}\n\n本文です。\n")
    elsewhere = write(root.parent / f"{root.name}-outside" / "f.md", "# f\n\nよそのノート。\n")
    ingestor.run([root / "notes", root / "other", elsewhere])
    assert len(sources(ingestor)) == 6

    report = remove_notes(ingestor.index, ["notes/a.md"])  # as shown in citations
    assert [r["source"] for r in report.removed] == ["notes/a.md"]
    assert report.chunks_deleted == 1 and report.not_found == []

    (root / "notes/sub/b.md").unlink()  # gone from disk, still indexed
    report = remove_notes(ingestor.index, [str(root / "notes" / "sub")])  # a folder, absolute
    assert sorted(r["source"] for r in report.removed) == ["notes/sub/b.md", "notes/sub/c.md"]

    report = remove_notes(ingestor.index, [str(elsewhere), "other/d.md/", "nothing/here.md"])
    assert len(report.removed) == 2 and report.not_found == ["nothing/here.md"]
    assert sources(ingestor) == ["other/e.md"]
    assert ingestor.index.count() == ingestor.index.count(live_only=False) == 1
    # the files themselves are untouched
    assert (root / "notes/a.md").exists() and elsewhere.exists()


def test_matching_is_exact_per_path_segment_and_nfc() -> None:
    record = FileRecord("/srv/n/データ/a.md", "n/データ/a.md", "h", "g", 1, 1, 1)
    nfd = unicodedata.normalize("NFD", "n/データ")
    assert matches(record, "n/データ") and matches(record, nfd) and matches(record, "/srv/n")
    assert not matches(record, "n/デー") and not matches(record, "/srv/n/デ")
    assert not matches(record, "") and not matches(record, "/")


def test_a_tilde_of_no_user_is_a_name_not_an_error() -> None:
    record = FileRecord("/srv/n/a.md", "n/a.md", "h", "g", 1, 1, 1)
    assert not matches(record, "~no-such-user-here/a.md", Path("/srv"))
    assert matches(record, "n/a.md")


def test_removing_an_upload_deletes_its_copy(store: tuple[Ingestor, Path]) -> None:
    ingestor, root = store
    upload = write(root / "uploads" / "メモ.md", "# メモ\n\nアップロードしたノート。\n")
    ingestor.run([upload])
    assert sources(ingestor) == ["uploads/メモ.md"]
    report = remove_notes(ingestor.index, ["uploads/メモ.md"], root / "uploads")
    assert report.uploads_deleted == 1 and not upload.exists()
    assert isinstance(report, RemoveReport) and sources(ingestor) == []


def test_duplicates_are_reported_and_both_kept(store: tuple[Ingestor, Path]) -> None:
    ingestor, root = store
    text = "# 活性化関数\n\n## ReLU\n\nReLU は負の入力で 0 を返す。\n"
    write(root / "notes/2024/act.md", text)
    write(root / "notes/backup/act.md", text)
    write(root / "notes/other.md", "# 別\n\n違う内容。\n")
    report = ingestor.run([root / "notes"])
    assert report.duplicates == [{"path": "notes/backup/act.md", "same_as": "notes/2024/act.md"}]
    assert sources(ingestor) == ["notes/2024/act.md", "notes/backup/act.md", "notes/other.md"]
    # a copy ingested later is recognised against the store
    write(root / "later/act.md", text)
    later = ingestor.run([root / "later"])
    assert later.duplicates and later.duplicates[0]["path"] == "later/act.md"
    assert later.duplicates[0]["same_as"] in ("notes/2024/act.md", "notes/backup/act.md")


def test_nfd_file_name_is_shown_and_filtered_in_nfc(store: tuple[Ingestor, Path]) -> None:
    from shiori.index import ChunkFilter

    ingestor, root = store
    nfd = unicodedata.normalize("NFD", "データ拡張.md")
    write(root / "notes" / nfd, "# データ拡張\n\n左右反転で水増しする。\n")
    ingestor.run([root / "notes"])
    (shown,) = sources(ingestor)
    assert shown == "notes/データ拡張.md" and unicodedata.is_normalized("NFC", shown)
    hits = ingestor.index.hybrid_query(
        [1.0] * 8, ingestor.sparse.encode_query("データ"), 5,
        flt=ChunkFilter(sources=("notes/データ拡張.md",)),
    )  # fmt: skip
    assert len(hits) == 1
    assert remove_notes(ingestor.index, ["notes/データ拡張.md"]).removed


def test_ingest_changes_reads_only_what_changed(store: tuple[Ingestor, Path]) -> None:
    ingestor, root = store
    folder = root / "vault"
    a = write(folder / "a.md", "# A\n\n最初の版。\n")
    b = write(folder / "b.md", "# B\n\nそのまま。\n")
    write(folder / ".shioriignore", "drafts/\n")
    ingestor.run([folder])
    a.write_text("# A\n\n二番目の版。\n", encoding="utf-8")
    draft = write(folder / "drafts" / "d.md", "# D\n\n無視される。\n")
    c = write(folder / "c.md", "# C\n\n新しい。\n")
    report = ingest_changes(ingestor, [folder], [a, draft, c])
    assert (report.files_seen, report.files_updated, report.files_new) == (2, 1, 1)
    b.unlink()
    gone = ingest_changes(ingestor, [folder], [b])
    assert gone.files_deleted == 1
    assert sources(ingestor) == ["vault/a.md", "vault/c.md"]
    # a changed ignore file re-checks everything (unchanged files only hashed)
    write(folder / ".shioriignore", "")
    everything = ingest_changes(ingestor, [folder], [folder / ".shioriignore"])
    assert everything.files_new == 1 and everything.files_unchanged == 2


def test_watch_reingests_on_file_events(store: tuple[Ingestor, Path]) -> None:
    ingestor, root = store
    folder = root / "watched"
    write(folder / "a.md", "# A\n\n初版。\n")
    ingestor.run([folder])
    batches: list[object] = []
    stop = threading.Event()
    thread = threading.Thread(
        target=watch,
        args=(ingestor, [folder.resolve()], batches.append),
        kwargs={"stop": stop, "debounce_ms": 200},
        daemon=True,
    )
    thread.start()
    time.sleep(0.5)  # let the watcher start
    write(folder / "b.md", "# B\n\n追加したノート。\n")
    (folder / "a.md").unlink()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and sources(ingestor) != ["watched/b.md"]:
        time.sleep(0.1)
    stop.set()
    thread.join(timeout=10)
    assert sources(ingestor) == ["watched/b.md"]
    assert batches


def test_a_watched_folder_renamed_away_and_back_is_watched_again(
    store: tuple[Ingestor, Path],
) -> None:
    """The watched folder itself renamed away: named (its notes are forgotten); renamed back or
    replaced by a new folder of that name: ingested again, and its later changes followed."""
    ingestor, root = store
    folder = (root / "watched").resolve()
    write(folder / "a.md", "# A\n\n初版。\n")
    ingestor.run([folder])
    warned: list[str] = []

    class Warns:
        def start(self, total_files: int) -> None: ...

        def advance(self, files: int = 1) -> None: ...

        def warn(self, message: str) -> None:
            warned.append(message)

    stop = threading.Event()
    thread = threading.Thread(
        target=watch,
        args=(ingestor, [folder], lambda report: None),
        kwargs={"stop": stop, "debounce_ms": 200, "reporter": Warns(), "poll_s": 0.3},
        daemon=True,
    )
    thread.start()

    def wait_for(names: list[str]) -> list[str]:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and sources(ingestor) != names:
            time.sleep(0.1)
        return sources(ingestor)

    try:
        time.sleep(0.5)  # let the watcher start
        folder.rename(root / "away")
        assert wait_for([]) == []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any("is gone" in w for w in warned):
            time.sleep(0.1)
        assert any(str(folder) in w and "is gone" in w for w in warned)
        (root / "away").rename(folder)
        assert wait_for(["watched/a.md"]) == ["watched/a.md"]
        time.sleep(0.8)  # the watch restarted on the folder that is back
        write(folder / "b.md", "# B\n\n戻った後のノート。\n")
        assert wait_for(["watched/a.md", "watched/b.md"]) == ["watched/a.md", "watched/b.md"]
        # replaced by another folder of that name
        folder.rename(root / "old")
        write(root / "new" / "c.md", "# C\n\n新しいフォルダ。\n")
        (root / "new").rename(folder)
        assert wait_for(["watched/c.md"]) == ["watched/c.md"]
    finally:
        stop.set()
        thread.join(timeout=10)


def test_cli_remove(store: tuple[Ingestor, Path]) -> None:
    ingestor, root = store
    write(root / "notes" / "a.md", "# A\n\n本文。\n")
    ingestor.run([root / "notes"])
    ingestor.index.client.close()  # the CLI opens the embedded store itself
    env = {**os.environ, "SHIORI_QDRANT": str(root / "store"), "SHIORI_COLLECTION": "c",
           "PYTHONPATH": str(REPO)}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "shiori.cli", "remove", "--json", "notes/a.md", "notes/zz.md"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # one target named no note
    report = json.loads(done.stdout)
    assert report["removed"] == [{"source": "notes/a.md", "chunks": 1}]
    assert report["not_found"] == ["notes/zz.md"]
    again = subprocess.run(
        [sys.executable, "-m", "shiori.cli", "remove", "notes/a.md"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert again.returncode == 1 and "no ingested note is notes/a.md" in again.stderr
    ingestor.index.client = open_client(ingestor.settings)  # for the fixture's close


def test_the_service_keeps_watched_folders_ingested(tmp_path: Path) -> None:
    """SHIORI_WATCH: at start the folder is brought up to date, then changes follow."""
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.components import Components

    folder = tmp_path / "vault"
    write(folder / "a.md", "# A\n\n最初からあるノート。\n")
    settings = Settings(qdrant=str(tmp_path / "store"), collection="w", watch=[folder])
    index = NoteIndex(open_client(settings), settings, HashEmbedder.dimension)
    index.ensure_collections()
    parts = Components.assemble(settings, HashEmbedder(), index)  # type: ignore[arg-type]

    def listed(http: TestClient) -> list[str]:
        return sorted(n["source"].rsplit("/", 1)[-1] for n in http.get("/v1/notes").json()["notes"])

    def wait_for(http: TestClient, names: list[str]) -> list[str]:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and listed(http) != names:
            time.sleep(0.2)
        return listed(http)

    with TestClient(create_app(settings, parts)) as http:
        assert wait_for(http, ["a.md"]) == ["a.md"]
        write(folder / "b.md", "# B\n\n後から書いたノート。\n")
        assert wait_for(http, ["a.md", "b.md"]) == ["a.md", "b.md"]
        (folder / "a.md").unlink()
        assert wait_for(http, ["b.md"]) == ["b.md"]
    index.client.close()


def test_a_watched_folder_that_does_not_exist_stops_the_start(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.components import Components

    settings = Settings(qdrant=":memory:", collection="w", watch=[tmp_path / "missing"])
    index = NoteIndex(open_client(settings), settings, HashEmbedder.dimension)
    index.ensure_collections()
    parts = Components.assemble(settings, HashEmbedder(), index)  # type: ignore[arg-type]
    app = create_app(settings, parts)
    with (
        pytest.raises(ValueError, match="SHIORI_WATCH names folders that do not exist"),
        TestClient(app),
    ):
        pass


@given(target=st.text(max_size=300))
def test_any_name_a_request_may_carry_is_matched_without_an_error(target: str) -> None:
    """Names from `DELETE /v1/notes` are arbitrary text: "~user", NUL bytes, control
    characters, names longer than the file system allows all answer "no such note"."""
    record = FileRecord("/home/u/notes/a.md", "notes/a.md", "h", "g", 1, 0, 1)
    assert matches(record, target, Path("/home/u")) in (True, False)
    assert not matches(record, "~" + target.lstrip("/~"), Path("/nowhere"))
