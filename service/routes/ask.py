"""POST /v1/ask (grounded answers, JSON or SSE) and POST /v1/search (retrieval only)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence

import anyio
from fastapi import APIRouter, Depends, Request

from rag.answer import Answer, Progress
from rag.conversation import Rewrite, Turn
from service.api import errors
from service.api.errors import ApiError, as_api_error, error_body
from service.api.limits import EventStream, until_disconnected
from service.api.schemas import (
    AskRequest,
    AskResponse,
    HistoryTurn,
    SearchRequest,
    SearchResponse,
    SourceOut,
    is_blank,
)
from service.api.sse import event, started
from service.components import Components
from service.deps import Shared, require_api_key

router = APIRouter(prefix="/v1", tags=["ask"], dependencies=[Depends(require_api_key)])


def check_limits(body: SearchRequest, parts: Components) -> int:
    """The request's top_k, after the limits that depend on settings (422 beyond them; the
    same limits /openapi.json states, see service.api.contract)."""
    s = parts.settings
    check_question(body.question, parts)
    top_k = body.top_k or s.top_k
    if top_k > s.max_top_k:
        raise ApiError(
            422,
            "invalid_request",
            f"top_k {top_k} is above the limit {s.max_top_k} (SHIORI_MAX_TOP_K)",
        )
    return top_k


def check_question(question: str, parts: Components, field: str = "question") -> None:
    limit = parts.settings.max_question_chars
    if len(question) > limit:
        raise ApiError(
            422,
            "invalid_request",
            f"{field} is {len(question)} characters; the limit is {limit} "
            "(SHIORI_MAX_QUESTION_CHARS)",
        )
    if is_blank(question):
        raise ApiError(422, "invalid_request", f"{field} is blank")


def check_history(history: Sequence[HistoryTurn], parts: Components) -> list[Turn]:
    """The conversation as turns, after the limits /openapi.json states: at most
    SHIORI_MAX_CHAT_MESSAGES messages, each as long as a question may be
    (SHIORI_MAX_QUESTION_CHARS)."""
    s = parts.settings
    if len(history) > s.max_chat_messages:
        raise ApiError(
            422,
            "invalid_request",
            f"history has {len(history)} messages; the limit is {s.max_chat_messages} "
            "(SHIORI_MAX_CHAT_MESSAGES)",
        )
    limit = s.max_question_chars
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
    responses=errors.responses(401, 413, 422, 503),
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
        **errors.responses(401, 413, 422, 429, 503),
    },
)
async def ask(body: AskRequest, parts: Shared, request: Request) -> AskResponse | EventStream:
    top_k = check_limits(body, parts)
    history = check_history(body.history, parts)
    flt = body.filters.to_filters() if body.filters else None
    slots = parts.generation_slots
    if not body.stream:
        with slots.held(), parts.metrics.counting_llm_errors():
            answer = await until_disconnected(
                request, lambda: parts.answerer.ask(body.question, top_k, flt, history)
            )
        observe(parts, answer)
        return AskResponse.of(answer)
    slots.take()
    try:
        with parts.metrics.counting_llm_errors():
            stream = await started(parts.answerer.stream(body.question, top_k, flt, history))
    except BaseException:
        slots.give_back()
        raise
    return EventStream(ask_events(parts, stream), on_close=slots.give_back)


async def ask_events(
    parts: Components, stream: AsyncIterator[str | Rewrite | Progress | Answer]
) -> AsyncIterator[str]:
    """With a history, first one ``question`` event ({"question"} and the rewrite's fields:
    which question is being answered); ``status`` events as each stage begins ({"stage":
    found | writing | checking, "passages", "reading"}: within a second of the request, before
    the model's first token); ``delta`` events with {"text"}, then one ``final``
    event with the full /v1/ask body (its answer is authoritative), or one ``error`` event if
    the LLM fails mid-answer."""
    try:
        async for item in stream:
            if isinstance(item, str):
                yield event({"text": item}, "delta")
            elif isinstance(item, Rewrite):
                yield event({"question": item.question, **item.to_json()}, "question")
            elif isinstance(item, Progress):
                yield event(item.to_json(), "status")
            else:
                observe(parts, item)
                yield event(AskResponse.of(item).model_dump(mode="json"), "final")
    except Exception as exc:  # the status line is sent already: report in the stream
        known = as_api_error(exc)
        if known is None:
            raise
        yield event(error_body(known.kind, known.message), "error")
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:  # closes the request to the LLM now, not when collected
            await aclose()
