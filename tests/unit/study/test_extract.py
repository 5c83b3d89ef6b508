"""study.extract: each kind of item from small Japanese and English notes (question, answer,
lines, heading), stable ids, the spread over notes and headings, ``n`` and the heading filter."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from study.extract import candidates, language_of, subject_of
from study.items import StudyItem, fold, item_id
from tests.unit.study.notes import note

JA = """# Mamba：状態空間モデル

## 概要

Mamba とは選択的状態空間モデルである。
S4 は状態空間モデルの一種である。

## 公開情報

- 公開日は2023年12月1日である。
- 文脈長は100万トークンである。
- Mamba は Albert Gu らが提案した。
- 2024年5月に Mamba-2 が公開された。

## 仕組み

- 大きいモデルは並列スキャン、小さいモデルは畳み込みを使っている。
- 正規化には RMSNorm、活性化関数には SiLU が使われている。

## 比較

| 項目 | Mamba | Transformer |
|---|---|---|
| 計算量 | 線形 | 二乗 |
"""

EN = """# Mamba — state space models

## Basics

Mamba is a selective state space model.
S4 is a kind of state space model.
The context length is 1 million tokens.
Mamba was proposed by Albert Gu and Tri Dao in 2023.
Mamba was published on arXiv in December 2023.

## Design

The large model uses a parallel scan while the small model uses a convolution.

## Comparison

