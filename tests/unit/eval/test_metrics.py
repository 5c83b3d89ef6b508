"""Evaluation metrics on small hand-computed examples (Japanese and English)."""

from __future__ import annotations

import math

import pytest

from eval.metrics import (
    ItemOutcome,
    abstention_scores,
    citation_scores,
    contains_reference,
    exact_match,
    hallucination,
    hit_rate_at,
    markers_in,
    mean,
    mrr_at,
    ndcg_at,
    normalise,
    percent,
    recall_at,
    strip_markers,
    token_f1,
    tokens,
)

# ---------------------------------------------------------------- normalisation


def test_full_width_equals_half_width() -> None:
    assert normalise("２０２４年") == normalise("2024年") == "2024年"
    assert exact_match("２０２４年", "2024年") == 1.0
    assert exact_match("ＰＹＴＨＯＮ３", "python3") == 1.0
    assert normalise("ｶﾀｶﾅｰ") == "カタカナー"  # half-width katakana and its long vowel mark


def test_japanese_punctuation_and_spacing_do_not_matter() -> None:
    assert exact_match("「東京」です。", "東京です") == 1.0
    assert exact_match("東京、大阪・名古屋！", "東京大阪名古屋") == 1.0
    assert exact_match("Python の リスト", "Pythonのリスト") == 1.0
    assert exact_match("東京（とうきょう）？", "東京 とうきょう") == 1.0
    # spaces between Latin words still separate them
    assert exact_match("new york", "newyork") == 0.0


def test_long_vowel_mark_is_a_letter_not_punctuation() -> None:
    assert normalise("コーヒー〜！") == "コーヒー"
    assert exact_match("スーパー", "スパ") == 0.0


def test_english_punctuation_case_and_articles() -> None:
    assert normalise("The cat sat on a mat.") == "cat sat on mat"
    assert exact_match("An Apple!", "apple") == 1.0
    assert exact_match("the theory", "theory") == 1.0  # whole words only: "theory" survives
    assert normalise("a banana") == "banana"
    assert normalise("anagram") == "anagram"


def test_letter_a_in_japanese_is_not_an_article() -> None:
    # "ビタミン A" is vitamin A, not an article; with or without the space it is the same answer
    assert normalise("ビタミン A を含む") == normalise("ビタミンAを含む") == "ビタミンaを含む"


def test_tokens_are_characters_for_cjk_and_words_otherwise() -> None:
    assert tokens("東京都、です。") == ["東", "京", "都", "で", "す"]
    assert tokens("Hello, World") == ["hello", "world"]
    assert tokens("Python3のリスト") == ["python3", "の", "リ", "ス", "ト"]


# ---------------------------------------------------------------- answer scores


def test_token_f1_on_japanese_is_character_level() -> None:
    # pred 東 京 都 で す (5), ref 東 京 (2): common 2, P = 2/5, R = 1, F1 = 4/7
    assert token_f1("東京都です。", "東京") == pytest.approx(4 / 7)
    # a bag, not a set: pred コ コ ア, ref コ ー ヒ ー share one コ: P = 1/3, R = 1/4, F1 = 2/7
    assert token_f1("ココア", "コーヒー") == pytest.approx(2 / 7)


def test_token_f1_on_english_and_edge_cases() -> None:
    # pred cat sat (articles gone), ref cat: P = 1/2, R = 1, F1 = 2/3
    assert token_f1("The cat sat.", "a cat") == pytest.approx(2 / 3)
    assert token_f1("dog", "cat") == 0.0
    assert token_f1("", "") == 1.0
    assert token_f1("。", "東京") == 0.0
    assert token_f1("東京", "") == 0.0


def test_markers_are_stripped_before_scoring() -> None:
    assert strip_markers("東京です[1]。大阪です[2][3]。") == "東京です。大阪です。"
    assert strip_markers("Tokyo [1]. Osaka [2][3].") == "Tokyo. Osaka."
    assert exact_match("東京です[1]。", "東京です") == 1.0
    assert exact_match("Tokyo [2][3].", "Tokyo") == 1.0
    # without stripping, "2" and "3" would be extra tokens and F1 would drop below 1
    assert token_f1("Tokyo [2][3]", "tokyo") == 1.0
    assert exact_match("東京です［１］", "東京です") == 1.0  # full-width marker


