"""The text under a chat answer (`rag.footnote`) is written in one place and read back in one
place: what the chat route writes, the rewrite's history leaves out."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from rag.conversation import Turn, cleaned
from rag.footnote import CHECKED, LABELS, footnote, restated, without_footnote
from shiori.index import Chunk


def chunk(index: int) -> Chunk:
    return Chunk(
        path="/n/w.md", source="n/w.md", title="W", headings=["W", "歴史"], line_start=3,
        line_end=4, char_start=0, char_end=5, text="Word2Vec は 2013 年。", chunk_index=index,
        content_hash=str(index),
    )  # fmt: skip


def answer(abstained: bool, rewritten: bool) -> Any:
    evidence = SimpleNamespace(source=1, line_start=3, line_end=3, text="Word2Vec は 2013 年。 ")
    return SimpleNamespace(
        answer="NOT_FOUND" if abstained else "2013 年です [1]。",
        abstained=abstained,
        question="Word2Vec はいつ発表されましたか？",
        rewrite=SimpleNamespace(
            message="それはいつ？", question="Word2Vec はいつ発表されましたか？"
        )
        if rewritten
        else None,
        checks=[SimpleNamespace(supported=True, evidence=[evidence, evidence])],
        passages=[SimpleNamespace(chunk=chunk(0)), SimpleNamespace(chunk=chunk(1))],
    )


def test_the_footnote_of_an_answer_and_of_an_abstention() -> None:
    assert footnote(answer(False, False)) == (
        "\n\nSources:\n[1] n/w.md:3 — W > 歴史: “Word2Vec は 2013 年。”"
    )
    assert footnote(answer(True, True)) == (
        "\n\nQuestion answered: Word2Vec はいつ発表されましたか？"
        "\n\nClosest passages:\n[1] n/w.md:3-4 — W > 歴史\n[2] n/w.md:3-4 — W > 歴史"
    )
    assert restated(answer(False, False)) == "\n\nChecked answer: 2013 年です [1]。"
    assert restated(answer(True, False)) == "\n\nNOT_FOUND"


def test_what_the_chat_route_writes_leaves_the_history() -> None:
    for abstained in (False, True):
        for rewritten in (False, True):
            said = answer(abstained, rewritten)
            streamed = "GloVe です [1]。"  # a draft, then the checked answer and the sources
            text = streamed + restated(said) + footnote(said)
            if abstained:  # an abstention is restated without a label: the draft stays
                assert without_footnote(text) == streamed + "\n\nNOT_FOUND"
                continue
            assert without_footnote(text) == said.answer
            assert cleaned(Turn("assistant", text), 400) == "2013 年です。"
            assert without_footnote(said.answer + footnote(said)) == said.answer


def test_every_label_is_one_the_reader_knows() -> None:
    for label in LABELS:
        kept = "x" if label == CHECKED else "draft"  # a checked answer replaces the draft
        assert without_footnote(f"draft\n\n{label}: x\n\nSources:\n[1] y") == kept
