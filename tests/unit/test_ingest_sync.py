"""An ingest leaves the index matching the paths it was given (issue 25, cases 22, 26, 29):
emptied notes keep no passages, renamed or moved notes are forgotten at their old paths (and
keep their vectors), a renamed folder under a watched root is read at its new name, and notes
outside the given paths are never touched. Real pipeline and embedded Qdrant store; only the
embedding model is the small stand-in of test_remove_watch (the real model runs these cases in
tests/integration/test_ingest_cases_changes.py)."""

from __future__ import annotations

import errno
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import pipeline
from ingest.pipeline import Ingestor
from ingest.watch import ingest_changes
from shiori.config import Settings
from shiori.index import NoteIndex, open_client
from tests.unit.test_remove_watch import HashEmbedder, sources, write


def make_ingestor(root: Path) -> Ingestor:
    config = Settings(qdrant=str(root / "store"), collection="c", uploads_dir=root / "uploads")
    index = NoteIndex(open_client(config), config, HashEmbedder.dimension)
    index.ensure_collections()
    return Ingestor(config, index, HashEmbedder())  # type: ignore[arg-type]


@pytest.fixture
def ingestor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ingestor]:
    monkeypatch.chdir(tmp_path)
    made = make_ingestor(tmp_path)
    yield made
    made.index.client.close()


def live_texts(ingestor: Ingestor) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for chunk in ingestor.index.chunks():
        found.setdefault(chunk.source, []).append(chunk.text)
    return found


# --- case 22: an emptied note -------------------------------------------------------------------


@pytest.mark.parametrize(
    "emptied",
    [
        "",  # 0 bytes, as an editor saves a note whose text was all deleted
        "   \n\n",  # only white space
        "---\ntitle: 下書き\ntags: [下書き]\n---\n",  # only the front matter left
    ],
)
def test_an_emptied_note_keeps_no_passages(
    ingestor: Ingestor, tmp_path: Path, emptied: str
) -> None:
    folder = tmp_path / "notes"
    todo = write(folder / "todo.md", "# 今週の課題\n\n- 締め切りは金曜日の 17 時\n")
    write(folder / "keep.md", "# 正則化\n\nL2 正則化は重みの二乗和を損失に加える。\n")
    assert ingestor.run([folder]).files_new == 2

    todo.write_text(emptied, encoding="utf-8")
    report = ingestor.run([folder])
    assert report.files_failed == 0 and report.failures == []  # exit status 0
    assert report.files_empty == 1 and report.files_unchanged == 1
    (warning,) = report.warnings
    assert warning["path"] == "notes/todo.md" and warning["warning"].startswith("empty")
    assert report.chunks_deleted == 1
    assert sources(ingestor) == ["notes/keep.md"]
    assert set(live_texts(ingestor)) == {"notes/keep.md"}
    assert ingestor.index.count(live_only=False) == 1  # nothing of todo.md, visible or not

    # it stays reported (never silence) while it is empty, and comes back when it has text
    again = ingestor.run([folder])
    assert again.files_empty == 1 and again.warnings and again.files_failed == 0
    todo.write_text("# 今週の課題\n\n- 新しい課題\n", encoding="utf-8")
    back = ingestor.run([folder])
    assert back.files_new == 1 and live_texts(ingestor)["notes/todo.md"] == ["- 新しい課題"]


def test_a_new_empty_note_is_a_warning_not_a_failure(ingestor: Ingestor, tmp_path: Path) -> None:
    write(tmp_path / "notes" / "placeholder.md", "")
    report = ingestor.run([tmp_path / "notes"])
    assert (report.files_empty, report.files_failed, report.files_new) == (1, 0, 0)
    assert sources(ingestor) == []


def test_a_note_changed_into_something_unreadable_loses_its_old_passages(
    ingestor: Ingestor, tmp_path: Path
) -> None:
    note = write(tmp_path / "notes" / "a.md", "# A\n\n古い本文。\n")
    ingestor.run([tmp_path / "notes"])
    note.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64))
    report = ingestor.run([tmp_path / "notes"])
    (failure,) = report.failures
    assert failure["path"] == "notes/a.md" and "binary" in failure["error"]
    assert "earlier version were removed" in failure["error"]
    assert sources(ingestor) == [] and ingestor.index.count(live_only=False) == 0
    # still a failure the next time (no record hides it)
    assert ingestor.run([tmp_path / "notes"]).files_failed == 1


# --- case 29: a note renamed or moved within an ingested folder ---------------------------------