| | Mamba | Transformer |
|---|---|---|
| Cost | linear | quadratic |
"""

JA_EXPECTED = {
    # (kind, question, answer, line, last heading)
    ("definition", "Mambaとは何ですか？", "選択的状態空間モデル", 5, "概要"),
    ("definition", "S4は何の一種ですか？", "状態空間モデル", 6, "概要"),
    ("date", "Mamba の公開日はいつですか？", "2023年12月1日", 10, "公開情報"),
    ("number", "Mamba の文脈長は何ですか？", "100万トークン", 11, "公開情報"),
    ("name", "Mambaを提案したのは誰ですか？", "Albert Gu ら", 12, "公開情報"),
    ("date", "Mamba-2が公開されたのはいつですか？", "2024年5月", 13, "公開情報"),
    ("contrast", "Mamba の大きいモデルは何を使っていますか？", "並列スキャン", 17, "仕組み"),
    ("contrast", "Mamba の小さいモデルは何を使っていますか？", "畳み込み", 17, "仕組み"),
    ("contrast", "Mamba の正規化には何が使われていますか？", "RMSNorm", 18, "仕組み"),
    ("contrast", "Mamba の活性化関数には何が使われていますか？", "SiLU", 18, "仕組み"),
    ("table", "Mambaの計算量は何ですか？", "線形", 24, "比較"),
    ("table", "Transformerの計算量は何ですか？", "二乗", 24, "比較"),
}

EN_EXPECTED = {
    ("definition", "What is Mamba?", "selective state space model", 5, "Basics"),
    ("definition", "What is S4 a kind of?", "state space model", 6, "Basics"),
    ("number", "What is the context length in Mamba?", "1 million tokens", 7, "Basics"),
    ("name", "Who proposed Mamba?", "Albert Gu and Tri Dao", 8, "Basics"),
    ("date", "When was Mamba published on arXiv?", "December 2023", 9, "Basics"),
    ("contrast", "What does the large model in Mamba use?", "parallel scan", 13, "Design"),
    ("contrast", "What does the small model in Mamba use?", "convolution", 13, "Design"),
    ("table", "What is the cost of Mamba?", "linear", 19, "Comparison"),
    ("table", "What is the cost of Transformer?", "quadratic", 19, "Comparison"),
}


def summary(items: list[StudyItem]) -> set[tuple[str, str, str, int, str]]:
    return {(i.kind, i.question, i.answer, i.lines[0], i.heading[-1]) for i in items}


@pytest.mark.parametrize(
    ("name", "text", "expected", "language"),
    [("ja.md", JA, JA_EXPECTED, "ja"), ("en.md", EN, EN_EXPECTED, "en")],
)
def test_each_kind_gives_its_question_answer_and_lines(
    tmp_path: Path, name: str, text: str, expected: set[tuple[str, str, str, int, str]], language
) -> None:
    items = candidates(note(tmp_path, name, text))
    assert summary(items) == expected
    lines = text.split("\n")
    for item in items:
        first, last = item.lines
        assert first == last
        written = lines[first - 1]
        assert item.evidence.strip("- ") in written or item.evidence in written  # the line itself
        assert fold(item.answer) in fold(written)  # the answer is on the cited line
        assert item.language == language
        assert item.source == name
        assert item.heading[0] in {"Mamba：状態空間モデル", "Mamba — state space models"}


def test_ids_are_stable_and_depend_on_source_evidence_and_question(tmp_path: Path) -> None:
    first = candidates(note(tmp_path, "ja.md", JA))
    again = candidates(note(tmp_path, "ja.md", JA))
    assert [i.id for i in first] == [i.id for i in again]
    assert len({i.id for i in first}) == len(first)
    for i in first:
        assert i.id == item_id(i.source, i.evidence, i.question)
        assert len(i.id) == 16 and set(i.id) <= set(string.hexdigits.lower())
    # the same note under another name: other ids; an edit elsewhere in the note: same ids
    other = candidates(note(tmp_path, "ja-copy.md", JA))
    assert not {i.id for i in other} & {i.id for i in first}
    edited = candidates(note(tmp_path, "ja.md", JA + "\n追記：関係のない一文。\n"))
    assert {i.id for i in first} <= {i.id for i in edited}


def test_items_are_spread_over_headings_and_notes(tmp_path: Path) -> None:
    items = candidates(note(tmp_path, "ja.md", JA))
    # round-robin: the first four come from the four sections, in the note's order
    assert [i.heading[-1] for i in items[:4]] == ["概要", "公開情報", "仕組み", "比較"]
    both = candidates([*note(tmp_path, "en.md", EN), *note(tmp_path, "ja.md", JA)])
    assert [i.source for i in both[:4]] == ["en.md", "ja.md", "en.md", "ja.md"]
    assert {i.heading[-1] for i in both[:6]} >= {"Basics", "概要", "Design", "公開情報"}


def test_n_and_the_heading_filter(tmp_path: Path) -> None:
    chunks = note(tmp_path, "ja.md", JA)
    assert len(candidates(chunks, n=3)) == 3
    assert candidates(chunks, n=3) == candidates(chunks)[:3]
    only = candidates(chunks, heading="公開情報")
    assert {i.heading[-1] for i in only} == {"公開情報"}
    assert len(only) == 4
    assert candidates(chunks, heading="ｃｏｍｐａｒｉｓｏｎ") == []  # no such heading in ja.md
    en = candidates(note(tmp_path, "en.md", EN), heading="ｄｅｓｉｇｎ")  # width and case aside
    assert [i.answer for i in en] == ["parallel scan", "convolution"]


def test_subject_and_language() -> None:
    assert subject_of("Gemma：Google のオープンウェイト LLM") == "Gemma"
    assert subject_of("QLoRA — fine-tuning a quantised base model") == "QLoRA"
    assert subject_of("初代 Gemma（2024年2月）") == "初代 Gemma"
    assert language_of(JA) == "ja"
    assert language_of(EN) == "en"
    assert language_of("LoRA adapters use a rank r (ランク) of 8.") == "en"


def test_code_and_headings_are_not_questions(tmp_path: Path) -> None:
    text = "# Notes\n\n```\nx = 1\nThe value is 42.\n```\n\n## The size is 7 bytes.\n\nok.\n"
    assert candidates(note(tmp_path, "code.md", text)) == []


facts = st.sampled_from(
    [
        ("{x} とは{y}である。", "definition"),
        ("- 公開日は{d}である。", "date"),
        ("- 文脈長は{k}トークンである。", "number"),
    ]
)
names = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ", min_size=2, max_size=6)
kana = st.text(alphabet="あいうえおかきくけこさしすせそたちつてと", min_size=2, max_size=8)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sections=st.lists(
        st.tuples(names, facts, kana, st.integers(1990, 2030), st.integers(1, 99999)),
        min_size=1,
        max_size=6,
    ),
    n=st.integers(1, 8),
)
def test_every_item_is_on_its_line_and_n_holds(
    tmp_path_factory: pytest.TempPathFactory, sections, n: int
) -> None:
    """Any note of such sections: every item's answer stands on its cited line under its
    heading, ids are unique, at most n are drawn, and the first ones cover distinct headings."""
    body = ["# テーマ：試験", ""]
    for k, (x, (template, _), y, year, count) in enumerate(sections):
        body += [f"## 節{k}", "", template.format(x=x, y=y, d=f"{year}年", k=count), ""]
    text = "\n".join(body)
    tmp = tmp_path_factory.mktemp("prop")
    items = candidates(note(tmp, "t.md", text))
    lines = text.split("\n")
    assert len({i.id for i in items}) == len(items)
    for item in items:
        line = lines[item.lines[0] - 1]
        assert fold(item.answer) in fold(line)
        assert f"## {item.heading[-1]}" in lines[: item.lines[0]]
    drawn = candidates(note(tmp, "t.md", text), n=n)
    assert len(drawn) == min(n, len(items))
    headings = [i.heading[-1] for i in drawn]
    assert len(set(headings)) == len(headings)  # one fact per section: round-robin


def test_adverbs_are_not_defined_terms(tmp_path: Path) -> None:
    """「もともとは…である」 holds "とは" but defines nothing (seen in notes/03)."""
    text = (
        "# BPE\n\n- もともとは1994年に発表されたデータ圧縮のアルゴリズムである。\n"
        "- BPE とは圧縮の手法である。\n"
    )
    assert [(i.question, i.answer) for i in candidates(note(tmp_path, "b.md", text))] == [
        ("BPEとは何ですか？", "圧縮の手法")
    ]
