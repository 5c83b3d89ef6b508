"""The verifier's training data: split by article, near-miss articles held out, labels that
mean what they say (properties over the whole JSQuAD valid file)."""

from __future__ import annotations

import random

import pytest

from eval.jsquad import paragraphs
from eval.metrics import auroc, fold
from tests.conftest import SHARED
from train.verifier.data import NEAR_MISS_SAMPLES, build, declarative, dev_articles

SQUAD = SHARED / "data" / "jsquad" / "valid-v1.3.json"
needs_squad = pytest.mark.skipif(not SQUAD.is_file(), reason="JSQuAD is in ../shared/data")


def _digits(text: str) -> bool:
    return any(c.isdigit() for c in text)


def test_auroc_is_the_rank_probability() -> None:
    assert auroc([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]) == 1.0
    assert auroc([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0]) == 0.0
    assert auroc([0.5, 0.5], [1, 0]) == 0.5  # a tie counts half
    rng = random.Random(0)
    scores = [rng.random() for _ in range(400)]
    labels = [rng.randint(0, 1) for _ in range(400)]
    # against the definition: share of (positive, negative) pairs ranked right
    positives = [s for s, y in zip(scores, labels, strict=True) if y]
    negatives = [s for s, y in zip(scores, labels, strict=True) if not y]
    pairs = [(p, n) for p in positives for n in negatives]
    expected = sum((p > n) + 0.5 * (p == n) for p, n in pairs) / len(pairs)
    assert auroc(scores, labels) == pytest.approx(expected)


def test_a_declarative_states_the_answer_in_the_question_s_words() -> None:
    rng = random.Random(0)
    said = {declarative("入梅は何の目安の時期か？", "雑節", rng) for _ in range(20)}
    assert all("雑節" in s and s.endswith("。") for s in said)
    assert all("？" not in s and s[-2] != "か" for s in said)


@needs_squad
def test_no_article_of_the_near_miss_evaluations_is_trained_on() -> None:
    train, dev = build(SQUAD)
    held = dev_articles(SQUAD)
    n = len(paragraphs(SQUAD))
    for articles, seed in NEAR_MISS_SAMPLES:
        assert set(random.Random(seed).sample(range(n), articles)) <= held
    assert {e.article for e in train}.isdisjoint(held)
    assert {e.article for e in dev} <= held
    train_text = {e.evidence for e in train}
    assert not train_text & {e.evidence for e in dev if e.kind != "instruction"}


@needs_squad
def test_labels_mean_what_they_say() -> None:
    train, _ = build(SQUAD)
    answers = {
        str(qa["id"]): {fold(a["text"]) for a in qa["answers"]}
        for group in paragraphs(SQUAD)
        for p in group
        for qa in p.qas
    }
    kinds = {e.kind for e in train}
    assert kinds == {"declarative", "extractive", "short", "neighbour", "same_sentence",
                     "near_miss", "instruction"}  # fmt: skip
    for e in train:
        gold = answers[e.qid]
        if e.label == 1:  # a positive's evidence holds the answer it states
            assert any(g in fold(e.evidence) for g in gold), e
        elif e.kind in ("neighbour", "same_sentence"):  # a negative states another answer
            # names only: a few JSQuAD answers are sentence endings ("した。"), and a number
            # may sit inside the neighbour's ("σ3" + the question's "種類" → "σ3種類")
            named = [g for g in gold if len(g) >= 2 and "。" not in g and not _digits(g)]
            said = [g for g in named if fold(e.claim).count(g) > fold(e.question).count(g)]
            assert not said, e
        elif e.kind == "near_miss":  # its evidence holds no gold answer
            assert not any(g in fold(e.evidence) for g in gold), e
    assert 0.3 < sum(e.label for e in train) / len(train) < 0.6