def test_a_moved_note_is_forgotten_at_its_old_path_and_keeps_its_vectors(
    ingestor: Ingestor, tmp_path: Path
) -> None:
    folder = tmp_path / "notes"
    old = write(folder / "attention-memo.md", "# 注意機構\n\n内積を次元の平方根で割る。\n")
    write(folder / "rnn.md", "# RNN\n\n隠れ状態を渡す。\n")
    ingestor.run([folder])
    new = folder / "transformer" / "attention.md"
    new.parent.mkdir()
    old.rename(new)

    report = ingestor.run([folder])
    assert (report.files_new, report.files_deleted, report.files_unchanged) == (1, 1, 1)
    assert report.forgotten == [
        {"path": "notes/attention-memo.md", "reason": "moved to notes/transformer/attention.md"}
    ]
    assert report.duplicates == []  # the old path is no copy: it is gone
    assert report.embeddings_computed == 0 and report.embeddings_reused == 1
    assert sources(ingestor) == ["notes/rnn.md", "notes/transformer/attention.md"]
    assert ingestor.index.count(live_only=False) == 2


def test_a_deleted_note_is_forgotten_and_notes_outside_the_paths_are_not(
    ingestor: Ingestor, tmp_path: Path
) -> None:
    a = write(tmp_path / "a" / "x.md", "# X\n\nエックス。\n")
    write(tmp_path / "a" / "y.md", "# Y\n\nワイ。\n")
    b = write(tmp_path / "b" / "z.md", "# Z\n\nゼット。\n")
    ingestor.run([tmp_path / "a", tmp_path / "b"])
    a.unlink()
    b.unlink()
    # only folder a is ingested: b's gone note stays until b is ingested (or removed)
    report = ingestor.run([tmp_path / "a"])
    assert report.files_deleted == 1
    assert report.forgotten == [{"path": "a/x.md", "reason": "file is gone"}]
    assert sources(ingestor) == ["a/y.md", "b/z.md"]
    # a file given by itself is its own root: its gone neighbours are not looked at
    write(tmp_path / "b" / "w.md", "# W\n\nダブリュー。\n")
    assert ingestor.run([tmp_path / "b" / "w.md"]).files_deleted == 0
    assert "b/z.md" in sources(ingestor)
    # a path that does not exist forgets nothing under it
    assert ingestor.run([tmp_path / "nowhere"]).missing == [str(tmp_path / "nowhere")]
    assert ingestor.run([tmp_path / "b"]).forgotten == [
        {"path": "b/z.md", "reason": "file is gone"}
    ]


def test_prune_also_forgets_notes_that_are_no_longer_taken(
    ingestor: Ingestor, tmp_path: Path
) -> None:
    folder = tmp_path / "notes"
    write(folder / "a.md", "# A\n\nエー。\n")
    write(folder / "drafts" / "d.md", "# D\n\n下書き。\n")
    ingestor.run([folder])
    write(folder / ".shioriignore", "drafts/\n")
    assert ingestor.run([folder]).files_deleted == 0  # on disk: kept without prune
    assert sources(ingestor) == ["notes/a.md", "notes/drafts/d.md"]
    pruned = ingestor.run([folder], prune=True)
    assert pruned.files_deleted == 1 and pruned.forgotten[0]["path"] == "notes/drafts/d.md"
    assert sources(ingestor) == ["notes/a.md"]


# --- case 26: a folder renamed under a watched root ---------------------------------------------


