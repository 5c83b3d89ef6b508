"""The API's request and response bodies (their JSON Schema is in /docs and /openapi.json)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from service.rag.answer import Answer
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


class AskRequest(SearchRequest):
    stream: bool = Field(default=False, description="Server-Sent Events: deltas, then 'final'")


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
        c = p.chunk
        return cls(
            n=n, source=c.source, title=c.title, heading=c.heading,
            lines=(c.line_start, c.line_end), page=c.page, text=c.text,
            score=round(p.score, 4), similarity=round(p.similarity, 4),
        )  # fmt: skip


class SentenceOut(BaseModel):
    """One sentence of the answer and how well its cited sources support it."""

    text: str
    sources: list[int]
    support: float = Field(description="lexical: weighted share of its terms in its sources")
    similarity: float = Field(description="semantic: cosine to its best cited source")
    supported: bool
    attributed: bool = Field(description="the model gave no usable marker; Shiori chose one")


class SearchResponse(BaseModel):
    results: list[SourceOut]
    timings: dict[str, float]


class AskResponse(BaseModel):
    answer: str = Field(description="the answer with [n] markers, or why there is none")
    abstained: bool
    reason: str = Field(
        description="answered | weak_evidence | missing_term | model_refused | unsupported"
    )
    citations: list[SourceOut] = Field(description="the sources the answer cites")
    contexts: list[SourceOut] = Field(description="every passage given to the model")
    sentences: list[SentenceOut] = Field(description="the model's sentences, checked")
    unsupported: list[str] = Field(description="sentences their sources do not support")
    invalid_markers: list[int] = Field(description="markers that pointed at no source")
    model: str
    usage: dict[str, int]
    timings: dict[str, float]

    @classmethod
    def of(cls, a: Answer) -> AskResponse:
        contexts = [SourceOut.of(n, p) for n, p in enumerate(a.passages, 1)]
        return cls(
            answer=a.answer,
            abstained=a.abstained,
            reason=a.reason,
            citations=[] if a.abstained else [contexts[n - 1] for n in a.cited],
            contexts=contexts,
            sentences=[
                SentenceOut(
                    text=c.text,
                    sources=c.markers,
                    support=c.support,
                    similarity=c.similarity,
                    supported=c.supported,
                    attributed=c.attributed,
                )
                for c in a.checks
            ],
            unsupported=[c.text for c in a.checks if not c.supported],
            invalid_markers=a.invalid_markers,
            model=a.model,
            usage={"prompt_tokens": a.prompt_tokens, "completion_tokens": a.completion_tokens},
            timings=a.timings,
        )


class IngestPathsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paths: list[str] = Field(min_length=1, description="files or folders on the server")
    prune: bool = Field(default=False, description="forget files under these that are gone")