def test_contains_reference_on_sentence_answers() -> None:
    answer = "日本の首都は東京です[1]。"
    assert exact_match(answer, "東京") == 0.0
    assert contains_reference(answer, "東京") == 1.0
    assert contains_reference(answer, "京都") == 0.0
    assert contains_reference("リリースは２０２４年です。", "2024年") == 1.0
    assert contains_reference("The answer is New York City.", "new york") == 1.0
    # whole tokens: not a substring of a longer word or number
    assert contains_reference("Use concatenate.", "cat") == 0.0
    assert contains_reference("12024年", "2024年") == 0.0
    assert contains_reference("東京", "") == 0.0


# ---------------------------------------------------------------- retrieval

# chunks of a.md come twice; distinct ranking is a, b, c, d
RETRIEVED = ["a.md", "b.md", "a.md", "c.md", "d.md"]
RELEVANT = {"a.md", "c.md", "x.md"}


def test_hit_rate_and_recall_deduplicate_sources() -> None:
    assert hit_rate_at(RETRIEVED, RELEVANT, 1) == 1.0
    assert hit_rate_at(RETRIEVED, {"c.md"}, 2) == 0.0
    assert hit_rate_at(RETRIEVED, {"c.md"}, 3) == 1.0  # 4th chunk, but 3rd distinct source
    assert recall_at(RETRIEVED, RELEVANT, 2) == pytest.approx(1 / 3)
    assert recall_at(RETRIEVED, RELEVANT, 3) == pytest.approx(2 / 3)  # not 1/3 (a, b, a)
    assert recall_at(RETRIEVED, RELEVANT, 10) == pytest.approx(2 / 3)  # x.md never found


def test_mrr_uses_distinct_rank() -> None:
    assert mrr_at(RETRIEVED, {"c.md"}) == pytest.approx(1 / 3)  # not 1/4
    assert mrr_at(RETRIEVED, {"b.md", "c.md"}) == pytest.approx(1 / 2)
    assert mrr_at(RETRIEVED, {"c.md"}, k=2) == 0.0
    assert mrr_at(RETRIEVED, {"x.md"}) == 0.0


def test_ndcg_by_hand() -> None:
    # top 3 distinct: a (rel, rank 1), b, c (rel, rank 3): DCG = 1 + 1/log2(4) = 1.5
    # ideal over min(3 relevant, k=3): 1 + 1/log2(3) + 1/log2(4)
    ideal = 1 + 1 / math.log2(3) + 0.5
    assert ndcg_at(RETRIEVED, RELEVANT, k=3) == pytest.approx(1.5 / ideal)
    assert ndcg_at(RETRIEVED, RELEVANT, k=3) == pytest.approx(0.703918, abs=1e-6)
    # k=2: only a is found; ideal over min(3, 2) = 2 ranks
    assert ndcg_at(RETRIEVED, RELEVANT, k=2) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert ndcg_at(["a.md", "a.md", "c.md"], {"a.md", "c.md"}) == pytest.approx(1.0)


def test_retrieval_with_nothing_relevant_or_retrieved() -> None:
    for metric in (hit_rate_at, recall_at, mrr_at, ndcg_at):
        assert metric(RETRIEVED, set(), 5) == 0.0
        assert metric([], RELEVANT, 5) == 0.0
    with pytest.raises(ValueError):
        recall_at(RETRIEVED, RELEVANT, 0)


# ---------------------------------------------------------------- abstention and hallucination


def test_abstention_scores_by_hand() -> None:
    # item:         1      2      3      4      5      6      7
    abstained = [True, True, True, False, False, True, False]
    answerable = [False, True, True, False, True, False, True]
    # unanswerable {1, 4, 6}; abstained {1, 2, 3, 6}; answered {4, 5, 7}; answerable {2, 3, 5, 7}
    scores = abstention_scores(abstained, answerable)
    assert scores["recall_unanswerable"] == pytest.approx(2 / 3)  # 1, 6 of 1, 4, 6
    assert scores["precision_abstained"] == pytest.approx(2 / 4)  # 1, 6 of 1, 2, 3, 6
    assert scores["answered_precision"] == pytest.approx(2 / 3)  # 5, 7 of 4, 5, 7
    assert scores["false_abstention_rate"] == pytest.approx(2 / 4)  # 2, 3 of 2, 3, 5, 7
    assert (scores["n_answerable"], scores["n_unanswerable"], scores["n_abstained"]) == (4, 3, 4)


