"""An OpenAI-compatible facade, so existing OpenAI clients and chat UIs ask the notes unchanged.

`POST /v1/chat/completions` answers the last user message with RAG over the notes. The earlier
user and assistant messages are its conversation: a follow-up that leans on them ("and when was
it published?") is first rewritten into a standalone question (`rag.conversation`),
which retrieval, the checks and the citations use, and which the response names (``question``,
and in the text when it differs from the message). The sources are appended to the message
text, for UIs, and given in a ``sources`` field, for programs. `GET /v1/models` lists the one model,
"shiori". Streaming follows OpenAI's chunk format and ends with ``data: [DONE]``.

A message's ``content`` is a string or a list of content parts, as OpenAI's API allows: the
text parts (``text``, or ``input_text`` as OpenAI's Responses API and some clients send) are
read, joined in order; parts of other types (an attached image) are not read, and the response
says so, in a ``warnings`` field and in a note under the answer. The last user message is the
question: when it holds no text (an image alone), the request is refused (422), never answered
with an earlier question.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from rag.answer import Answer, Progress
from rag.body import shown_passages, supported_evidence
from rag.conversation import Rewrite, Turn
from rag.footnote import footnote, restated
from service.api import errors
from service.api.errors import ApiError, as_api_error, error_body
from service.api.limits import EventStream, until_disconnected
from service.api.schemas import NOT_BLANK, SourceOut, is_blank, valid_unicode
from service.api.sse import event, started
from service.components import Components
from service.deps import Shared, require_api_key
from service.routes.ask import check_question, observe

MODEL_ID = "shiori"
TEXT_PARTS = ("text", "input_text")  # input_text: OpenAI's Responses API, sent by some clients
router = APIRouter(prefix="/v1", tags=["openai"], dependencies=[Depends(require_api_key)])


class ChatContentPart(BaseModel):
    """One part of a message's content, OpenAI style: ``{"type": "text", "text": ...}``,
    ``{"type": "image_url", "image_url": {"url": ...}}``, ``input_audio``, ``file``,
    ``refusal``... Only "text" and "input_text" parts are read; the others are accepted and
    named as not read (`ChatMessage.unread`)."""

    model_config = ConfigDict(extra="allow", strict=True)

    type: str
    text: str | None = Field(
        default=None, description="at most SHIORI_MAX_QUESTION_CHARS characters (maxLength)"
    )


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    # a string, or a list of parts of any kinds and number, as OpenAI's API and SDK allow: chat
    # UIs send a text part and an image part when a picture is attached, some clients
    # instructions and question as two text parts; refusing those would refuse the question
    content: str | list[ChatContentPart] | None = Field(
        default=None,
        description="text of at most SHIORI_MAX_QUESTION_CHARS characters (maxLength), or a "
        'list of content parts: the "text" (or "input_text") parts are read, joined in order '
        "with a new line; other parts (image_url, input_audio, file) are not read, and the "
        "response says so (warnings)",
    )

    def text(self) -> str:
        """The message's text: the string, or its text parts joined in order with "\n"."""
        if isinstance(self.content, list):  # [{"type": "text", "text": ...}, ...]
            return "\n".join(p.text or "" for p in self.content if p.type in TEXT_PARTS)
        return self.content or ""

    def unread(self) -> list[str]:
        """The types of the parts that are not read (not text), in order: ["image_url"]."""
        if not isinstance(self.content, list):
            return []
        return [p.type for p in self.content if p.type not in TEXT_PARTS]


def unread_parts(messages: list[ChatMessage]) -> list[str]:
    """One warning per message with parts that are not read, e.g. "messages[0]: 1 image_url
    part not read (Shiori reads only the text of a message)". Empty when all was read."""
    warnings = []
    for n, message in enumerate(messages):
        kinds = message.unread()
        if kinds:
            counted = ", ".join(f"{kinds.count(k)} {k}" for k in dict.fromkeys(kinds))
            plural = "s" if len(kinds) > 1 else ""
            warnings.append(
                f"messages[{n}]: {counted} part{plural} not read "
                "(Shiori reads only the text of a message)"
            )
    return warnings


def unread_note(warnings: list[str]) -> str:
    """The warnings as a note under the answer, for a chat UI that shows only the text."""
    return "".join(f"\n\nNote: {w}" for w in warnings)


def _a_user_question(schema: dict[str, Any]) -> None:
    """The schema states what the route needs: some user message with text that is not blank
    (a string, or a list of parts with a text part; parts of other types may come with it)."""
    text = {"type": "string", "pattern": NOT_BLANK}
    schema["properties"]["messages"]["contains"] = {
        "type": "object",
        "required": ["role", "content"],
        "properties": {
            "role": {"const": "user"},
            "content": {
                "anyOf": [
                    text,
                    {
                        "type": "array",
                        "minItems": 1,
                        "contains": {
                            "type": "object",
                            "required": ["type", "text"],
                            "properties": {"type": {"enum": list(TEXT_PARTS)}, "text": text},
                        },
                    },
                ]
            },
        },
    }


