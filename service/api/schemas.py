"""The API's request and response bodies (their JSON Schema is in /docs and /openapi.json).

Requests are strict (``"stream": 0`` is not a boolean, ``"top_k": "5"`` not an integer) and
refuse unknown fields. Limits that come from settings (question length, top_k, messages) are
written into /openapi.json by `service.api.contract` and enforced by the routes.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rag.answer import Answer, source_json
from rag.conversation import Turn
from rag.retrieve import Filters, Passage

# Whitespace as JSON Schema's (ECMA-262) \s knows it, spelled out so that the schema's pattern,
# Python's check and every validator agree on what a blank question is.
WHITESPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
NOT_BLANK = f"[^{WHITESPACE}]"
_NOT_BLANK = re.compile(NOT_BLANK)
MAX_FILTER_ITEMS = 100
MAX_TEXT_FIELD = 1000
MAX_PATH_CHARS = 4096


def is_blank(text: str) -> bool:
    return _NOT_BLANK.search(text) is None


def valid_unicode(text: str) -> str:
    """JSON may carry lone UTF-16 surrogates, which no text model can encode: each becomes
    U+FFFD, as a decoder replaces any other invalid sequence."""
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def unicode_in(value: Any) -> Any:
    """`valid_unicode` on a string, or on each string of a list, for a ``mode="before"``
    validator: pydantic refuses a lone surrogate in any field with a length constraint before
    an after-validator could repair it. Anything else is left for the type checks to refuse."""
    if isinstance(value, str):
        return valid_unicode(value)
    if isinstance(value, list):
        return [valid_unicode(v) if isinstance(v, str) else v for v in value]
    return value


class FiltersIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    sources: list[str] = Field(
        default_factory=list,
        max_length=MAX_FILTER_ITEMS,
        description="exact note paths, as shown",
        json_schema_extra={"items": {"type": "string", "maxLength": MAX_PATH_CHARS}},
    )
    path_prefix: str | None = Field(
        default=None, max_length=MAX_PATH_CHARS, description="notes under this folder"
    )
    title: str | None = Field(
        default=None, max_length=MAX_TEXT_FIELD, description="notes with this title (or alias)"
    )
    tags: list[str] = Field(
        default_factory=list,
        max_length=MAX_FILTER_ITEMS,
        description="notes with every one of these tags",
        json_schema_extra={"items": {"type": "string", "maxLength": MAX_TEXT_FIELD}},
    )

    @field_validator("sources")
    @classmethod
    def _short_sources(cls, value: list[str]) -> list[str]:
        if any(len(v) > MAX_PATH_CHARS for v in value):
            raise ValueError(f"a source is longer than {MAX_PATH_CHARS} characters")
        return [valid_unicode(v) for v in value]

    @field_validator("tags")
    @classmethod
    def _short_tags(cls, value: list[str]) -> list[str]:
        if any(len(v) > MAX_TEXT_FIELD for v in value):
            raise ValueError(f"a tag is longer than {MAX_TEXT_FIELD} characters")
        return [valid_unicode(v) for v in value]

    @field_validator("sources", "tags", "path_prefix", "title", mode="before")
    @classmethod
    def _unicode(cls, value: Any) -> Any:
        return unicode_in(value)

    def to_filters(self) -> Filters:
        return Filters(
            tuple(self.sources), self.path_prefix or None, self.title or None, tuple(self.tags)
        )


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    question: str = Field(
        min_length=1,
        description="what to look for, in any language; not blank; at most "
        "SHIORI_MAX_QUESTION_CHARS characters (maxLength)",
        json_schema_extra={"pattern": NOT_BLANK},
    )
    top_k: int | None = Field(
        default=None,
        ge=1,
        strict=False,
        description="default: SHIORI_TOP_K; at most SHIORI_MAX_TOP_K (maximum)",
    )
    filters: FiltersIn | None = None

    @field_validator("question", mode="before")
    @classmethod
    def _unicode(cls, value: Any) -> Any:
        return unicode_in(value)

    @field_validator("top_k", mode="before")
    @classmethod
    def _a_json_integer(cls, value: Any) -> Any:
        """JSON Schema's integer: 4 and 4.0, not "4" or true (which lax parsing would take)."""
        if isinstance(value, str | bool):
            raise ValueError("Input should be a valid integer")
        return value


