"""How ingested notes are named in citations, and what an ingest report names (the rest of the
pipeline runs with the real model in tests/integration/test_ingest.py)."""

from __future__ import annotations

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
