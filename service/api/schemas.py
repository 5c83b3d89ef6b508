"""The API's request and response bodies (their JSON Schema is in /docs and /openapi.json)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.rag.answer import Answer, source_json
from service.rag.conversation import Turn
from service.rag.retrieve import Filters, Passage


class FiltersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: list[str] = Field(default_factory=list, description="exact note paths, as shown")
    path_prefix: str | None = Field(default=None, description="notes under this folder")
    title: str | None = Field(default=None, description="notes with this title (or alias)")
    tags: list[str] = Field(default_factory=list, description="notes with every one of these tags")

    def to_filters(self) -> Filters:
        return Filters(
            tuple(self.sources), self.path_prefix or None, self.title or None, tuple(self.tags)
        )


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, description="what to look for, in any language")
    top_k: int | None = Field(default=None, ge=1, description="default: SHIORI_TOP_K")
    filters: FiltersIn | None = None


class HistoryTurn(BaseModel):
    """An earlier message of the conversation the question belongs to."""

    model_config = ConfigDict(extra="forbid", strict=True)

    role: Literal["user", "assistant"]
    content: str = Field(description="the message's text (an answer's [n] markers may stay)")

    def to_turn(self) -> Turn:
        return Turn(self.role, self.content)


class AskRequest(SearchRequest):
    stream: bool = Field(default=False, description="Server-Sent Events: deltas, then 'final'")
    history: list[HistoryTurn] = Field(
        default_factory=list,
        description="the conversation so far, oldest first: a question that leans on it "
        '("and when was it published?") is rewritten into a standalone question, which '
        "retrieval, the checks and the citations use; the response's `question` says which",
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
    similarity: float = Field(description="cosine of the question and the evidence's context")


class SearchResponse(BaseModel):
    results: list[SourceOut]
    timings: dict[str, float]


class RewriteOut(BaseModel):
    """How a message with a history became the question answered."""

    message: str = Field(description="the message as sent")
    status: Literal["standalone", "rewritten", "unchanged", "failed"] = Field(
        description="standalone: it stood alone, the model was not asked; rewritten: the model "
        "made it standalone; unchanged: the model kept it; failed: the model's reply was "
        "unusable and the message was answered as it was"
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
        return cls.model_validate(a.to_json())


class IngestPathsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paths: list[str] = Field(min_length=1, description="files or folders on the server")
    prune: bool = Field(default=False, description="forget files under these that are gone")
