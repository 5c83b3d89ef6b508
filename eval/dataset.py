"""Golden sets: one JSON object per line, the questions an evaluation asks and what it expects.

    {"id": "ja-gemma-date",                 unique within the file
     "question": "Gemma が公開されたのはいつですか？",
     "reference_answer": "2024年2月21日",    null when the notes cannot answer it
     "reference_sources": ["notes/05-gemma.md"],   note paths as Shiori shows them (or chunk
                                            ids); [] when unanswerable
     "answerable": true,
     "language": "ja",                      the question's language: ja | en (optional:
                                            inferred from the question when absent)
     "category": "ja",                      free label for breakdowns (optional; "kind" is
                                            accepted as another name for it)
     "must_contain": ["2024", ["2月", "february", "feb"]],   deterministic answer checks
     "must_contain_any": ["21日", "21st", "21"],             (optional, see below)
     "must_not_contain": ["2023"],
     "feedback": {...}}                     where the item came from, when a user's feedback
                                            made it (optional, see below)

The answer checks decide whether an answer is **correct** without a judge. Every string is
compared with the answer after NFKC, case folding and removing all whitespace (`fold`), as a
substring:

- ``must_contain``: each entry must occur; an entry that is a list is satisfied by any one of
  its strings (the forms a correct answer may take: "2月" / "February");
- ``must_contain_any``: at least one of these must occur;
- ``must_not_contain``: none of these may occur (the neighbour's value a wrong answer gives).

An answerable item needs a ``reference_answer`` or a positive check (``must_contain`` or
``must_contain_any``); an item without positive checks is judged by "contains the reference
answer" (`eval.metrics.contains_reference`). ``must_not_contain`` applies to unanswerable items
too (what a made-up answer would say), but any answer to an unanswerable question is wrong.

The bundled set is `eval/datasets/notes.jsonl` (84 questions over `notes/`).

**Feedback lines.** Thumbs up/down and corrections given on the page or to `POST /v1/feedback`
are stored as items of this format (`service/feedback.py`), so a user's corrections become
their own regression set (`shiori eval run --dataset <SHIORI_FEEDBACK_PATH>`). Their
``feedback`` object keeps what was judged: ``rating`` (up | down), ``answer`` (the answer text
as shown), ``abstained``, ``sources`` (the cited passages: ``source``, ``lines``, ``heading``),
``correction``, ``message`` and ``history`` (the follow-up as written and its conversation,
when ``question`` is the standalone question it was rewritten into), ``model`` and ``at``
(UTC, ISO 8601). The evaluation ignores it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

# a non-empty check string that still says something after folding (not only spaces)
Needle = Annotated[str, StringConstraints(min_length=1, pattern=r"\S")]
# the golden set of the bundled sample notes (notes/)
BUNDLED = Path(__file__).resolve().parent / "datasets" / "notes.jsonl"
_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")


class GoldenItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    reference_answer: str | None = None
    reference_sources: list[str] = Field(default_factory=list)
    answerable: bool
    language: Literal["ja", "en"] = "en"
    category: str = Field(default="", validation_alias=AliasChoices("category", "kind"))
    must_contain: list[Needle | list[Needle]] = Field(default_factory=list)
    must_contain_any: list[Needle] = Field(default_factory=list)
    must_not_contain: list[Needle] = Field(default_factory=list)
    feedback: dict[str, Any] | None = None  # provenance of a feedback line (see above)

    @model_validator(mode="before")
    @classmethod
    def _infer_language(cls, data: object) -> object:
        if isinstance(data, dict) and "language" not in data and "question" in data:
            question = str(data["question"])
            data = {**data, "language": "ja" if _JAPANESE.search(question) else "en"}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> GoldenItem:
        if self.answerable and not (self.reference_answer or self.has_positive_checks):
            raise ValueError(
                "an answerable item needs a reference_answer or must_contain/must_contain_any"
            )
        if not self.answerable and (self.reference_answer or self.has_positive_checks):
            raise ValueError(
                "an unanswerable item has reference_answer null and no must_contain(_any)"
            )
        if any(isinstance(e, list) and not e for e in self.must_contain):
            raise ValueError("must_contain: an empty list of alternatives can never match")
        return self

    @property
    def has_positive_checks(self) -> bool:
        return bool(self.must_contain or self.must_contain_any)


class DatasetError(ValueError):
    """A golden set that cannot be used, with every problem and its line number."""


def load(path: Path) -> list[GoldenItem]:
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    items: list[GoldenItem] = []
    problems: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = GoldenItem.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: not JSON ({exc.msg})")
            continue
        except ValidationError as exc:
            why = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'item'}: {e['msg']}" for e in exc.errors()
            )
            problems.append(f"line {number}: {why}")
            continue
        if item.id in seen:
            problems.append(f"line {number}: duplicate id {item.id!r}")
        seen.add(item.id)
        items.append(item)
    if problems:
        raise DatasetError(f"{path}: " + "\n  ".join(["invalid golden set", *problems]))
    if not items:
        raise DatasetError(f"{path}: no items")
    return items


# characters `str.splitlines` (which `load` reads lines with) breaks at, that JSON leaves raw
_LINE_BREAKS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def to_line(item: GoldenItem) -> str:
    """One item as its JSONL line (with the newline): readable UTF-8, one line whatever its
    text holds."""
    line = json.dumps(item.model_dump(), ensure_ascii=False)
    for raw, escaped in _LINE_BREAKS.items():
        line = line.replace(raw, escaped)
    return line + "\n"


def save(items: Iterable[GoldenItem], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for item in items:
            out.write(to_line(item))


def select(
    items: list[GoldenItem], limit: int | None = None, sample: int | None = None, seed: int = 0
) -> list[GoldenItem]:
    """A slice of a large set: a seeded random sample, and/or the first ``limit``."""
    import random

    chosen = list(items)
    if sample is not None and sample < len(chosen):
        chosen = random.Random(seed).sample(chosen, sample)
    return chosen[:limit] if limit is not None else chosen
