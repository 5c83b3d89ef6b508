"""Feedback on answers, kept as golden-set lines: a user's corrections become their own
regression set.

A thumbs up or down (with an optional correction) on an answer becomes one item of the
evaluation's JSONL format (`eval.dataset.GoldenItem`), appended to SHIORI_FEEDBACK_PATH, which
`shiori eval run --dataset` reads as it is:

- up, on an answer → answerable; reference_answer = the answer (markers removed); must_contain =
  its specific content (the numbers and names it states); reference_sources = its cited notes;
- up, on an abstention → unanswerable;
- a correction (with up or down) → answerable; reference_answer = the correction; must_contain
  = its specific content; must_not_contain = what the wrong answer stated that it does not;
- down, "the notes do not answer this" (``not_in_notes``) → unanswerable; must_not_contain =
  what the answer stated.

A thumbs down alone says that the answer is wrong but not what is right, which no golden item
can check; it is refused (422) with what to add. The question stored is the question answered:
for a follow-up, the standalone question it was rewritten into (the message as written and its
conversation are kept in ``feedback``), so the line can be asked on its own. "Specific content"
is what the answer checks verify against the evidence (`rag.terms.content_terms`).
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from eval.checks import specific_content
from eval.dataset import GoldenItem, to_line
from eval.metrics import fold, strip_markers
from service.api.schemas import NOT_BLANK, WHITESPACE, is_blank, unicode_in

# An answer with nothing but citation markers ("[1]", "［１］", as eval.metrics.strip_markers
# removes them) and whitespace (JSON Schema's, see service.api.schemas.WHITESPACE): nothing to
# keep as a reference. The same pattern is in the schema, so the two cannot disagree.
_S = f"[{WHITESPACE}]*"
EMPTY_ANSWER = f"^(?:{_S}[\\[［]{_S}[0-9０-９]+{_S}[\\]］])*{_S}$"
_EMPTY_ANSWER = re.compile(EMPTY_ANSWER)
_EDGES = re.compile(f"^[{WHITESPACE}]+|[{WHITESPACE}]+$")
_RUNS = re.compile(f"[{WHITESPACE}]+")


class FeedbackError(ValueError):
    """Feedback that cannot become a golden item; the message says what to add."""


class CitedSource(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    source: str = Field(min_length=1, max_length=4096, description="the note's path, as shown")
    lines: list[int] | None = Field(
        default=None, min_length=2, max_length=2, description="the passage's first and last line"
    )
    heading: str = Field(default="", max_length=1000)

    @field_validator("source", "heading", mode="before")
    @classmethod
    def _unicode(cls, value: Any) -> Any:
        return unicode_in(value)


class FeedbackTurn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    role: Literal["user", "assistant"]
    content: str = Field(max_length=8000)

    @field_validator("content", mode="before")
    @classmethod
    def _unicode(cls, value: Any) -> Any:
        return unicode_in(value)


def _judgements(schema: dict[str, Any]) -> None:
    """The judgements that make a golden item (the module's table), stated in the schema: a
    correction (not with not_in_notes); up on an abstention; up on an answer with text; down on
    an answer with not_in_notes. A thumbs down alone says nothing checkable."""
    no_correction = {"correction": {"type": "null"}}
    schema["anyOf"] = [
        {
            "required": ["correction"],
            "properties": {"correction": {"type": "string"}, "not_in_notes": {"const": False}},
        },
        {"properties": {"rating": {"const": "up"}, "abstained": {"const": True}, **no_correction}},
        {
            "properties": {
                "rating": {"const": "up"},
                "abstained": {"const": False},
                "not_in_notes": {"const": False},
                "answer": {"not": {"pattern": EMPTY_ANSWER}},
                **no_correction,
            }
        },
        {
            "required": ["not_in_notes"],
            "properties": {
                "rating": {"const": "down"},
                "abstained": {"const": False},
                "not_in_notes": {"const": True},
                **no_correction,
            },
        },
    ]


class FeedbackRequest(BaseModel):
    """A judgement of one answer, as the page (or any client) sends it."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_judgements)

    rating: Literal["up", "down"] = Field(description="up: the answer is right; down: wrong")
    question: str = Field(
        min_length=1,
        max_length=8000,
        description="the question answered (the /v1/ask body's `question`: for a follow-up, "
        "its standalone form); not blank",
        json_schema_extra={"pattern": NOT_BLANK},
    )
    answer: str = Field(max_length=20_000, description="the answer as shown")
    abstained: bool = Field(description="the answer was an abstention")
    sources: list[CitedSource] = Field(
        default_factory=list, max_length=50, description="the passages the answer cited"
    )
    correction: str | None = Field(
        default=None,
        max_length=8000,
        description="the right answer, in the user's words; not blank",
        json_schema_extra={"anyOf": [{"type": "string", "pattern": NOT_BLANK}, {"type": "null"}]},
    )
    not_in_notes: bool = Field(
        default=False, description="down: the notes do not answer this question"
    )
    message: str | None = Field(
        default=None, max_length=8000, description="the message as written, if it differs"
    )
    history: list[FeedbackTurn] = Field(
        default_factory=list, max_length=64, description="the conversation before the message"
    )
    model: str | None = Field(default=None, max_length=200)

    # JSON may carry lone surrogates, which no UTF-8 line can hold (see valid_unicode)
    @field_validator("question", "answer", "correction", "message", "model", mode="before")
    @classmethod
    def _unicode(cls, value: Any) -> Any:
        return unicode_in(value)

    @field_validator("question", "correction")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and is_blank(value):
            raise ValueError("blank: give some text, or leave it out")
        return value

    @model_validator(mode="after")
    def _judges(self) -> FeedbackRequest:
        """What the schema's anyOf states (see `_judgements`); `golden_item` says why."""
        golden_item(self)
        return self


def _flat(entries: list[str | list[str]]) -> list[str]:
    return [form for entry in entries for form in ([entry] if isinstance(entry, str) else entry)]


def golden_item(feedback: FeedbackRequest, at: datetime | None = None) -> GoldenItem:
    """The golden item a piece of feedback makes (see the module's table); `FeedbackError`
    when it cannot make one."""
    at = at or datetime.now(UTC)
    # whitespace as the schema knows it, so that what it calls text stays text here
    question = _EDGES.sub("", _RUNS.sub(" ", feedback.question))
    correction = _EDGES.sub("", feedback.correction or "")
    answered = _EDGES.sub("", strip_markers(feedback.answer)) if not feedback.abstained else ""
    sources = list(dict.fromkeys(s.source for s in feedback.sources))
    fields: dict[str, Any]
    if correction:
        if feedback.not_in_notes:
            raise FeedbackError("a correction and not_in_notes contradict each other")
        must = specific_content(correction, question)
        wrong = [
            form
            for entry in specific_content(answered, question)
            if not any(fold(f) in fold(correction) for f in _flat([entry]))
            for form in _flat([entry])
        ]
        fields = {
            "answerable": True,
            "reference_answer": correction,
            "reference_sources": sources if feedback.rating == "up" else [],
            "must_contain": must,
            "must_not_contain": wrong,
        }
    elif feedback.rating == "up":
        if feedback.not_in_notes and not feedback.abstained:
            raise FeedbackError("not_in_notes goes with a thumbs down on an answer")
        fields = (
            {"answerable": False}
            if feedback.abstained
            else {
                "answerable": True,
                # markers stripped; an answer of other marks (a bare "[x]") is kept as it is
                "reference_answer": answered or _EDGES.sub("", feedback.answer),
                "reference_sources": sources,
                "must_contain": specific_content(answered, question),
            }
        )
    elif feedback.not_in_notes:
        if feedback.abstained:
            raise FeedbackError(
                "a thumbs down on an abstention says the notes do answer it: give the "
                "correction (the right answer), not not_in_notes"
            )
        fields = {
            "answerable": False,
            "must_not_contain": _flat(specific_content(answered, question)),
        }
    else:
        raise FeedbackError(
            "a thumbs down becomes a golden-set line once it says what is right: add "
            "`correction` (the right answer)"
            + ("" if feedback.abstained else ", or `not_in_notes: true`")
        )
    if not correction and fields.get("answerable") and _EMPTY_ANSWER.match(feedback.answer):
        raise FeedbackError("the answer is empty: add `correction` (the right answer)")
    provenance = {
        "rating": feedback.rating,
        "answer": feedback.answer,
        "abstained": feedback.abstained,
        "sources": [s.model_dump(mode="json") for s in feedback.sources],
        "correction": correction or None,
        "message": feedback.message if feedback.message and feedback.message != question else None,
        "history": [t.model_dump() for t in feedback.history],
        "model": feedback.model,
        "at": at.isoformat(timespec="seconds"),
    }
    return GoldenItem.model_validate(
        {
            "id": f"feedback-{at:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}",
            "question": question,
            "category": f"feedback-{feedback.rating}",
            "feedback": provenance,
            **fields,
        }
    )


class FeedbackStore:
    """Appends golden items to one JSONL file: one ``write`` of a whole line, with O_APPEND
    (concurrent writers never interleave a line), flushed to disk before the request is
    answered; one writer at a time within the process."""

    def __init__(self, path: Path) -> None:
        self.path = path.expanduser()
        self._lock = asyncio.Lock()

    def _append(self, line: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size and not self._ends_with_newline():
                line = b"\n" + line  # a file edited by hand without a final newline
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"

    async def add(self, item: GoldenItem) -> None:
        line = to_line(item).encode()
        async with self._lock:
            await asyncio.to_thread(self._append, line)
