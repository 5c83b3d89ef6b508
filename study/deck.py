"""Flashcards from study items: an Anki deck (genanki) and TSV/CSV files.

A card's front is the question; its back the answer, the evidence sentence and the citation
(note:lines — heading path). The note type and the deck have fixed ids and each note's GUID is
its item's stable id (`study.items.item_id`), so importing a re-exported deck updates the cards
already in Anki instead of adding copies.
"""

from __future__ import annotations

import csv
import hashlib
import html
from collections.abc import Sequence
from pathlib import Path

import genanki

from study.items import StudyItem

MODEL_ID = 1_607_392_319  # fixed: Anki recognises the note type across exports
DECK_ID = 2_059_400_110  # the deck named "Shiori": the same deck across exports
DECK = "Shiori"


def deck_id(name: str) -> int:
    """A deck's Anki id from its name: the same name is the same deck in every export (so
    importing again updates it), another name another deck. ``DECK_ID`` for ``DECK``; else
    the first 31 bits of the name's SHA-256 (Anki ids are positive 64-bit integers)."""
    if name == DECK:
        return DECK_ID
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") >> 1 or 1


FIELDS = ("Question", "Answer", "Evidence", "Citation", "Id")
COLUMNS = ("id", "question", "answer", "evidence", "source", "heading", "lines", "kind", "language")

_CSS = """.card { font-family: sans-serif; font-size: 20px; text-align: left; }
.evidence { margin-top: 1em; color: #444; font-size: 16px; }
.citation { margin-top: .5em; color: #777; font-size: 14px; font-family: monospace; }"""

MODEL = genanki.Model(
    MODEL_ID,
    "Shiori question (note, heading, lines)",
    fields=[{"name": f} for f in FIELDS],
    templates=[
        {
            "name": "Question → answer with its evidence",
            "qfmt": "{{Question}}",
            "afmt": (
                '{{FrontSide}}<hr id="answer">{{Answer}}'
                '<div class="evidence">{{Evidence}}</div>'
                '<div class="citation">{{Citation}}</div>'
            ),
        }
    ],
    css=_CSS,
)


def note_for(item: StudyItem) -> genanki.Note:
    """The Anki note of ``item``: fields HTML-escaped (note text is text), GUID = item id,
    tags shiori, its kind and language."""
    return genanki.Note(
        model=MODEL,
        fields=[
            html.escape(item.question),
            html.escape(item.answer),
            html.escape(item.evidence),
            html.escape(item.citation),
            item.id,
        ],
        guid=item.id,
        tags=["shiori", item.kind, item.language],
    )


def write_anki(items: Sequence[StudyItem], path: Path, name: str = DECK) -> Path:
    """Write ``items`` as an Anki package (.apkg) at ``path``, in the deck ``name`` (its id
    from the name: `deck_id`); returns ``path``. Raises OSError when it cannot be written."""
    deck = genanki.Deck(
        deck_id(name), name, description="Questions drawn from your notes by Shiori."
    )
    for item in items:
        deck.add_note(note_for(item))
    path.parent.mkdir(parents=True, exist_ok=True)
    genanki.Package(deck).write_to_file(str(path))
    return path


def write_table(items: Sequence[StudyItem], path: Path) -> Path:
    """Write ``items`` as a table with a header row (`COLUMNS`): tab-separated for a .tsv
    name, comma-separated otherwise (the csv module's quoting either way); ``heading`` is the
    path joined by " > ", ``lines`` "first-last". Returns ``path``."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(COLUMNS)
        for i in items:
            writer.writerow(
                [
                    i.id,
                    i.question,
                    i.answer,
                    i.evidence,
                    i.source,
                    " > ".join(i.heading),
                    f"{i.lines[0]}-{i.lines[1]}",
                    i.kind,
                    i.language,
                ]
            )
    return path
