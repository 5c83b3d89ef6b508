"""Prompt building, marker parsing and sentence verification: pure functions, no model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest

from rag.markers import parse_answer, strip_invalid_markers
from rag.prompt import NOT_FOUND, PromptStyle, build_messages, language_of
from rag.retrieve import Passage
from rag.terms import content_terms
from rag.verify import check, check_subject, support
from shiori.index import Chunk


def chunk(text: str, n: int = 0) -> Chunk:
    return Chunk(
        path=f"/notes/{n}.md", source=f"notes/{n}.md", title="T", headings=["T", f"H{n}"],
        line_start=3, line_end=5, char_start=0, char_end=len(text), text=text,
        chunk_index=n, content_hash=str(n),
    )  # fmt: skip


def test_language_detection() -> None:
    assert language_of("Gemma はいつ公開された？") == "ja"
    assert language_of("When was Gemma released?") == "en"
    assert language_of("ＬｏＲＡ とは") == "ja"


def test_messages_number_sources_and_ask_for_the_question_language() -> None:
    chunks = [chunk("Gemma は 2024年に公開された。", 1), chunk("LoRA は低ランク適応。", 2)]
    system, user = build_messages("Gemma はいつ？", chunks)
    assert system["role"] == "system" and "Japanese" in system["content"]
    assert NOT_FOUND in system["content"]
    assert "[1] T > H1 (notes/1.md, lines 3-5)\nGemma は 2024年に公開された。" in user["content"]
    assert "[2] T > H2" in user["content"] and user["content"].endswith("Question: Gemma はいつ？")
    english = build_messages("When?", chunks)[0]["content"]
    assert "Answer in English" in english


def test_fold_style_has_no_system_message() -> None:
    messages = build_messages("When?", [chunk("x", 1)], PromptStyle.FOLD)
    assert [m["role"] for m in messages] == ["user"]
    assert messages[0]["content"].startswith("You answer questions")
    assert "Question: When?" in messages[0]["content"]


def test_parse_answer_sentences_markers_and_invalid_ones() -> None:
    parsed = parse_answer(
        "Gemma は 2024年2月21日に公開された[1]。サイズは 2B と 7B です。[2][7]", 3
    )
    assert [s.text for s in parsed.sentences] == [
        "Gemma は 2024年2月21日に公開された。",
        "サイズは 2B と 7B です。",
    ]
    assert [s.markers for s in parsed.sentences] == [[1], [2]]
    assert parsed.invalid_markers == [7]
    assert parsed.cited == {1, 2}


def test_parse_english_and_trailing_marker_only_piece() -> None:
    parsed = parse_answer("It was released in June 2024 [2]. It added Artifacts. [1]", 2)
    assert [s.markers for s in parsed.sentences] == [[2], [1]]
    assert parsed.sentences[1].text == "It added Artifacts."


def test_strip_invalid_markers_keeps_valid_ones() -> None:
    assert strip_invalid_markers("A [1]. B [4]. C [2][0].", 2) == "A [1]. B . C [2]."


def test_support_is_high_for_copied_facts_and_low_for_invented_ones() -> None:
    source = "Gemma は Google が 2024年2月21日に公開したオープンモデルで、2B と 7B がある。"
    assert support("Gemma は 2024年2月21日に公開された。", [source]) > 0.7
    assert support("Gemma は 2023年11月に Meta が公開した。", [source]) < 0.5
    assert support("", [source]) == 1.0


def passages(*texts: str, headings: Sequence[Sequence[str]] = ()) -> list[Passage]:
    out = []
    for n, text in enumerate(texts):
        c = replace(chunk(text, n), headings=list(headings[n]) if headings else ["T", f"H{n}"])
        out.append(Passage(c, 1.0, 0.8, 0.9))
    return out


def test_check_ties_each_sentence_to_its_evidence_sentence_and_lines() -> None:
    found = passages(
        "LoRA は 2021年に発表された。\n重みは凍結する。",
        "QLoRA は 4ビットの NF4 で量子化する。",
    )
    parsed = parse_answer("LoRA は 2021年に発表された[1]。QLoRA は 4ビットで量子化する[1]。", 2)
    first, second = check(parsed, found, "LoRA と QLoRA は？")
    assert first.supported and first.support > 0.9 and not first.attributed
    assert [e.text for e in first.evidence] == ["LoRA は 2021年に発表された。"]
    assert (first.evidence[0].line_start, first.evidence[0].line_end) == (3, 3)
    # true, but not in the source it cites: the citation moves to the source that backs it
    assert second.supported and second.markers == [2] and second.attributed
    assert second.evidence[0].text == "QLoRA は 4ビットの NF4 で量子化する。"
    invented = check(parse_answer("GPT-4 は 2023年に公開された[1]。", 2), found, "GPT-4 は？")[0]
    assert not invented.supported and invented.content_missing == ("2023",)
    uncited = check(parse_answer("QLoRA は NF4 で量子化する。", 2), found, "QLoRA は？")[0]
    assert uncited.markers == [2] and uncited.attributed and uncited.supported


def test_a_number_must_be_in_the_evidence_sentence_not_just_the_chunk() -> None:
    note = "重みは凍結する。\n学習率は 2e-4 を使う。\nランクは 8 がよく使われる。"
    found = passages(note)
    ok = check(parse_answer("ランクは 8 です[1]。", 1), found, "ランクは？")[0]
    assert ok.supported and ok.evidence[0].text == "ランクは 8 がよく使われる。"
    assert ok.evidence[0].line_start == 5
    wrong = check(parse_answer("ランクは 16 です[1]。", 1), found, "ランクは？")[0]
    assert not wrong.supported and wrong.content_missing == ("16",)


def test_the_neighbours_figure_is_off_subject() -> None:
    """../shared/cases/grounding g02: asked GloVe's dimensions, the note gives only
    Word2Vec's: the evidence sentence holds 300, but neither it nor its heading names GloVe."""
    found = passages(
        "- 2013年に Google の研究者が発表した。\n- ベクトルの次元数は 300 がよく使われた。",
        "- 2014年にスタンフォード大学のグループが発表した。\n- 単語の共起行列を分解する。",
        headings=[["単語埋め込みのメモ", "Word2Vec"], ["単語埋め込みのメモ", "GloVe"]],
    )
    question = "GloVeのベクトルの次元数はいくつがよく使われましたか？"
    checks = check(parse_answer("GloVeのベクトルの次元数は300です[1]。", 2), found, question)
    # the number is in the notes, in a sentence about Word2Vec: not evidence for GloVe
    assert not checks[0].content_missing and not checks[0].supported
    assert checks[0].unanchored == ("- ベクトルの次元数は 300 がよく使われた。",)
    subject = check_subject(question, checks, found)
    assert not subject.passed
    right = "GloVeは単語の共起行列を分解する考え方にもとづく[2]。"
    checks = check(parse_answer(right, 2), found, "GloVeは何にもとづく手法ですか？")
    subject = check_subject("GloVeは何にもとづく手法ですか？", checks, found)
    assert checks[0].supported and subject.passed and subject.coverage == 1.0


