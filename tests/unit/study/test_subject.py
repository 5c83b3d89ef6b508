"""study.extract: how a question's subject is chosen (the faults of docs/quiz-reader-check.md,
reproduced on small notes): never a title or heading that joins two names when the evidence is
about one, the nearest heading that names the thing when the sentence does not, dropped when
nothing names it; answers without copula endings; English questions without template debris."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from study.extract import candidates
from tests.unit.study.notes import note

PAIR = """# Foo と Bar：二つのモデル

## Foo（2018年）

### 基本情報

- 正式名称：Foo Original Model
- 事前学習データは BooksCorpus である。

## Bar（2019年）

### モデルサイズ

- サイズは 7B、13B の2種類である。
- Bar-1（2019年）：12層のデコーダで、約1億パラメータである。

### 公開と特徴

- v1 系のテキストエンコーダは CLIP である。
- 2024年6月に 9B と 27B のモデルが公開された。

## Foo と Bar の比較メモ

- 文脈長は512トークンである。

## RAG の仕組み

### チャンキング

- 構造で区切る方法：見出しや段落ごとに区切る。

## RLHF の難しさ

- 報酬ハッキング：方策が報酬モデルの穴を突くこと。
- JGLUEとは日本語の言語理解ベンチマークである。
"""

EN_NOTE = """\
# Hallucination in LLMs

## Definition and types

### Intrinsic vs extrinsic

- Intrinsic hallucination: the output contradicts the source. \
Example: the document says a model was released in 2023, and the summary says 2022.

## Basic facts

