"""POST /v1/ask (grounded answers, JSON or SSE) and POST /v1/search (retrieval only)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence

import anyio
from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from service.api.deps import Shared, require_api_key
from service.api.errors import ApiError, as_api_error, error_body
from service.api.schemas import (
    AskRequest,
    AskResponse,
    HistoryTurn,
    SearchRequest,
    SearchResponse,
    SourceOut,
)
from service.api.sse import event, started
from service.components import Components
from service.rag.answer import Answer, LLMUnavailableError
from service.rag.conversation import Rewrite, Turn

router = APIRouter(prefix="/v1", tags=["ask"], dependencies=[Depends(require_api_key)])


def check_limits(body: SearchRequest, parts: Components) -> int:
    """The request's top_k, after the limits that depend on settings (422 beyond them)."""
    s = parts.settings
    if len(body.question) > s.max_question_chars:
        raise ApiError(
            422,
            "invalid_request",
            f"question is {len(body.question)} characters; the limit is "
            f"{s.max_question_chars} (SHIORI_MAX_QUESTION_CHARS)",
        )
    if not body.question.strip():
        raise ApiError(422, "invalid_request", "question is blank")
    top_k = body.top_k or s.top_k
    if top_k > s.max_top_k:
        raise ApiError(
            422, "invalid_request", f"top_k {top_k} is above the limit {s.max_top_k} "
            "(SHIORI_MAX_TOP_K)",
        )  # fmt: skip
    return top_k


def check_history(history: Sequence[HistoryTurn], parts: Components) -> list[Turn]:
    """The conversation as turns, after the limits: each message as long as a question may be
    (SHIORI_MAX_QUESTION_CHARS)."""
    limit = parts.settings.max_question_chars
    for n, turn in enumerate(history):
        if len(turn.content) > limit:
            raise ApiError(
                422,
                "invalid_request",
                f"history[{n}] is {len(turn.content)} characters; the limit is {limit} "
                "(SHIORI_MAX_QUESTION_CHARS)",
            )
    return [t.to_turn() for t in history]


def observe(parts: Components, answer: Answer) -> None:
    rewrite = answer.rewrite
    parts.metrics.observe_answer(
        answer.reason,
        answer.timings,
        answer.prompt_tokens + (rewrite.prompt_tokens if rewrite else 0),
        answer.completion_tokens + (rewrite.completion_tokens if rewrite else 0),
    )
    if rewrite is not None:
        parts.metrics.rewrites.labels(str(rewrite.status)).inc()


@router.post(
    "/search",
    response_model=SearchResponse,
    summary="The passages that best match a question (no LLM needed)",
)
async def search(body: SearchRequest, parts: Shared) -> SearchResponse:
    top_k = check_limits(body, parts)
    began = time.perf_counter()
    flt = body.filters.to_filters() if body.filters else None
    passages = await anyio.to_thread.run_sync(parts.retriever.search, body.question, top_k, flt)
    took = round((time.perf_counter() - began) * 1000, 1)
    parts.metrics.stage_seconds.labels("retrieve").observe(took / 1000)
    return SearchResponse(
        results=[SourceOut.of(n, p) for n, p in enumerate(passages, 1)],
        timings={"retrieve_ms": took},
    )


@router.post(
    "/ask",
    response_model=AskResponse,
    summary="A grounded answer with citations, or an abstention with the closest sources",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE if stream"},
        503: {"description": "the LLM or Qdrant did not answer"},
    },
)
async def ask(body: AskRequest, parts: Shared) -> AskResponse | StreamingResponse:
    top_k = check_limits(body, parts)
    history = check_history(body.history, parts)
    flt = body.filters.to_filters() if body.filters else None
    if not body.stream:
        try:
            answer = await parts.answerer.ask(body.question, top_k, flt, history)
        except LLMUnavailableError:
            parts.metrics.llm_errors.inc()
            raise
        observe(parts, answer)
        return AskResponse.of(answer)
    try:
        stream = await started(parts.answerer.stream(body.question, top_k, flt, history))
    except Exception:
        parts.metrics.llm_errors.inc()
        raise
    return StreamingResponse(
        ask_events(parts, stream),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def ask_events(
    parts: Components, stream: AsyncIterator[str | Rewrite | Answer]
) -> AsyncIterator[str]:
    """With a history, first one ``question`` event ({"question"} and the rewrite's fields:
    which question is being answered); ``delta`` events with {"text"}, then one ``final``
    event with the full /v1/ask body (its answer is authoritative), or one ``error`` event if
    the LLM fails mid-answer."""
    try:
        async for item in stream:
            if isinstance(item, str):
                yield event({"text": item}, "delta")
            elif isinstance(item, Rewrite):
                yield event({"question": item.question, **item.to_json()}, "question")
            else:
                observe(parts, item)
                yield event(AskResponse.of(item).model_dump(mode="json"), "final")
    except Exception as exc:  # the status line is sent already: report in the stream
        known = as_api_error(exc)
        if known is None:
            raise
        yield event(error_body(known.kind, known.message), "error")
