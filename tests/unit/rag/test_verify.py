"""The checks that catch a neighbour's fact, on the failure kinds found in evaluation runs: a
number from another section, a swapped clause, a table row of another model, a date of another
release, a restated question, a question asking for a number answered without one. Pure: no
model (similarity is left out or scripted)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag.abstain import AbstentionPolicy
from rag.evidence import source_sentences, table_header
from rag.markers import parse_answer
from rag.retrieve import Passage
from rag.terms import (
    asks_for_name,
    asks_for_number,
    new_numbers,
    question_terms,
    with_arabic_numerals,
)
from rag.verdict import Verifier
from rag.verify import Thresholds, check
from shiori.index import Chunk


def passage(text: str, headings: list[str], line: int = 1, source: str = "notes/a.md") -> Passage:
    chunk = Chunk(
        path=f"/{source}", source=source, title=headings[0], headings=headings,
        line_start=line, line_end=line + text.count("\n"), char_start=0, char_end=len(text),
        text=text, chunk_index=line, content_hash=str(line),
    )  # fmt: skip
    return Passage(chunk, 1.0, 0.7, 0.7)


VERIFIER = Verifier(Thresholds(), AbstentionPolicy())


def judge(question: str, raw: str, *found: Passage) -> str:
    return VERIFIER.judge(question, raw, list(found), "ja").reason


def test_question_terms_drop_question_words_and_generic_nouns() -> None:
    terms = {t.text: t.kind for t in question_terms("ドミニカの議員の任期は何年か。")}
    assert terms == {"ドミニカ": "katakana", "議員": "kanji", "任期": "kanji"}
    english = {t.text: t.kind for t in question_terms("Which company's team released fastText?")}
    assert english["fastText"] == "name" and "company" in english and "Which" not in english


@pytest.mark.parametrize(
    ("question", "number", "name"),
    [
        ("Gemma 2 の 27B モデルは何トークンで学習されたか。", True, False),
        ("fastTextが公開されたのは何年ですか？", True, False),
        ("Claude 3.5 Sonnet がリリースされたのはいつか。", True, False),
        ("Roughly how many bits per parameter does it save?", True, False),
        ("On what date did Anthropic announce Claude 3?", True, False),
        ("GloVeは何にもとづく手法ですか？", False, False),
        ("古代は何によって「生命は、いつ、どこで」という問いに答えたか", False, False),
        ("Which QLoRA technique moves state into RAM when the card fills up?", False, False),
        ("Who introduced the variational autoencoder?", False, True),
        ("BPE はもともと誰が発表したアルゴリズムか。", False, True),
    ],
)
def test_what_a_question_asks_for(question: str, number: bool, name: bool) -> None:
    assert asks_for_number(question) is number
    assert asks_for_name(question) is name


def test_new_numbers_and_kanji_numerals() -> None:
    assert new_numbers("27B モデルは大きなモデルに匹敵する。", "27B モデルは何トークン？") == []
    assert new_numbers("約6兆トークンです。", "27B モデルは何トークン？") == ["6", "兆"]
    assert with_arabic_numerals("憲法一五条と十五と三百二十") == "憲法一五15条と十五15と三百二十320"


@given(st.integers(min_value=1, max_value=9999))
def test_positional_kanji_numerals_read_back(n: int) -> None:
    kanji = "".join("〇一二三四五六七八九"[int(d)] for d in str(n))
    assert with_arabic_numerals(kanji).endswith(str(n))


def test_a_table_row_is_read_with_its_header_row() -> None:
    table = (
        "| モデル | 層数 | 隠れ次元 |\n|---|---|---|\n| BERT-Base | 12 | 768 |\n"
        "| BERT-Large | 24 | 1024 |"
    )
    assert table_header(table, table.index("| BERT-Large")) == "| モデル | 層数 | 隠れ次元 |"
    assert table_header(table, 0) == ""
    rows = source_sentences([passage(table, ["ELMo と BERT", "BERT", "モデルサイズ"], line=38)])
    large = next(s for s in rows if "BERT-Large" in s.text)
    assert large.lead == "| モデル | 層数 | 隠れ次元 |" and large.line_start == 41


def test_a_number_from_another_models_table_row_is_not_evidence() -> None:
    table = "| モデル | 層数 | 隠れ次元 |\n|---|---|---|\n| BERT-Base | 12 | 768 |"
    found = passage(table, ["ELMo と BERT", "BERT", "モデルサイズ"])
    raw = "ELMo の biLSTM の各層の隠れ次元は 768 です。[1]"
    assert judge("ELMo の biLSTM の各層の隠れ次元はいくつか。", raw, found) == "unsupported"
    assert judge(
        "BERT-Base の隠れ次元はいくつか。", "BERT-Base の隠れ次元は 768 です[1]。", found
    ) == ("answered")


def test_a_swapped_clause_is_not_evidence() -> None:
    note = (
        "- 初期化では A をランダムなガウス分布で、B をゼロにするので、学習開始時は BA = 0 となる。"
    )
    found = passage(note, ["LoRA", "仕組み"])
    question = "LoRA では行列 B を学習開始時にどのように初期化するか。"
    assert judge(question, "行列 B はランダムなガウス分布で初期化する[1]。", found) == "unsupported"
    assert judge(question, "行列 B はゼロで初期化する[1]。", found) == "answered"


def test_a_date_from_a_sentence_about_another_release_is_not_evidence() -> None:
    history = passage("2022年11月30日に ChatGPT が公開され、LLM が広まった。", ["LLM の歴史"])
    qlora = passage("- The authors trained Guanaco on top of LLaMA.", ["QLoRA", "Results"])
    question = "QLoRA 論文の Guanaco はどのモデルをベースにし、それはいつ発表されたか。"
    raw = "Guanaco は LLaMA をベースにしており、LLaMA は 2022年11月30日に発表された。"
    checks = check(parse_answer(raw, 2), [history, qlora], question)
    assert not checks[0].supported and checks[0].unanchored


def test_a_restated_question_or_a_numberless_answer_is_no_answer() -> None:
    found = passage("Google検索の表示順はページランクに基づく。", ["Google 検索"])
    assert judge("Google検索の読みは？", "Google検索の読みは「Google検索」です。[1]", found) == (
        "no_answer"
    )
    gemma = passage("- 27B は、もっと大きなモデルに匹敵する性能を出せる。", ["Gemma 2"])
    raw = "27B は、もっと大きなモデルに匹敵する性能を出せる。[1]"
    assert judge("Gemma 2 の 27B モデルは何トークンで学習されたか。", raw, gemma) == "no_answer"


def test_the_subject_may_be_named_by_the_sentences_before_it() -> None:
    note = "RRF は各検索の 1 / (k + 順位) を足し合わせる。k は60がよく使われる。"
    found = passage(note, ["検索の評価", "融合"])
    assert judge("RRF の式で k によく使われる値はいくつか。", "60 です[1]。", found) == "answered"
    alone = replace(found, chunk=replace(found.chunk, text="k は60がよく使われる。"))
    assert judge("RRF の定数によく使われる値はいくつか。", "60 です[1]。", alone) == "unsupported"