- Headline claim: a large model fits on one GPU.
"""


def qa(tmp_path: Path, name: str, text: str) -> dict[str, str]:
    return {i.question: i.answer for i in candidates(note(tmp_path, name, text))}


def test_a_title_joining_two_names_is_not_the_subject(tmp_path: Path) -> None:
    items = qa(tmp_path, "pair.md", PAIR)
    assert not [q for q in items if "Foo と Bar" in q], items
    assert items.get("Foo の正式名称とは何ですか？") == "Foo Original Model"
    assert items.get("Foo の事前学習データは何ですか？") == "BooksCorpus"
    assert items.get("Bar のサイズは何ですか？") == "7B、13B の2種類"


def test_a_subject_named_only_in_a_heading_is_named(tmp_path: Path) -> None:
    items = qa(tmp_path, "pair.md", PAIR)
    assert items.get("Bar の v1 系のテキストエンコーダは何ですか？") == "CLIP"
    assert items.get("Bar の 9B と 27B のモデルが公開されたのはいつですか？") == "2024年6月"
    assert not [q for q in items if q.startswith(("v1", "9B"))], items


def test_a_section_title_is_not_put_before_the_real_subject(tmp_path: Path) -> None:
    items = qa(tmp_path, "pair.md", PAIR)
    assert items.get("チャンキングの構造で区切る方法とは何ですか？") == "見出しや段落ごとに区切る"
    assert not [q for q in items if "仕組み" in q], items
    assert items.get("RLHF の報酬ハッキングとは何ですか？") == "方策が報酬モデルの穴を突くこと"


def test_a_subject_that_cannot_be_determined_drops_the_item(tmp_path: Path) -> None:
    items = qa(tmp_path, "pair.md", PAIR)
    assert "512トークン" not in items.values(), items


def test_answers_lose_copula_endings(tmp_path: Path) -> None:
    items = qa(tmp_path, "pair.md", PAIR)
    assert items.get("JGLUEとは何ですか？") == "日本語の言語理解ベンチマーク"
    assert items.get("Bar-1(2019年)とは何ですか？") == "12層のデコーダで、約1億パラメータ"
    assert not [a for a in items.values() if a.endswith(("である", "です", "。"))], items


def test_english_templates_read_naturally(tmp_path: Path) -> None:
    items = qa(tmp_path, "h.md", EN_NOTE)
    assert not [q for q in items if "Example" in q or ":" in q], items
    assert not [q for q in items if q.endswith("in Hallucination?")], items
    assert items.get("What is intrinsic hallucination?") == "output contradicts the source"
    assert items.get("What is the headline claim of Hallucination?") == (
        "large model fits on one GPU"
    )


names = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ", min_size=2, max_size=5)
generic = st.sampled_from(["基本情報", "公開情報", "比較メモ", "仕組み"])
facts = st.sampled_from(
    ["- 文脈長は{n}トークンである。", "- 公開日は{y}年である。", "- 正式名称：{a} Model"]
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    a=names,
    b=names,
    sections=st.lists(
        st.tuples(st.booleans(), generic, facts, st.integers(1, 9999)), min_size=1, max_size=5
    ),
    joiner=st.sampled_from([" と ", "と", "・"]),
)
def test_no_question_is_about_a_joined_pair_when_the_evidence_names_one(
    tmp_path_factory: pytest.TempPathFactory, a: str, b: str, sections, joiner: str
) -> None:
    """Title 「A と B」: every question names exactly the entity of its section (A or B), or
    the item is dropped; none names the pair."""
    if a == b or a in b or b in a:
        return
    body = [f"# {a}{joiner}{b}：ノート", ""]
    for k, (first, head, fact, n) in enumerate(sections):
        who = a if first else b
        body += [f"## {who}", "", f"### {head}", "", fact.format(n=n, y=1990 + k, a=who), ""]
    body += [f"## {a}{joiner}{b} の比較", "", "- 文脈長は77トークンである。", ""]
    text = "\n".join(body)
    items = candidates(note(tmp_path_factory.mktemp("pair"), "p.md", text))
    for item in items:
        assert f"{a}{joiner}{b}" not in item.question
        assert item.heading[-1] != f"{a}{joiner}{b} の比較"  # no subject there: dropped
        entity = item.heading[1]
        assert item.question.startswith(entity), (item.question, item.heading)


def test_an_adverb_is_not_the_thing_asked_about(tmp_path: Path) -> None:
    """「もともとは1994年に Gage が発表した…」: 「もともと」 is not what was announced."""
    text = "# 圧縮\n\n## BPE\n\n- もともとは1994年に Gage が発表した圧縮の手法である。\n"
    assert [q for q in qa(tmp_path, "b.md", text) if "もともと" in q] == []


def test_a_note_without_title_or_heading_does_not_take_its_file_name_as_subject(
    tmp_path: Path,
) -> None:
    items = candidates(note(tmp_path, "week3.md", "文脈長は100万トークンである。\n"))
    assert not any("week3" in i.question for i in items)


def test_a_sentence_whose_subject_joins_two_names_is_not_asked(tmp_path: Path) -> None:
    text = (
        "# トークナイザのメモ\n\n## 語彙\n\n"
        "- LLaMA と Llama 2は SentencePiece の BPE で、語彙数は32,000である。\n"
    )
    items = candidates(note(tmp_path, "tok.md", text))
    assert not any("LLaMA と Llama 2" in i.question for i in items)


def test_a_question_a_note_answers_two_ways_is_not_asked(tmp_path: Path) -> None:
    text = (
        "# GPT のメモ\n\n## 初期\n\n- 文脈長は2048トークンである。\n\n"
        "## 後期\n\n- 文脈長は4096トークンである。\n"
    )
    items = candidates(note(tmp_path, "gpt.md", text))
    asked = [i.question for i in items]
    assert len(asked) == len(set(asked))  # never the same question twice
    for item in items:
        assert item.answer in item.evidence
    assert not any("文脈長" in q for q in asked)  # 2048 or 4096: which one is meant is unclear


def test_a_full_width_heading_gives_the_subject_in_its_usual_form(tmp_path: Path) -> None:
    text = (
        "# モデルのメモ\n\n## ＧＰＴ－２\n\n"
        "- 公開日は2019年2月14日である。\n- 語彙数は50257である。\n"
    )
    items = candidates(note(tmp_path, "gpt2.md", text))
    assert items and all(i.question.startswith("GPT-2") for i in items), [i.question for i in items]