def test_abstention_undefined_ratios_are_nan() -> None:
    scores = abstention_scores([False, False], [True, True])
    assert math.isnan(scores["recall_unanswerable"])  # no unanswerable items
    assert math.isnan(scores["precision_abstained"])  # no abstentions
    assert scores["answered_precision"] == 1.0
    assert scores["false_abstention_rate"] == 0.0
    with pytest.raises(ValueError):
        abstention_scores([True], [True, False])


def test_hallucination_parts() -> None:
    outcomes = [
        ItemOutcome(answerable=True, abstained=False, unfaithful=False),
        ItemOutcome(answerable=True, abstained=False, unfaithful=True),  # unfaithful
        ItemOutcome(answerable=True, abstained=False, unfaithful=None),  # not judged: not counted
        ItemOutcome(answerable=False, abstained=False, unfaithful=None),  # answered unanswerable
        ItemOutcome(answerable=False, abstained=False, unfaithful=True),  # counted once, not twice
        ItemOutcome(answerable=False, abstained=True, unfaithful=None),  # right abstention
        ItemOutcome(answerable=True, abstained=True, unfaithful=True),  # abstained: no answer
    ]
    result = hallucination(outcomes)
    assert result["answered_when_unanswerable"] == 2
    assert result["unfaithful_answers"] == 1
    assert result["judged_answers"] == 3
    assert result["wrong_answers"] == 0  # nothing was checked wrong here
    assert result["n_items"] == 7
    assert result["n_answered"] == 5
    assert result["rate"] == pytest.approx(3 / 7)
    assert result["rate_of_answers"] == pytest.approx(3 / 5)


def test_a_wrong_answer_to_an_answerable_question_is_a_hallucination() -> None:
    from eval.metrics import Outcome, selective_scores

    right = ItemOutcome(answerable=True, abstained=False, correct=True)
    wrong = ItemOutcome(answerable=True, abstained=False, correct=False)
    refused = ItemOutcome(answerable=True, abstained=True)
    invented = ItemOutcome(answerable=False, abstained=False)
    declined = ItemOutcome(answerable=False, abstained=True)
    # a wrong answer the judge also finds unfaithful still counts once
    wrong_and_unfaithful = ItemOutcome(answerable=True, abstained=False, correct=False,
                                       unfaithful=True)  # fmt: skip
    right_but_unfaithful = ItemOutcome(answerable=True, abstained=False, correct=True,
                                       unfaithful=True)  # fmt: skip
    assert hallucination([right, refused])["rate"] == 0.0
    assert hallucination([right, wrong])["rate"] == 0.5  # the wrong answer alone raises it
    items = [right, wrong, refused, invented, declined, wrong_and_unfaithful,
             right_but_unfaithful]  # fmt: skip
    result = hallucination(items)
    assert (result["wrong_answers"], result["answered_when_unanswerable"],
            result["unfaithful_answers"]) == (2, 1, 1)  # fmt: skip
    assert result["rate"] == pytest.approx(4 / 7)
    assert [i.outcome for i in items[:5]] == [
        Outcome.CORRECT, Outcome.WRONG, Outcome.FALSE_ABSTENTION,
        Outcome.ANSWERED_UNANSWERABLE, Outcome.RIGHT_ABSTENTION,
    ]  # fmt: skip
    selective = selective_scores(items)
    # answerable: right, wrong, refused, wrong_and_unfaithful, right_but_unfaithful → 4 of 5
    assert selective["coverage"] == pytest.approx(4 / 5)
    # answered: right, wrong, invented, wrong_and_unfaithful, right_but_unfaithful → 2 correct
    assert selective["selective_accuracy"] == pytest.approx(2 / 5)
    assert selective["counts"] == {"correct": 2, "wrong": 2, "false_abstention": 1,
                                   "right_abstention": 1, "answered_unanswerable": 1}  # fmt: skip


