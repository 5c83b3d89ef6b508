"""`shiori quiz`'s parts with the real models: three bundled notes in an embedded store (real
EmbeddingGemma), candidates drawn from the store, asked back through the real answer path (the
session's vLLM, the grounding verifier), the kept items checked against the notes on disk, and
the Anki deck written and read back."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.parts import Runtime
from shiori.config import Settings
from shiori.embedding import Embedder
from shiori.index import NoteIndex, open_client
from study.deck import write_anki
from study.extract import draw
from study.items import fold
from study.roundtrip import quiz
from tests.conftest import NOTES
from tests.integration.conftest import settings_for

pytestmark = pytest.mark.slow
CHOSEN = ("05-gemma.md", "09-lora.md", "10-qlora-en.md")


@pytest.fixture(scope="module")
def study_parts(
    tmp_path_factory: pytest.TempPathFactory,
    embedder: Embedder,
    llm_settings: Settings,
    loop: asyncio.Runner,
) -> Iterator[tuple[Runtime, Path]]:
    root = tmp_path_factory.mktemp("study")
    notes = root / "notes"
    notes.mkdir()
    for name in CHOSEN:
        shutil.copy(NOTES / name, notes / name)
    store = Settings(qdrant=str(root / "store"), collection="notes")
    index = NoteIndex(open_client(store), store, embedder.dimension)
    index.ensure_collections()
    parts = Runtime.assemble(settings_for(index, llm_settings), embedder, index)
    report = parts.ingestor.run([notes])
    assert report.files_new == len(CHOSEN)
    yield parts, notes
    loop.run(parts.aclose())


def test_quiz_round_trip_keeps_items_grounded_in_their_notes(
    study_parts: tuple[Runtime, Path], loop: asyncio.Runner, tmp_path: Path
) -> None:
    parts, notes = study_parts
    drawn = draw(parts.index, [notes])
    assert {Path(i.source).name for i in drawn} == set(CHOSEN)  # every note gives questions
    assert draw(parts.index, [notes / "05-gemma.md"], heading="公開情報")
    assert all("公開情報" in i.heading for i in draw(parts.index, [notes], heading="公開情報"))
    result = loop.run(quiz(parts.answerer, drawn[:12], n=3))
    assert result.items, [(i.question, i.check) for i in result.checked]
    for item in result.items:
        check = item.check
        assert check is not None and check.kept and not check.abstained
        # the answer stands in the note's cited lines on disk …
        text = (notes / Path(item.source).name).read_text(encoding="utf-8").split("\n")
        cited = "\n".join(text[item.lines[0] - 1 : item.lines[1]])
        assert fold(item.answer) in fold(cited), (item.answer, cited)
        assert item.evidence.strip() in cited
        # … and Shiori's answer gave it back, citing that note and those lines
        assert fold(item.answer) in fold(check.answer)
        assert any(
            c["source"] == item.source
            and c["lines"][0] <= item.lines[1]
            and item.lines[0] <= c["lines"][1]
            for c in check.citations
        )
    for item in result.checked:
        assert item.check is not None
        assert item.check.kept == (
            not item.check.abstained and item.check.contains_answer and item.check.cites_evidence
        )
    # the deck of the kept items, read back: one note per item, GUID = item id
    deck = write_anki(result.items, tmp_path / "quiz.apkg")
    with zipfile.ZipFile(deck) as z:
        z.extract("collection.anki2", tmp_path)
    db = sqlite3.connect(tmp_path / "collection.anki2")
    try:
        rows = db.execute("select guid, flds from notes").fetchall()
    finally:
        db.close()
    assert {guid for guid, _ in rows} == {i.id for i in result.items}
    by_guid = {guid: flds.split("\x1f") for guid, flds in rows}
    for item in result.items:
        assert by_guid[item.id][4] == item.id
        assert item.source in by_guid[item.id][3]  # the citation on the back