class HistoryTurn(BaseModel):
    """An earlier message of the conversation the question belongs to."""

    model_config = ConfigDict(extra="forbid", strict=True)

    role: Literal["user", "assistant"]
    content: str = Field(
        description="the message's text (an answer's [n] markers may stay); at most "
        "SHIORI_MAX_QUESTION_CHARS characters (maxLength)"
    )

    @field_validator("content", mode="before")
    @classmethod
    def _unicode(cls, value: Any) -> Any:
        return unicode_in(value)

    def to_turn(self) -> Turn:
        return Turn(self.role, self.content)


class AskRequest(SearchRequest):
    stream: bool = Field(default=False, description="Server-Sent Events: deltas, then 'final'")
    history: list[HistoryTurn] = Field(
        default_factory=list,
        description="the conversation so far, oldest first: a question that leans on it "
        '("and when was it published?") is rewritten into a standalone question, which '
        "retrieval, the checks and the citations use; the response's `question` says which; "
        "at most SHIORI_MAX_CHAT_MESSAGES messages (maxItems)",
    )


class InstructionSpanOut(BaseModel):
    """Instruction-like text in a passage (see ingest/instructions.py): note text aimed at an
    AI model. It is shown, never followed."""

    start: int = Field(description="offset into the passage's text, in characters")
    end: int = Field(description="end offset, exclusive")
    reason: str = Field(
        description="override | prompt_leak | role_change | chat_markup | addressed_to_model | "
        "answer_directive | hidden_address"
    )


class SourceOut(BaseModel):
    """A passage of a note: what a citation points at."""

    n: int = Field(description="the number used by [n] markers (or the rank, in search)")
    source: str = Field(description="the note's path as shown")
    title: str
    heading: str = Field(description="heading path inside the note, ' > ' separated")
    lines: tuple[int, int] = Field(description="first and last line in the note, 1-based")
    page: int | None = Field(default=None, description="PDF page, when the note is a PDF")
    text: str
    score: float = Field(description="fused retrieval score")
    similarity: float = Field(description="cosine similarity of question and passage")
    instruction_spans: list[InstructionSpanOut] = Field(
        default_factory=list,
        description="pieces of the text that address an AI model (to ignore its rules, reveal "
        "its prompt, state a claim ...): flagged at ingest, never followed; empty for most",
    )

    @classmethod
    def of(cls, n: int, p: Passage) -> SourceOut:
        return cls.model_validate(source_json(n, p))


class EvidenceOut(BaseModel):
    """A sentence of a passage that an answer sentence rests on, with its own lines."""

    n: int = Field(description="the passage ([n]) it belongs to")
    source: str = Field(description="the note's path as shown")
    heading: str = Field(description="heading path inside the note, ' > ' separated")
    text: str = Field(description="the sentence, exactly as in the note")
    lines: tuple[int, int] = Field(description="its first and last line in the note, 1-based")
    page: int | None = None


class SentenceOut(BaseModel):
    """One sentence of the answer, its evidence, and the checks on it."""

    text: str
    sources: list[int] = Field(description="the passages its evidence comes from")
    support: float = Field(description="lexical: weighted share of its terms in its evidence")
    similarity: float = Field(description="semantic: cosine to its evidence (across languages)")
    supported: bool
    attributed: bool = Field(description="the model gave no usable marker; Shiori chose one")
    content: list[str] = Field(description="its specific content: numbers, names, quoted terms")
    content_missing: list[str] = Field(description="content found in none of its evidence")
    evidence: list[EvidenceOut] = Field(description="the source sentences that state it")