class ChatRequest(BaseModel):
    # temperature, top_p ... are accepted and ignored
    model_config = ConfigDict(extra="allow", strict=True, json_schema_extra=_a_user_question)

    model: str = MODEL_ID
    messages: list[ChatMessage] = Field(
        min_length=1,
        description="at most SHIORI_MAX_CHAT_MESSAGES (maxItems); the last user message is the "
        "question, and must hold text (422 otherwise)",
    )
    stream: bool = False


def conversation_of(body: ChatRequest, parts: Components) -> tuple[str, list[Turn]]:
    """The last user message's text, and the user and assistant messages before it (system
    messages and blank ones left out), after the limits /openapi.json states. 422 when the last
    user message holds no text (an image alone): answering an earlier question instead would
    answer what was not asked."""
    s = parts.settings
    if len(body.messages) > s.max_chat_messages:
        raise ApiError(
            422,
            "invalid_request",
            f"{len(body.messages)} messages; the limit is {s.max_chat_messages} "
            "(SHIORI_MAX_CHAT_MESSAGES)",
        )
    for n, message in enumerate(body.messages):
        if len(message.text()) > s.max_question_chars:
            check_question(message.text(), parts, f"messages[{n}]")
    users = [at for at, m in enumerate(body.messages) if m.role == "user"]
    if not users:
        raise ApiError(422, "invalid_request", "messages hold no user message with text")
    at = users[-1]
    message = body.messages[at]
    if is_blank(message.text()):
        kinds = message.unread()
        unread = f" (only {', '.join(kinds)} parts, which Shiori does not read)" if kinds else ""
        raise ApiError(
            422,
            "invalid_request",
            f"the last user message, messages[{at}], holds no text to answer{unread}; "
            "send the question as text",
        )
    history = [
        Turn("user" if m.role == "user" else "assistant", valid_unicode(m.text()))
        for m in body.messages[:at]
        if m.role in ("user", "assistant") and not is_blank(m.text())
    ]
    return valid_unicode(message.text()), history


@router.get(
    "/models",
    summary="The model list OpenAI clients expect (one model: shiori)",
    responses=errors.responses(401),
)
async def models() -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "shiori"}],
    }


@router.post(
    "/chat/completions",
    summary="OpenAI-compatible chat over the notes",
    responses={
        200: {
            "description": "a chat.completion, or with stream: chat.completion.chunk events "
            "ending in data: [DONE]",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/event-stream": {},
            },
        },
        **errors.responses(401, 413, 422, 429, 503),
    },
)
async def chat_completions(body: ChatRequest, parts: Shared, request: Request) -> Any:
    question, history = conversation_of(body, parts)
    warnings = unread_parts(body.messages)  # said in the answer and in `warnings`, never silent
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    slots = parts.generation_slots
    if not body.stream:
        with slots.held(), parts.metrics.counting_llm_errors():
            answer = await until_disconnected(
                request, lambda: parts.answerer.ask(question, history=history)
            )
        observe(parts, answer)
        text = answer.answer + footnote(answer) + unread_note(warnings)
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": MODEL_ID,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": usage(answer),
            "sources": sources(answer),
            "abstained": answer.abstained,
            "question": answer.question,
            "warnings": warnings,
        }
    slots.take()
    try:
        with parts.metrics.counting_llm_errors():
            stream = await started(parts.answerer.stream(question, history=history))
    except BaseException:
        slots.give_back()
        raise
    return EventStream(
        chat_events(parts, stream, completion_id, created, warnings), on_close=slots.give_back
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
    body = answer.to_json()
    evidence: dict[int, list[dict[str, Any]]] = {}
    for e in supported_evidence(body):
        evidence.setdefault(e["n"], []).append(e)
    return [
        {
            **SourceOut.of(p["n"], answer.passages[p["n"] - 1]).model_dump(mode="json"),
            "evidence": evidence.get(p["n"], []),
        }
        for p in shown_passages(body)
    ]


async def chat_events(
    parts: Components,
    stream: AsyncIterator[str | Rewrite | Progress | Answer],
    completion_id: str,
    created: int,
    warnings: list[str] | None = None,
) -> AsyncIterator[str]:
    """OpenAI's chunk events for a streamed answer; the last chunk carries the footnote, the
    sources and ``warnings`` (content parts that were not read, also noted in the text)."""
    warnings = warnings or []

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
            if isinstance(item, Rewrite | Progress):  # named in the last chunk / not OpenAI's
                continue
            observe(parts, item)
            tail = footnote(item)
            if streamed.strip() != item.answer.strip():  # withdrawn, or citations repaired
                tail = restated(item) + tail
            yield chunk(
                {"content": tail + unread_note(warnings)},
                "stop",
                usage=usage(item),
                sources=sources(item),
                abstained=item.abstained,
                question=item.question,
                warnings=warnings,
            )
    except Exception as exc:
        known = as_api_error(exc)
        if known is None:
            raise
        yield event(error_body(known.kind, known.message))
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:  # closes the request to the LLM now, not when collected
            await aclose()
    yield event("[DONE]")
