"""Your notes as your own golden set (issue 24, first part): answerable items in the golden-set
format (`eval.dataset.GoldenItem`) from study items (`study.extract`).

Each item asks the study item's question; ``reference_answer`` is the answer as it stands in
the evidence sentence, ``must_contain`` the specific content of that answer (its numbers,
names, katakana words, quoted phrases: `eval.checks.specific_content`) so that a correct answer
worded otherwise passes, or the whole answer when it has none; ``reference_sources`` is the
evidence's note and ``category`` ``generated-<kind>``. Ids are ``gen-<study item id>``: stable
across runs. Unanswerable near-miss items are not generated yet.
"""

from __future__ import annotations

from collections.abc import Iterable

from eval.checks import specific_content
from eval.dataset import GoldenItem
from study.items import StudyItem


def golden_item(item: StudyItem) -> GoldenItem:
    """The golden-set item of one study item (answerable, checked by ``must_contain``)."""
    return GoldenItem(
        id=f"gen-{item.id}",
        question=item.question,
        reference_answer=item.answer,
        reference_sources=[item.source],
        answerable=True,
        language=item.language,
        category=f"generated-{item.kind}",
        must_contain=specific_content(item.answer, item.question) or [item.answer],
    )


def golden_items(items: Iterable[StudyItem]) -> list[GoldenItem]:
    """`golden_item` of each, in order."""
    return [golden_item(i) for i in items]
