"""Prompt building, marker parsing and sentence verification: pure functions, no model."""

from __future__ import annotations

import pytest

from service.rag.markers import parse_answer, strip_invalid_markers
from service.rag.prompt import NOT_FOUND, PromptStyle, build_messages, language_of
from service.rag.verify import check, support
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


def test_check_uses_cited_sources_and_flags_unsupported() -> None:
    sources = ["LoRA は 2021年に発表された。", "QLoRA は 4ビットの NF4 で量子化する。"]
    parsed = parse_answer("LoRA は 2021年に発表された[1]。QLoRA は 4ビットで量子化する[1]。", 2)
    first, second = check(parsed, sources, threshold=0.5)
    assert first.supported and first.support > 0.9 and not first.attributed
    # true, but not in the source it cites: the citation is moved to the source that backs it
    assert second.supported and second.markers == [2] and second.attributed
    invented = check(parse_answer("GPT-4 は 2023年に公開された[1]。", 2), sources, 0.5)[0]
    assert not invented.supported and invented.markers == [1] and not invented.attributed
    uncited = check(parse_answer("QLoRA は NF4 で量子化する。", 2), sources, 0.5)[0]
    assert uncited.markers == [2] and uncited.attributed and uncited.supported
    # semantic similarity rescues a cross-language sentence that shares no terms
    english = check(parse_answer("It uses a 4-bit data type[2].", 2), sources, 0.5, [[0.1, 0.8]])[0]
    assert english.support < 0.5 and english.similarity == 0.8 and english.supported
    assert not check(parse_answer("It uses a 4-bit data type[2].", 2), sources, 0.5,
                     [[0.1, 0.4]])[0].supported  # fmt: skip


def test_refusals_are_recognised_loosely_and_answers_are_not() -> None:
    from service.rag.abstain import model_refused

    for text in [
        "NOT_FOUND",
        "資料には記載がありません。",
        "提供されたデータにはその情報はありません。",
        "ソースには答えが含まれていません。",
        "The sources do not contain this information.",
        "I cannot find the answer in the notes.",
        "",
    ]:
        assert model_refused(text), text
    for text in ["Gemma は 2024年2月21日に公開された[1]。", "It was released in June 2024 [1]."]:
        assert not model_refused(text), text


def test_evidence_and_support_rules() -> None:
    from service.rag.abstain import AbstentionPolicy, unsupported_answer, weak_evidence
    from service.rag.retrieve import Passage
    from service.rag.verify import SentenceCheck

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
    from service.rag.terms import specific_terms

    assert specific_terms(question) == terms


def test_a_question_about_a_thing_no_passage_mentions_is_refused_before_generation() -> None:
    from service.rag.abstain import abstention_text
    from service.rag.retrieve import Passage
    from service.rag.terms import missing_terms

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
