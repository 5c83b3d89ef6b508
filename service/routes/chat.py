"""An OpenAI-compatible facade, so existing OpenAI clients and chat UIs ask the notes unchanged.

`POST /v1/chat/completions` answers the last user message with RAG over the notes. The earlier
user and assistant messages are its conversation: a follow-up that leans on them ("and when was
it published?") is first rewritten into a standalone question (`service.rag.conversation`),
which retrieval, the checks and the citations use, and which the response names (``question``,
and in the text when it differs from the message). The sources are appended to the message
text, for UIs, and given in a ``sources`` field, for programs. `GET /v1/models` lists the one model,
"shiori". Streaming follows OpenAI's chunk format and ends with ``data: [DONE]``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from service.api.deps import Shared, require_api_key
from service.api.errors import ApiError, as_api_error, error_body
from service.api.schemas import SearchRequest, SourceOut
from service.api.sse import event, started
from service.components import Components
from service.rag.answer import Answer, LLMUnavailableError
from service.rag.conversation import Rewrite, Turn
from service.routes.ask import check_limits, observe

MODEL_ID = "shiori"
router = APIRouter(prefix="/v1", tags=["openai"], dependencies=[Depends(require_api_key)])


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # [{"type": "text", "text": ...}, ...]
            return "\n".join(
                str(p.get("text", "")) for p in self.content if p.get("type") == "text"
            )
        return self.content or ""


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, top_p ... are accepted and ignored

    model: str = MODEL_ID
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False


def footnote(answer: Answer) -> str:
    """The sources under the answer, as a chat UI shows them: for an answer, each evidence
    sentence with its own lines; for an abstention, the closest passages. A follow-up that was
    rewritten also says which question was answered."""
    asked = ""
    if answer.rewrite is not None and answer.rewrite.question != answer.rewrite.message:
        asked = f"\n\nQuestion answered: {answer.question}"
    lines = []
    if not answer.abstained:
        for check in answer.checks:
            for e in check.evidence if check.supported else ():
                chunk = answer.passages[e.source - 1].chunk
                heading = f" — {chunk.heading}" if chunk.heading else ""
                where = (
                    f"{e.line_start}"
                    if e.line_start == e.line_end
                    else (f"{e.line_start}-{e.line_end}")
                )
                lines.append(f"[{e.source}] {chunk.source}:{where}{heading}: “{e.text.strip()}”")
        lines = list(dict.fromkeys(lines))
    else:
        for n, passage in enumerate(answer.passages, 1):
            c = passage.chunk
            heading = f" — {c.heading}" if c.heading else ""
            lines.append(f"[{n}] {c.source}:{c.line_start}-{c.line_end}{heading}")
    if not lines:
        return asked
    label = "Closest passages" if answer.abstained else "Sources"
    return asked + f"\n\n{label}:\n" + "\n".join(lines)


def question_of(body: ChatRequest) -> str:
    return conversation_of(body)[0]


def conversation_of(body: ChatRequest) -> tuple[str, list[Turn]]:
    """The last user message with text, and the user and assistant messages before it (system
    messages and empty ones left out)."""
    for at in range(len(body.messages) - 1, -1, -1):
        message = body.messages[at]
        if message.role == "user" and message.text().strip():
            history = [
                Turn("user" if m.role == "user" else "assistant", m.text())
                for m in body.messages[:at]
                if m.role in ("user", "assistant") and m.text().strip()
            ]
            return message.text(), history
    raise ApiError(422, "invalid_request", "messages hold no user message with text")


@router.get("/models", summary="The model list OpenAI clients expect (one model: shiori)")
async def models() -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "shiori"}],
    }


@router.post("/chat/completions", summary="OpenAI-compatible chat over the notes")
async def chat_completions(body: ChatRequest, parts: Shared) -> Any:
    question, history = conversation_of(body)
    check_limits(SearchRequest(question=question), parts)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if not body.stream:
        try:
            answer = await parts.answerer.ask(question, history=history)
        except LLMUnavailableError:
            parts.metrics.llm_errors.inc()
            raise
        observe(parts, answer)
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": MODEL_ID,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer.answer + footnote(answer)},
                    "finish_reason": "stop",
                }
            ],
            "usage": usage(answer),
            "sources": sources(answer),
            "abstained": answer.abstained,
            "question": answer.question,
        }
    try:
        stream = await started(parts.answerer.stream(question, history=history))
    except LLMUnavailableError:
        parts.metrics.llm_errors.inc()
        raise
    return StreamingResponse(
        chat_events(parts, stream, completion_id, created),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def usage(answer: Answer) -> dict[str, int]:
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
    }


def sources(answer: Answer) -> list[dict[str, Any]]:
    """The cited passages (closest ones for an abstention), each with the evidence sentences
    the answer rests on in it (``evidence``: text and lines)."""
    numbers = answer.cited if not answer.abstained else range(1, len(answer.passages) + 1)
    body = answer.to_json()
    evidence: dict[int, list[dict[str, Any]]] = {}
    for sentence in body["sentences"] if not answer.abstained else []:
        for e in sentence["evidence"] if sentence["supported"] else []:
            evidence.setdefault(e["n"], []).append(e)
    return [
        {**SourceOut.of(n, answer.passages[n - 1]).model_dump(mode="json"),
         "evidence": evidence.get(n, [])}
        for n in numbers
    ]  # fmt: skip


async def chat_events(
    parts: Components,
    stream: AsyncIterator[str | Rewrite | Answer],
    completion_id: str,
    created: int,
) -> AsyncIterator[str]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        return event(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": MODEL_ID,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
        )

    yield chunk({"role": "assistant", "content": ""})
    streamed = ""
    try:
        async for item in stream:
            if isinstance(item, str):
                streamed += item
                yield chunk({"content": item})
                continue
            if isinstance(item, Rewrite):  # named in the last chunk, with the sources
                continue
            observe(parts, item)
            tail = footnote(item)
            if streamed.strip() != item.answer.strip():  # withdrawn, or citations repaired
                label = "" if item.abstained else "Checked answer: "
                tail = f"\n\n{label}{item.answer}{tail}"
            yield chunk(
                {"content": tail},
                "stop",
                usage=usage(item),
                sources=sources(item),
                abstained=item.abstained,
                question=item.question,
            )
    except Exception as exc:
        known = as_api_error(exc)
        if known is None:
            raise
        yield event(error_body(known.kind, known.message))
    yield event("[DONE]")