def test_a_renamed_folder_is_read_at_its_new_name(ingestor: Ingestor, tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    write(vault / "index.md", "# 目次\n\n週ごとのノート。\n")
    write(vault / "week1" / "cnn.md", "# CNN\n\n畳み込み層はフィルタを滑らせる。\n")
    write(vault / "week1" / "rnn.md", "# RNN\n\n隠れ状態を渡す。\n")
    write(vault / "week1" / "skip" / "x.md", "# 無視\n\n無視される。\n")
    write(vault / ".shioriignore", "skip/\n")
    ingestor.run([vault])
    assert len(sources(ingestor)) == 3
    (vault / "week1").rename(vault / "week01")

    # what watchfiles reports for a folder rename: the folder, deleted and added; no file
    report = ingest_changes(ingestor, [vault], [vault / "week1", vault / "week01"])
    assert sources(ingestor) == ["vault/index.md", "vault/week01/cnn.md", "vault/week01/rnn.md"]
    assert (report.files_new, report.files_deleted) == (2, 2)
    assert report.embeddings_computed == 0 and report.embeddings_reused == 2
    assert sorted(report.forgotten, key=lambda f: f["path"]) == [
        {"path": "vault/week1/cnn.md", "reason": "moved to vault/week01/cnn.md"},
        {"path": "vault/week1/rnn.md", "reason": "moved to vault/week01/rnn.md"},
    ]
    # the two halves in separate batches come to the same index
    (vault / "week01").rename(vault / "w1")
    ingest_changes(ingestor, [vault], [vault / "week01"])
    assert sources(ingestor) == ["vault/index.md"]
    later = ingest_changes(ingestor, [vault], [vault / "w1"])
    assert later.files_new == 2
    assert sources(ingestor) == ["vault/index.md", "vault/w1/cnn.md", "vault/w1/rnn.md"]


def test_a_folder_name_reused_in_one_batch_forgets_the_notes_gone_from_it(
    ingestor: Ingestor, tmp_path: Path
) -> None:
    """mv vault/week1 vault/week1-old; mv vault/week2 vault/week1: one batch says week1 was
    added and deleted; week1 exists, and its old notes that are gone must not stay listed."""
    vault = tmp_path / "vault"
    write(vault / "week1" / "cnn.md", "# CNN\n\n畳み込み層はフィルタを滑らせる。\n")
    write(vault / "week2" / "attn.md", "# 注意\n\n内積を次元の平方根で割る。\n")
    ingestor.run([vault])
    (vault / "week1").rename(vault / "week1-old")
    (vault / "week2").rename(vault / "week1")

    changed = [vault / "week1", vault / "week1-old", vault / "week2"]
    report = ingest_changes(ingestor, [vault], changed)
    assert sources(ingestor) == ["vault/week1-old/cnn.md", "vault/week1/attn.md"]
    assert sorted(report.forgotten, key=lambda f: f["path"]) == [
        {"path": "vault/week1/cnn.md", "reason": "moved to vault/week1-old/cnn.md"},
        {"path": "vault/week2/attn.md", "reason": "moved to vault/week1/attn.md"},
    ]
    assert report.files_deleted == 2 and report.embeddings_computed == 0


def test_a_note_moved_into_another_ingested_folder_is_forgotten_at_its_old_path(
    ingestor: Ingestor, tmp_path: Path
) -> None:
    """ingest inbox/; mv inbox/a.md courses/t/a.md; ingest courses: the old record gave its
    vectors and its file is gone, so it is forgotten as moved (not left citable, unsaid)."""
    old = write(tmp_path / "inbox" / "a.md", "# 受信箱\n\n後で整理するメモ。\n")
    write(tmp_path / "inbox" / "b.md", "# 残る\n\n受信箱に残るメモ。\n")
    ingestor.run([tmp_path / "inbox"])
    new = tmp_path / "courses" / "t" / "a.md"
    new.parent.mkdir(parents=True)
    old.rename(new)

    report = ingestor.run([tmp_path / "courses"])
    assert report.files_new == 1 and report.embeddings_computed == 0
    assert report.forgotten == [{"path": "inbox/a.md", "reason": "moved to courses/t/a.md"}]
    assert report.files_deleted == 1
    assert sources(ingestor) == ["courses/t/a.md", "inbox/b.md"]


def test_a_copied_note_keeps_the_original(ingestor: Ingestor, tmp_path: Path) -> None:
    original = write(tmp_path / "inbox" / "a.md", "# 写し\n\n同じ内容のメモ。\n")
    ingestor.run([tmp_path / "inbox"])
    write(tmp_path / "courses" / "a.md", original.read_text(encoding="utf-8"))
    report = ingestor.run([tmp_path / "courses"])
    assert report.forgotten == [] and report.files_deleted == 0
    assert sources(ingestor) == ["courses/a.md", "inbox/a.md"]


def test_notes_in_a_folder_that_cannot_be_listed_are_kept(
    ingestor: Ingestor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """chmod 000 notes/locked (emulated: the tests may run as root, who lists anything): the
    folder is named in the warnings and its notes stay; they are not 'file is gone'."""
    folder = tmp_path / "notes"
    write(folder / "a.md", "# A\n\n本文A。\n")
    write(folder / "locked" / "b.md", "# B\n\n本文B。\n")
    ingestor.run([folder])
    locked = str((folder / "locked").resolve())
    real_scandir, real_stat = os.scandir, os.stat

    def scandir(path: Any = ".") -> Any:
        if str(path) == locked:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_scandir(path)

    def fake_stat(path: Any, *args: Any, **kwargs: Any) -> Any:
        if str(path).startswith(locked + "/"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os.path, "isfile", lambda p: not str(p).startswith(locked + "/"))
    monkeypatch.setattr(pipeline.os, "stat", fake_stat)
    for prune in (False, True):
        report = ingestor.run([folder], prune=prune)
        assert report.forgotten == [] and report.files_deleted == 0
        (warning,) = report.warnings
        assert warning["path"] == "notes/locked" and "cannot list" in warning["warning"]
        assert "kept" in warning["warning"]
        assert sources(ingestor) == ["notes/a.md", "notes/locked/b.md"]


def test_notes_behind_a_folder_link_whose_target_is_missing_are_kept(
    ingestor: Ingestor, tmp_path: Path
) -> None:
    """vault/drive -> a synced folder that is offline (unmounted): its notes are kept and the
    link is named; when the target is back, nothing was lost."""
    drive = tmp_path / "mnt" / "drive"
    write(drive / "lecture.md", "# 講義\n\n外付けドライブのノート。\n")
    vault = tmp_path / "vault"
    write(vault / "index.md", "# 目次\n\n目次。\n")
    (vault / "drive").symlink_to(drive, target_is_directory=True)
    ingestor.run([vault])
    drive.rename(tmp_path / "mnt" / "offline")

    report = ingestor.run([vault], prune=True)
    assert report.forgotten == [] and report.files_deleted == 0
    assert report.files_unsupported == 0
    (warning,) = report.warnings
    assert warning["path"] == "vault/drive" and "link target missing" in warning["warning"]
    assert sources(ingestor) == ["vault/drive/lecture.md", "vault/index.md"]
    # a change-batch naming the folder above it does not forget them either
    ingest_changes(ingestor, [vault], [vault])
    assert sources(ingestor) == ["vault/drive/lecture.md", "vault/index.md"]
    # back online, then the note deleted for real: through the (working) link it is gone
    (tmp_path / "mnt" / "offline").rename(drive)
    assert ingestor.run([vault]).files_unchanged == 2
    (drive / "lecture.md").unlink()
    gone = ingestor.run([vault])
    assert gone.forgotten == [{"path": "vault/drive/lecture.md", "reason": "file is gone"}]


# --- property: after any ingest the index is the folder as it is --------------------------------

NAMES = ("a.md", "b.md", "sub/c.md", "sub/deep/d.md", "e.txt")
TEXTS = ("# 一\n\n最初の本文。\n", "# 二\n\n二つ目の本文。\n", "", "---\ntitle: t\n---\n", "  \n")
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.sampled_from(NAMES), st.sampled_from(TEXTS)),
        st.tuples(st.just("delete"), st.sampled_from(NAMES), st.just("")),
        st.tuples(st.just("move"), st.sampled_from(NAMES), st.sampled_from(NAMES)),
        st.tuples(st.just("ingest"), st.just(""), st.just("")),
    ),
    max_size=12,
)


