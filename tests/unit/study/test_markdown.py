"""Questions and answers are made from what a reader sees of a note, not its Markdown: emphasis,
code ticks and link syntax never reach a question, an answer or a card (an answer holding
"](https://" could never be given back, and the card would show raw syntax); the evidence
stays as the note has it."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from study.extract import candidates, inline_text
from tests.unit.study.notes import note

NOTE = """# 状態空間モデルのメモ

## Mamba

- **Mamba** とは[選択的状態空間モデル](https://arxiv.org/abs/2312.00752)である。
- **公開日**: 2023年12月1日

## モデル一覧

| モデル | パラメータ数 | 公開年 |
|---|---|---|
| Mamba-S | [1.4B](https://example.org/mamba) | 2023年 |
| `Mamba-L` | **2.8B** | 2023年 |
"""

SYNTAX = ("**", "](", "http", "`", "__")


def test_markdown_syntax_reaches_no_question_or_answer(tmp_path: Path) -> None:
    items = candidates(note(tmp_path, "mamba.md", NOTE))
    answers = {i.answer for i in items}
    assert "選択的状態空間モデル" in answers
    assert "1.4B" in answers and "2.8B" in answers
    for item in items:
        for text in (item.question, item.answer):
            assert not any(s in text for s in SYNTAX), text
        assert item.evidence in NOTE  # the evidence as written


WORDS = st.text(alphabet="abcあいう漢字 ", min_size=1, max_size=8).filter(str.strip)


@given(WORDS, WORDS, st.sampled_from(["**{}**", "`{}`", "[{}](https://x.org/a)", "_{}_"]))
def test_inline_text_keeps_the_words_and_drops_the_syntax(a: str, b: str, wrap: str) -> None:
    text = inline_text(f"{a.strip()} {wrap.format(b.strip())}")
    assert text == f"{a.strip()} {b.strip()}"