def test_across_languages_names_and_numbers_carry_and_meaning_decides() -> None:
    found = passages("- 2016年に Facebook の研究チームが公開した。",
                     headings=[["メモ", "fastText"]])  # fmt: skip
    question = "Which company's team released fastText?"

    def close(answers: Sequence[str], sources: Sequence[str]) -> np.ndarray:
        """Sentences close in meaning; single words (names) unlike any other."""
        score = 0.8 if len(answers[0]) > 20 else 0.3
        return np.full((len(answers), len(sources)), score, dtype=np.float32)

    parsed = parse_answer("Facebook's research team released fastText in 2016 [1].", 1)
    checks = check(parsed, found, question, similarity=close)
    assert checks[0].supported and checks[0].text.endswith("in 2016.")
    assert set(checks[0].content) == {"Facebook", "2016"}
    assert check_subject(question, checks).passed  # fastText in the heading
    wrong = parse_answer("Google's team released fastText in 2016 [1].", 1)
    assert check(wrong, found, question, similarity=close)[0].content_missing == ("Google",)
    # nothing specific, no shared words: the meaning decides
    vague = parse_answer("It was built by researchers at a large company [1].", 1)
    near = check(vague, found, question, similarity=close)[0]
    assert near.support < 0.5 and near.similarity == 0.8 and near.supported
    far = check(vague, found, question, similarity=lambda a, s: close(a, s) - 0.5)[0]
    assert not far.supported
    # a name the note writes in katakana: the same name when their vectors are that close
    note = passages(
        "- 2014年にスタンフォード大学のグループが発表した。", headings=[["メモ", "GloVe"]]
    )
    said = parse_answer("GloVeは2014年にStanford大学が発表した[1]。", 1)

    def names(a: Sequence[str], b: Sequence[str]) -> np.ndarray:
        return np.array([[0.87 if x == "Stanford" and y == "スタンフォード" else 0.2 for y in b]
                         for x in a], dtype=np.float32)  # fmt: skip

    assert check(said, note, "GloVeを発表したのは？", similarity=names)[0].supported
    assert check(said, note, "GloVeを発表したのは？")[0].content_missing == ("Stanford",)
    # in English: "University" says what kind of name Stanford is; Stanford is checked
    english = parse_answer("GloVe was published by Stanford University in 2014 [1].", 1)
    (checked,) = check(english, note, "Who published GloVe?", similarity=names)
    assert set(checked.content) == {"Stanford", "2014"} and checked.content_missing == ()
    # opening the sentence, a name is known by its designator
    opening = content_terms("Stanford University researchers published it in 2014.", "Who?")
    assert {t.text for t in opening} == {"Stanford", "2014"}