@pytest.fixture(scope="module")
def shared_ingestor() -> Iterator[Ingestor]:
    with tempfile.TemporaryDirectory() as where:
        made = make_ingestor(Path(where))
        yield made
        made.index.client.close()


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(OPS)
def test_after_any_ingest_only_the_notes_on_disk_are_citable(
    shared_ingestor: Ingestor, tmp_path: Path, ops: list[tuple[str, str, str]]
) -> None:
    """Any edits, deletions, renames and emptyings, then an ingest: every live passage is text
    its file holds now, every note with text is indexed, nothing else under the folder is."""
    folder = tmp_path / uuid.uuid4().hex  # one store for all examples; each its own folder
    folder.mkdir()
    for op, name, arg in [*ops, ("ingest", "", "")]:
        if op == "write":
            write(folder / name, arg)
        elif op == "delete":
            (folder / name).unlink(missing_ok=True)
        elif op == "move" and (folder / name).exists() and not (folder / arg).exists():
            (folder / arg).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).rename(folder / arg)
        elif op == "ingest":
            report = shared_ingestor.run([folder])
            assert report.files_failed == 0
            on_disk = {
                str(p): p.read_text(encoding="utf-8")
                for p in folder.rglob("*")
                if p.is_file() and p.suffix in (".md", ".txt")
            }
            with_text = {p for p, t in on_disk.items() if t.strip() and "本文" in t}
            records = {p for p in shared_ingestor.index.file_records() if p.startswith(str(folder))}
            assert records == with_text
            for chunk in shared_ingestor.index.chunks(live_only=False):
                if chunk.path.startswith(str(folder)):
                    assert chunk.path in with_text and chunk.text in on_disk[chunk.path]
