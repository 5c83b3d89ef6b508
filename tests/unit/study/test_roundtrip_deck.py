"""study.roundtrip's judgement on answer bodies and its loop (a scripted answerer), and
study.deck: the .apkg read back (zip + SQLite), stable GUIDs, TSV/CSV."""

from __future__ import annotations

import asyncio
import csv
import sqlite3
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from study.deck import DECK_ID, MODEL_ID, write_anki, write_table
from study.items import StudyItem
from study.roundtrip import judge, quiz

ITEM = StudyItem.make(
    question="Mamba の文脈長は何ですか？",
    answer="100万トークン",
    evidence="文脈長は100万トークンである。",
    source="notes/mamba.md",
    heading=("Mamba：状態空間モデル", "公開情報"),
    lines=(11, 11),
    page=None,
    language="ja",
    kind="number",
)
EN_ITEM = StudyItem.make(
    question="Who proposed Mamba?",
    answer="Albert Gu and Tri Dao",
    evidence="Mamba was proposed by Albert Gu and Tri Dao in 2023.",
    source="notes/mamba-en.md",
    heading=("Mamba — state space models", "Basics"),
    lines=(8, 8),
    page=None,
    language="en",
    kind="name",
)


def body(answer: str, source: str = "notes/mamba.md", lines=(9, 13), abstained=False) -> dict:
    return {
        "answer": answer,
        "abstained": abstained,
        "reason": "weak_evidence" if abstained else "answered",
        "citations": [] if abstained else [{"source": source, "lines": list(lines)}],
        "sentences": [{"verifier": 0.91}, {"verifier": 0.97}],
    }


def test_judge_keeps_a_folded_match_citing_the_evidence_lines() -> None:
    check = judge(ITEM, body("Mamba の文脈長は１００万 トークンです[1]。"), 4.2)
    assert check.kept and check.contains_answer and check.cites_evidence
    assert check.verifier == 0.91 and check.seconds == 4.2
    assert check.citations == ({"source": "notes/mamba.md", "lines": [9, 13]},)


def test_judge_refuses_abstention_wrong_answer_and_wrong_citation() -> None:
    refusal = "ノートにはこの質問の答えが見つかりませんでした。"
    abstained = judge(ITEM, body(refusal, abstained=True))
    assert not abstained.kept and abstained.abstained and not abstained.contains_answer
    wrong = judge(ITEM, body("文脈長は8,192トークンです[1]。"))
    assert not wrong.kept and not wrong.contains_answer and wrong.cites_evidence
    other_note = judge(ITEM, body("100万トークンです[1]。", source="notes/other.md"))
    assert not other_note.kept and other_note.contains_answer and not other_note.cites_evidence
    other_lines = judge(ITEM, body("100万トークンです[1]。", lines=(20, 30)))
    assert not other_lines.kept and not other_lines.cites_evidence


@dataclass
class Scripted:
    """An answerer that answers from a table of question → body."""

    replies: dict[str, dict[str, Any]]
    asked: list[str]

    async def ask(self, question: str) -> Any:
        self.asked.append(question)
        reply = self.replies[question]

        class A:
            def to_json(self) -> dict[str, Any]:
                return reply

        return A()


def test_quiz_stops_once_n_are_kept_and_records_every_check() -> None:
    items = [EN_ITEM, ITEM]
    answerer = Scripted(
        {
            EN_ITEM.question: body("I cannot tell.", abstained=True),
            ITEM.question: body("100万トークンです[1]。"),
        },
        [],
    )
    result = asyncio.run(quiz(answerer, items, n=1))  # type: ignore[arg-type]
    assert [i.id for i in result.items] == [ITEM.id]
    assert [i.check.kept for i in result.checked if i.check] == [False, True]
    assert result.candidates == 2 and answerer.asked == [EN_ITEM.question, ITEM.question]
    answerer.asked.clear()
    once = asyncio.run(quiz(answerer, [ITEM, EN_ITEM], n=1))  # type: ignore[arg-type]
    assert answerer.asked == [ITEM.question] and len(once.items) == 1
    unchecked = asyncio.run(quiz(None, items, n=1))
    assert unchecked.items == [EN_ITEM] and unchecked.items[0].check is None
    assert unchecked.to_json()["kept"] == 1


def read_apkg(path: Path, tmp: Path) -> tuple[list[tuple[str, list[str], str]], dict]:
    with zipfile.ZipFile(path) as z:
        assert "collection.anki2" in z.namelist()
        z.extract("collection.anki2", tmp)
    db = sqlite3.connect(tmp / "collection.anki2")
    try:
        notes = [
            (guid, flds.split("\x1f"), tags)
            for guid, flds, tags in db.execute("select guid, flds, tags from notes order by id")
        ]
        models = db.execute("select models, decks from col").fetchone()
    finally:
        db.close()
    return notes, {"models": models[0], "decks": models[1]}


def test_anki_deck_reads_back_with_stable_guids(tmp_path: Path) -> None:
    items = [ITEM, EN_ITEM]
    first = write_anki(items, tmp_path / "a" / "deck.apkg")
    notes, col = read_apkg(first, tmp_path / "a")
    assert [n[0] for n in notes] == [ITEM.id, EN_ITEM.id]
    question, answer, evidence, citation, ident = notes[0][1]
    assert (question, answer, evidence, ident) == (
        ITEM.question,
        ITEM.answer,
        ITEM.evidence,
        ITEM.id,
    )
    assert citation == "notes/mamba.md:11 — Mamba：状態空間モデル &gt; 公開情報"  # escaped
    assert set(notes[0][2].split()) == {"shiori", "number", "ja"}
    assert str(MODEL_ID) in col["models"] and str(DECK_ID) in col["decks"]
    again = write_anki(list(reversed(items)), tmp_path / "b" / "deck.apkg")
    notes_again, _ = read_apkg(again, tmp_path / "b")
    assert {n[0] for n in notes_again} == {n[0] for n in notes}  # re-export: same GUIDs


def test_tsv_and_csv(tmp_path: Path) -> None:
    for name, delimiter in (("cards.tsv", "\t"), ("cards.csv", ",")):
        path = write_table([ITEM, EN_ITEM], tmp_path / name)
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f, delimiter=delimiter))
        assert [r["id"] for r in rows] == [ITEM.id, EN_ITEM.id]
        assert rows[1]["answer"] == "Albert Gu and Tri Dao"
        assert rows[0]["heading"] == "Mamba：状態空間モデル > 公開情報"
        assert rows[0]["lines"] == "11-11" and rows[1]["evidence"] == EN_ITEM.evidence


def test_each_deck_name_is_its_own_deck_and_the_same_name_the_same_deck() -> None:
    from study.deck import DECK, deck_id

    assert deck_id(DECK) == DECK_ID
    assert deck_id("Shiori::gemma") == deck_id("Shiori::gemma")
    ids = {deck_id(f"Shiori::{n}") for n in ("gemma", "lora", "rag", "week3")}
    assert len(ids) == 4 and DECK_ID not in ids
    assert all(0 < i < 2**31 for i in ids)
