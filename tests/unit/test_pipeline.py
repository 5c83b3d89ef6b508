"""How ingested notes are named in citations, and what an ingest report names (the rest of the
pipeline runs with the real model in tests/integration/test_ingest.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.pipeline import (
    UNSUPPORTED_NAMED,
    Ingestor,
    IngestReport,
    display_path,
    unsupported_reason,
)
from shiori.config import Settings
from shiori.index import NoteIndex, open_client
from tests.unit.test_remove_watch import HashEmbedder


def test_notes_are_named_relative_to_the_working_directory_or_the_uploads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    uploads = tmp_path / "data" / "uploads"
    assert display_path(tmp_path / "notes" / "a.md", uploads) == "notes/a.md"
    assert display_path(uploads / "しおり.md", uploads) == "uploads/しおり.md"
    assert display_path(uploads / "sub" / "b.md", uploads) == "uploads/sub/b.md"
    elsewhere = Path("/srv/notes/c.md")
    assert display_path(elsewhere, uploads) == "/srv/notes/c.md"
    assert display_path(elsewhere) == "/srv/notes/c.md"


# --- files of unsupported types are named (issue 25 review) -------------------------------------


@pytest.fixture
def ingestor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ingestor]:
    """The real pipeline over a real embedded store; only the embedder is a small stand-in."""
    monkeypatch.chdir(tmp_path)
    settings = Settings(
        qdrant=str(tmp_path / "store"), collection="c", uploads_dir=tmp_path / "uploads"
    )
    index = NoteIndex(open_client(settings), settings, HashEmbedder.dimension)
    index.ensure_collections()
    yield Ingestor(settings, index, HashEmbedder())  # type: ignore[arg-type]
    index.client.close()


def write(path: Path, text: str = "# note\n\n本文です。\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_files_of_unsupported_types_are_named_with_why_and_counted_by_type(
    ingestor: Ingestor, tmp_path: Path
) -> None:
    write(tmp_path / "notes" / "a.md")
    for i in range(UNSUPPORTED_NAMED + 3):
        write(tmp_path / "notes" / "photos" / f"img{i:02d}.png", "x")
    write(tmp_path / "notes" / "report.docx", "x")
    write(tmp_path / "notes" / "Makefile", "x")
    report = ingestor.run([tmp_path / "notes"])
    assert report.files_new == 1
    assert report.files_unsupported == UNSUPPORTED_NAMED + 5
    assert report.unsupported_types == {".png": UNSUPPORTED_NAMED + 3, ".docx": 1, "": 1}
    # the first ones by name, each with why, in walk order (sorted, folder by folder)
    assert len(report.unsupported) == UNSUPPORTED_NAMED
    assert report.unsupported[:2] == [
        {"path": "notes/Makefile", "warning": unsupported_reason(Path("Makefile"))},
        {"path": "notes/report.docx", "warning": unsupported_reason(Path("report.docx"))},
    ]
    assert report.unsupported[2]["path"] == "notes/photos/img00.png"
    assert "a .png file" in report.unsupported[2]["warning"]
    assert "without an extension" in report.unsupported[0]["warning"]
    # in the JSON report as well
    assert report.to_dict()["unsupported"] == report.unsupported


def test_the_cli_prints_the_unsupported_files_a_service_names(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from shiori.cli.notes import _print_remote_warnings, _print_report

    named = [{"path": f"notes/img{i}.png", "warning": "not read: a .png file"} for i in range(3)]
    report = {
        **IngestReport(files_seen=1, files_new=1, files_unsupported=5).to_dict(),
        "unsupported": named,
        "unsupported_types": {".png": 4, ".docx": 1},
    }
    _print_remote_warnings(report)
    _print_report(report, as_json=False, where="http://svc")
    out = capsys.readouterr().err
    for item in named:
        assert f"{item['path']}: not read: a .png file" in out
    assert "… and 2 more files of unsupported types not read (.png 4, .docx 1)" in out
    assert "5 of unsupported types skipped (.png 4, .docx 1)" in out


# --- one file is one note, however it is reached (issue 25 review) ------------------------------


def sources(ingestor: Ingestor) -> list[str]:
    return sorted(r.source for r in ingestor.index.file_records().values())


def linked(tmp_path: Path) -> tuple[Path, Path]:
    """notes/a.md, and other/l -> ../notes (the notes folder linked into another folder)."""
    write(tmp_path / "notes" / "a.md")
    write(tmp_path / "other" / "b.md", "# b\n\n別のノート。\n")
    (tmp_path / "other" / "l").symlink_to("../notes", target_is_directory=True)
    return tmp_path / "notes", tmp_path / "other"


def test_a_folder_ingested_through_a_link_then_directly_stays_one_note(
    ingestor: Ingestor, tmp_path: Path
) -> None:
    notes, other = linked(tmp_path)
    ingestor.run([other])
    assert sources(ingestor) == ["other/b.md", "other/l/a.md"]
    # both as roots: the direct path is the note's identity, the link's copy is forgotten
    report = ingestor.run([notes, other])
    assert sources(ingestor) == ["notes/a.md", "other/b.md"]
    (gone,) = report.forgotten
    assert gone["path"] == "other/l/a.md" and "same file as notes/a.md" in gone["reason"]
    assert report.duplicates == []
    # the link's folder alone again: the file is indexed once already, at its direct path
    report = ingestor.run([other])
    assert sources(ingestor) == ["notes/a.md", "other/b.md"]
    assert {"path": "other/l/a.md"} in [{"path": w["path"]} for w in report.warnings]


def test_a_note_indexed_through_a_link_is_not_indexed_again_from_its_folder(
    ingestor: Ingestor, tmp_path: Path
) -> None:
    notes, other = linked(tmp_path)
    ingestor.run([other])
    report = ingestor.run([notes])  # another ingest holds it under other/: it stays there
    assert sources(ingestor) == ["other/b.md", "other/l/a.md"]
    (warning,) = [w for w in report.warnings if w["path"] == "notes/a.md"]
    assert "same file as other/l/a.md" in warning["warning"]
    # and a change to it reaches that note
    write(notes / "a.md", "# note\n\n書き換えた本文です。\n")
    report = ingestor.run([notes])
    assert report.files_updated == 1
    assert sources(ingestor) == ["other/b.md", "other/l/a.md"]


def test_links_and_hard_links_to_one_file_in_one_run_are_one_note(
    ingestor: Ingestor, tmp_path: Path
) -> None:
    a = write(tmp_path / "notes" / "z.md")
    (tmp_path / "notes" / "alias.md").symlink_to("z.md")
    os.link(a, tmp_path / "notes" / "sub-hard.md")
    report = ingestor.run([tmp_path / "notes"])
    # a path without a link is preferred; then the first in walk order
    assert sources(ingestor) == ["notes/sub-hard.md"]
    assert report.files_new == 1 and report.duplicates == []
    skipped = sorted(w["path"] for w in report.warnings if "same file" in w["warning"])
    assert skipped == ["notes/alias.md", "notes/z.md"]
