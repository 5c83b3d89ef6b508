"""Case 23 (issue 25) with doubles: the OpenAI facade reads ``messages[].content`` given as a
list of content parts of any number and kinds, as OpenAI's API allows: the text parts joined in
order, other parts (an image) not read and named in ``warnings`` and in a note under the answer.
The real-part version is tests/integration/test_ingest_cases_uploads.py."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.rag.test_conversation import Recorder
from tests.unit.service.test_feedback import app_with, request

QUESTION = "Word2Vec は何年に発表されましたか？"
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
BODIES: dict[str, Any] = {
    "string": QUESTION,
    "image-part": [{"type": "text", "text": QUESTION}, IMAGE],
    "two-text-parts": [
        {"type": "text", "text": "ノートの内容だけで答えてください。"},
        {"type": "text", "text": QUESTION},
    ],
}


def chat(content: Any, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": content}], **extra}


@pytest.mark.parametrize("name", list(BODIES))
def test_every_content_shape_gets_the_status_of_the_plain_string(tmp_path: Path, name: str) -> None:
    llm = Recorder("", "Word2Vec は 2013 年に発表された。[1]")
    r = asyncio.run(request(app_with(tmp_path, llm), "POST", "/v1/chat/completions",
                            chat(BODIES[name])))  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    text = body["choices"][0]["message"]["content"]
    assert "2013" in text and not body["abstained"]
    # the text parts reach the model in order, joined
    prompt = json.dumps(llm.requests[-1], ensure_ascii=False)
    assert QUESTION in prompt
    if name == "two-text-parts":
        assert "ノートの内容だけで答えてください。\\n" + QUESTION in prompt
    if name == "image-part":  # never silently dropped: a warning and a note in the text
        (warning,) = body["warnings"]
        assert "image_url" in warning and "not read" in warning
        assert f"Note: {warning}" in text
        assert "iVBORw0KGgo" not in prompt  # the image itself is not sent on
    else:
        assert body["warnings"] == []


def test_without_an_llm_every_shape_is_the_same_503(tmp_path: Path) -> None:
    app = app_with(tmp_path, Recorder("", "", status=500))
    for content in BODIES.values():
        r = asyncio.run(request(app, "POST", "/v1/chat/completions", chat(content)))
        assert r.status_code == 503 and r.json()["error"]["type"] == "llm_unavailable", r.text


def test_a_stream_names_the_unread_parts_in_its_last_chunk(tmp_path: Path) -> None:
    app = app_with(tmp_path, Recorder("", "Word2Vec は 2013 年に発表された。[1]"))
    r = asyncio.run(request(app, "POST", "/v1/chat/completions",
                            chat(BODIES["image-part"], stream=True)))  # fmt: skip
    assert r.status_code == 200, r.text
    events = [json.loads(line[5:]) for line in r.text.splitlines()
              if line.startswith("data:") and line[5:].strip() != "[DONE]"]  # fmt: skip
    last = next(e for e in reversed(events) if e.get("choices"))
    assert "image_url" in last["warnings"][0]
    assert "Note: " in last["choices"][0]["delta"]["content"]


def test_an_image_alone_is_refused_naming_the_unread_part(tmp_path: Path) -> None:
    app = app_with(tmp_path, Recorder("", ""))
    r = asyncio.run(request(app, "POST", "/v1/chat/completions", chat([IMAGE])))
    assert r.status_code == 422
    message = r.json()["error"]["message"]
    assert "no text" in message and "image_url" in message


def test_input_text_parts_are_read_like_text_parts(tmp_path: Path) -> None:
    """OpenAI's Responses API (and clients that follow it) send ``input_text`` parts."""
    llm = Recorder("", "Word2Vec は 2013 年に発表された。[1]")
    content = [{"type": "input_text", "text": QUESTION}, IMAGE]
    r = asyncio.run(request(app_with(tmp_path, llm), "POST", "/v1/chat/completions",
                            chat(content)))  # fmt: skip
    assert r.status_code == 200, r.text
    assert QUESTION in json.dumps(llm.requests[-1], ensure_ascii=False)
    (warning,) = r.json()["warnings"]
    assert "image_url" in warning and "input_text" not in warning


def test_a_last_message_of_an_image_alone_never_answers_the_question_before(
    tmp_path: Path,
) -> None:
    llm = Recorder("", "Word2Vec は 2013 年に発表された。[1]")
    body = {
        "messages": [
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": "2013 年です。"},
            {"role": "user", "content": [IMAGE]},
        ]
    }
    r = asyncio.run(request(app_with(tmp_path, llm), "POST", "/v1/chat/completions", body))
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert "last user message" in message and "messages[2]" in message and "image_url" in message
    assert not llm.requests
