"""Grounded answers from the real model over the bundled notes, verified and cited."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from service.rag.answer import Answer, Answerer, LLMUnavailableError
from service.rag.retrieve import Retriever
from shiori.config import Settings
from shiori.embedding import Embedder
from shiori.index import NoteIndex

pytestmark = pytest.mark.slow


def ask(settings: Settings, index: NoteIndex, embedder: Embedder, question: str) -> Answer:
    answerer = Answerer(settings, Retriever(index, embedder), Answerer.client_for(settings))
    return asyncio.run(answerer.ask(question))


def cited_notes(answer: Answer) -> set[str]:
    return {Path(answer.passages[n - 1].chunk.path).name for n in answer.cited}


def test_japanese_question_is_answered_with_a_citation_to_the_right_lines(
    llm_settings: Settings, notes_index: NoteIndex, embedder: Embedder
) -> None:
    answer = ask(llm_settings, notes_index, embedder, "Gemma が公開されたのはいつですか？")
    assert not answer.abstained, (answer.reason, answer.answer)
    assert "2024" in answer.answer and "21" in answer.answer
    assert "05-gemma.md" in cited_notes(answer)
    gemma = next(answer.passages[n - 1].chunk for n in answer.cited
                 if answer.passages[n - 1].chunk.path.endswith("05-gemma.md"))  # fmt: skip
    lines = Path(gemma.path).read_text(encoding="utf-8").splitlines()
    assert any("2月21日" in ln for ln in lines[gemma.line_start - 1 : gemma.line_end])
    assert answer.invalid_markers == []
    assert all(c.supported for c in answer.checks if c.markers)


def test_english_question_over_japanese_notes(
    llm_settings: Settings, notes_index: NoteIndex, embedder: Embedder
) -> None:
    # only the Japanese note 05-gemma.md says when Gemma came out
    answer = ask(llm_settings, notes_index, embedder, "When did Google release Gemma?")
    assert not answer.abstained, (answer.reason, answer.answer)
    assert "2024" in answer.answer
    assert "05-gemma.md" in cited_notes(answer)
    assert all(c.supported for c in answer.checks)


@pytest.mark.parametrize(
    "question",
    [
        "Gemma 2 の 27B モデルは何兆トークンで学習されましたか？",
        "What is the price of Claude 3.5 Sonnet per million tokens?",
        "フランスの首都はどこですか？",
    ],
)
def test_questions_the_notes_cannot_answer_are_refused(
    llm_settings: Settings, notes_index: NoteIndex, embedder: Embedder, question: str
) -> None:
    answer = ask(llm_settings, notes_index, embedder, question)
    assert answer.abstained, answer.answer
    assert answer.passages  # the closest sources are still there to show


def test_llm_down_raises_a_clear_error(notes_index: NoteIndex, embedder: Embedder) -> None:
    from tests.integration.conftest import free_port

    nowhere = Settings(llm_url=f"http://127.0.0.1:{free_port()}/v1", llm_timeout_s=5)
    with pytest.raises(LLMUnavailableError, match="did not answer"):
        ask(nowhere, notes_index, embedder, "Gemma が公開されたのはいつですか？")
