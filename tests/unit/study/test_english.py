"""English facts read as English: a contrast's verb in its base form, a "by" answer that ends
at the last name, and a bare four-digit value a date only when the subject says so (review of
issue 24)."""

from __future__ import annotations

import pytest

from study.extract import Context, en_facts


def _facts(sentence: str) -> list[tuple[str, str, str]]:
    return [
        (f.kind, f.question, f.answer) for f in en_facts(sentence, Context("Transformer", "en"))
    ]


@pytest.mark.parametrize(
    ("sentence", "verb"),
    [
        ("The encoder has 12 layers while the decoder has 6 layers.", "have"),
        ("BERT focuses on understanding whereas GPT focuses on generation.", "focus"),
        ("BERT uses masking while GPT uses causal attention.", "use"),
        ("BERT processes both directions while GPT processes one.", "process"),
        ("BERT relies on masking while GPT relies on causal attention.", "rely on"),
        ("BERT applies masking while GPT applies causal masks.", "apply"),
    ],
)
def test_a_contrast_asks_with_the_verb_in_its_base_form(sentence: str, verb: str) -> None:
    facts = _facts(sentence)
    assert facts and all(kind == "contrast" for kind, _, _ in facts)
    assert all(q.endswith(f" {verb}?") for _, q, _ in facts), facts


@pytest.mark.parametrize(
    ("sentence", "who"),
    [
        ("GPT was introduced by OpenAI and later extended.", "OpenAI"),
        (
            "ELMo was created by AllenNLP and the University of Washington.",
            "AllenNLP and the University of Washington",
        ),
        ("The Transformer was proposed by Vaswani et al.", "Vaswani et al."),
    ],
)
def test_a_by_answer_ends_at_the_last_name(sentence: str, who: str) -> None:
    assert [a for kind, _, a in _facts(sentence) if kind == "name"] == [who]


def test_a_bare_four_digit_value_is_a_date_only_when_the_subject_says_so() -> None:
    assert [k for k, _, _ in _facts("The hidden size is 4096")] == ["number"]
    assert [k for k, _, _ in _facts("The release year is 2017.")] == ["date"]
    assert [(k, a) for k, _, a in _facts("The hidden size is 4096.")] == [("number", "4096")]
    assert [(k, a) for k, _, a in _facts("The release year is 2017.")] == [("date", "2017")]