def test_refusals_are_recognised_loosely_and_answers_are_not() -> None:
    from rag.abstain import model_refused

    for text in [
        "NOT_FOUND",
        "資料には記載がありません。",
        "提供されたデータにはその情報はありません。",
        "ソースには答えが含まれていません。",
        "The sources do not contain this information.",
        "I cannot find the answer in the notes.",
        "The price of Claude 3.5 Sonnet per million tokens is not disclosed in the sources.[2]",
        "ソースには価格が明記されていません。[1]",
        "",
    ]:
        assert model_refused(text), text
    for text in [
        "Gemma は 2024年2月21日に公開された[1]。",
        "It was released in June 2024 [1].",
        "Weights not found in the vocabulary are mapped to UNK [1].",  # a fact, not a refusal
    ]:
        assert not model_refused(text), text


def test_evidence_and_support_rules() -> None:
    from rag.abstain import AbstentionPolicy, unsupported_answer, weak_evidence
    from rag.retrieve import Passage
    from rag.verify import SentenceCheck

    policy = AbstentionPolicy(min_similarity=0.45, min_term_overlap=0.5, min_supported_share=0.5)
    far = Passage(chunk("x"), 0.1, similarity=0.30, term_overlap=0.2)
    close = Passage(chunk("x"), 0.1, similarity=0.60, term_overlap=0.2)
    sharing = Passage(chunk("x"), 0.1, similarity=0.30, term_overlap=0.8)
    assert weak_evidence([], policy) and weak_evidence([far], policy)
    assert not weak_evidence([far, close], policy) and not weak_evidence([sharing], policy)
    ok = SentenceCheck("a", [1], 0.9, True)
    bad = SentenceCheck("b", [1], 0.1, False)
    assert unsupported_answer([], policy) and unsupported_answer([bad, bad, ok], policy)
    assert not unsupported_answer([ok, bad], policy)


@pytest.mark.parametrize(
    ("question", "terms"),
    [
        ("Gemma 3 が公開されたのはいつか。", ["Gemma 3"]),
        ("What context window does Mistral 7B support?", ["Mistral 7B"]),
        ("GPT-4 と Claude 3.5 の違いは？", ["GPT-4", "Claude 3.5"]),
        ("DDIM を提案したのは誰か。", ["DDIM"]),
        ("JSQuAD には何問ある？", ["JSQuAD"]),
        ("What top-k value is recommended?", ["top-k"]),
        ("Who introduced tree-of-thoughts prompting?", ["tree-of-thoughts"]),
        # not specific: units, months, plain words, lowercase numbers, Japanese only
        ("QLoRA は何 GB の GPU 1枚で動くか。", ["QLoRA", "GPU"]),
        ("Which company released Stable Diffusion in August 2022?", []),
        ("What does the 65B model need?", []),
        ("拡散モデルとは何か。", []),
    ],
)
def test_specific_terms(question: str, terms: list[str]) -> None:
    from rag.terms import specific_terms

    assert specific_terms(question) == terms


def test_a_question_about_a_thing_no_passage_mentions_is_refused_before_generation() -> None:
    from rag.abstain import abstention_text
    from rag.retrieve import Passage
    from rag.terms import missing_terms

    gemma = Passage(chunk("Gemma 2 は2024年6月に公開された。9B と 27B がある。"), 1.0, 0.8, 0.9)
    prompt = Passage(
        chunk("Use a low temperature. Top K sampling keeps the K best."), 1.0, 0.8, 0.9
    )
    assert missing_terms("Gemma 3 が公開されたのはいつか。", [gemma]) == ["Gemma 3"]
    assert missing_terms("Gemma 2 が公開されたのはいつか。", [gemma]) == []
    assert missing_terms("ｇｅｍｍａ２ の公開日は？", [gemma]) == []  # no Latin term asked
    assert missing_terms("What top-k value is recommended?", [gemma, prompt]) == []  # "Top K"
    assert missing_terms("Who proposed DDIM?", [gemma, prompt]) == ["DDIM"]
    assert "「Gemma 3」" in abstention_text("ja", ["Gemma 3"])
    assert "ノート" in abstention_text("ja", ["Gemma 3"])
    assert abstention_text("en", ["DDIM"]).startswith("Your notes do not mention “DDIM”")


def test_joining_adjacent_table_chunks_keeps_one_header() -> None:
    from rag.packing import merge_adjacent

    header = "| k | v |\n|---|---|"
    lo = replace(chunk(f"{header}\n| a | 1 |\n| b | 2 |", 0), lead_chars=len(header), lead_line=3)
    hi = replace(
        chunk(f"{header}\n| b | 2 |\n| c | 3 |", 1),
        path=lo.path, headings=lo.headings, lead_chars=len(header), lead_line=3,
    )  # fmt: skip
    (merged,) = merge_adjacent([Passage(lo, 1.0, 0.9, 0.5), Passage(hi, 0.9, 0.8, 0.5)])
    assert merged.chunk.text == f"{header}\n| a | 1 |\n| b | 2 |\n| c | 3 |"