class SubjectOut(BaseModel):
    """Whether the evidence is about what the question asks."""

    coverage: float = Field(description="weighted share of the question's terms in the evidence")
    missing: list[str]
    names_missing: list[str] = Field(description="names and numbers asked about, not found")
    passed: bool
    # a default, as SubjectCheck's: Answer.to_json does not give it yet, and without one every
    # answered /v1/ask failed validation (500)
    similarity: float = Field(
        default=0.0,
        description="cosine of the question and the evidence's context (0.0: not given)",
    )


class SearchResponse(BaseModel):
    results: list[SourceOut]
    timings: dict[str, float]


class RewriteOut(BaseModel):
    """How a message with a history became the question answered."""

    message: str = Field(description="the message as sent")
    status: Literal["standalone", "rewritten", "unchanged", "failed", "by_rule"] = Field(
        description="standalone: it stood alone, the model was not asked; rewritten: the model "
        "made it standalone; unchanged: the model kept it; by_rule: the model's reply was "
        "unusable and the conversation's subject was put into the (Japanese) message; failed: "
        "the model's reply was unusable and the message was answered as it was"
    )
    ms: float = Field(description="time the rewrite took (0 when the model was not asked)")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    detail: str = Field(default="", description="why a rewrite failed")


class AskResponse(BaseModel):
    question: str = Field(
        default="",
        description="the question answered: the question sent, or the standalone question a "
        "follow-up was rewritten into",
    )
    rewrite: RewriteOut | None = Field(default=None, description="present when a history was sent")
    answer: str = Field(description="the answer with [n] markers, or why there is none")
    abstained: bool
    reason: str = Field(
        description="answered | weak_evidence | missing_term | model_refused | unsupported | "
        "off_subject"
    )
    citations: list[SourceOut] = Field(description="the sources the answer cites")
    contexts: list[SourceOut] = Field(description="every passage given to the model")
    sentences: list[SentenceOut] = Field(description="the model's sentences, checked")
    subject: SubjectOut | None = Field(
        default=None, description="the subject check (null when the model was not asked)"
    )
    unsupported: list[str] = Field(description="sentences their evidence does not support")
    invalid_markers: list[int] = Field(description="markers that pointed at no source")
    model: str
    usage: dict[str, int]
    timings: dict[str, float]
    draft: str | None = Field(
        default=None, description="the model's own text before the checks (null: not asked)"
    )
    signals: dict[str, float] = Field(
        default_factory=dict, description="the scores the decision to answer or abstain used"
    )

    @classmethod
    def of(cls, a: Answer) -> AskResponse:
        # each source carries the flagged spans of the text it shows: a citation narrowed to
        # one chunk of a joined passage its chunk's (`rag.answer.citation_json`)
        return cls.model_validate(a.to_json())


def _paths_or_all(schema: dict[str, Any]) -> None:
    schema["anyOf"] = [
        {"required": ["paths"], "properties": {"paths": {"minItems": 1}}},
        {"required": ["all"], "properties": {"all": {"const": True}}},
    ]


class IngestPathsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_paths_or_all)

    paths: list[str] = Field(
        default_factory=list,
        max_length=MAX_FILTER_ITEMS,
        description="files or folders on the server, inside SHIORI_INGEST_ROOTS (default: "
        "SHIORI_NOTES_DIR and SHIORI_UPLOADS_DIR); a path that is a root itself needs "
        '"all": true',
        json_schema_extra={
            "items": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_PATH_CHARS,
                "pattern": "^[^\u0000]*$",
            }
        },
    )
    all: bool = Field(
        default=False,
        description="ingest whole roots: with no paths, every root; with paths, allows those "
        "that are roots themselves",
    )
    prune: bool = Field(
        default=False,
        description="also forget notes under these paths that are still on disk but no longer "
        "taken (hidden, .shioriignore); notes whose files are gone are always forgotten",
    )