def test_risk_coverage_by_hand() -> None:
    from eval.metrics import risk_coverage

    # 5 items; 4 could be answered: confidences 0.9 (right), 0.8 (wrong), 0.8 (right), 0.1 (wrong)
    curve = risk_coverage([0.9, 0.8, 0.8, 0.1], [False, True, False, True], n_items=5)
    # ties go pessimistic: the wrong 0.8 is taken before the right 0.8
    assert [(c, round(r, 3)) for c, r, _ in curve["points"]] == [
        (0.2, 0.0), (0.4, 0.5), (0.6, 0.333), (0.8, 0.5)
    ]  # fmt: skip
    assert curve["aurc"] == pytest.approx((0 + 0.5 + 1 / 3 + 0.5) / 4)
    assert curve["max_coverage"] == 0.8
    empty = risk_coverage([], [], n_items=3)
    assert empty["points"] == [] and math.isnan(empty["aurc"])


def test_hallucination_empty_and_all_abstained() -> None:
    assert math.isnan(hallucination([])["rate"])
    result = hallucination([ItemOutcome(answerable=True, abstained=True)])
    assert result["rate"] == 0.0
    assert math.isnan(result["rate_of_answers"])


# ---------------------------------------------------------------- citations


def test_markers_in_answer_text() -> None:
    assert markers_in("東京です[1][3]。大阪[0]. Kyoto [12].") == [1, 3, 0, 12]
    assert markers_in("no markers, only [a] and [ ]") == []


def test_citation_validity_with_out_of_range_markers() -> None:
    items = [
        (markers_in("東京です[1][3]。大阪[0]。"), 2, [True, False]),  # 3 and 0 point nowhere
        ([2, 2], 2, [True]),
        ([], 0, []),
    ]
    scores = citation_scores(items)
    assert scores["n_markers"] == 5
    assert scores["marker_validity"] == pytest.approx(3 / 5)  # 1, 2, 2
    assert scores["n_cited_sentences"] == 3
    assert scores["cited_sentence_support"] == pytest.approx(2 / 3)


def test_citation_scores_without_markers_are_nan() -> None:
    scores = citation_scores([([], 3, [])])
    assert math.isnan(scores["marker_validity"])
    assert math.isnan(scores["cited_sentence_support"])
    assert scores["n_markers"] == 0


# ---------------------------------------------------------------- aggregation


def test_mean_ignores_nan_and_percent_formats() -> None:
    assert mean([0.5, float("nan"), 1.0]) == pytest.approx(0.75)
    assert math.isnan(mean([float("nan")]))
    assert math.isnan(mean([]))
    assert mean(x for x in (0.25, 0.75)) == pytest.approx(0.5)  # any iterable
    assert percent(0.9375) == "93.8%"
    assert percent(1.0) == "100.0%"
    assert percent(float("nan")) == "—"


# ---------------------------------------------------------------- golden-set answer checks


def test_answer_checks_fold_width_case_and_spaces() -> None:
    from eval.metrics import check_answer, fold

    assert fold("Ｆａｃｅｂｏｏｋ の チーム") == "facebookのチーム"
    assert check_answer("２０２４ 年 2 月です。[1]", ["2024年", ["2月", "february"]]).passed
    assert check_answer("It was released in February 2024 [1].", ["2024", ["2月", "february"]])


def test_answer_checks_report_what_is_missing_and_forbidden() -> None:
    from eval.metrics import check_answer

    needles = ["共起", "co-occurrence"]
    wrong = check_answer("GloVe のベクトルは 300 次元です。", [], needles, ["300"])
    assert not wrong.passed
    assert wrong.missing == ("共起 | co-occurrence",) and wrong.forbidden == ("300",)
    right = check_answer("単語の共起行列を分解する。", [], needles, ["300"])
    assert right.passed and not right.missing and not right.forbidden
    # all of must_contain, each alternative list satisfied by one of its forms
    partial = check_answer("2層です", ["2層", ["双方向", "bidirectional"]])
    assert partial.missing == ("双方向 | bidirectional",)
