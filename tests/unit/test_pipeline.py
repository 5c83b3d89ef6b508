"""How ingested notes are named in citations (the rest of the pipeline runs with the real model
in tests/integration/test_ingest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.pipeline import display_path


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
