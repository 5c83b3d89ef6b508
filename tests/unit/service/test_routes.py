"""The answer routes with doubles for retrieval and the LLM (the real-part tests are in
tests/integration/test_service.py): what each shows of an answer and of an abstention, and
that an LLM that fails is a 503 counted once per request, plain or streamed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from rag.prompt import NOT_FOUND
from tests.unit.rag.test_conversation import Recorder
from tests.unit.service.test_feedback import app_with, request

QUESTION = "Word2Vec は何年に発表されましたか？"
CHAT = {"messages": [{"role": "user", "content": QUESTION}]}


def test_an_answer_shows_the_passages_it_cites_with_their_evidence(tmp_path: Path) -> None:
    app = app_with(tmp_path, Recorder("", "Word2Vec は 2013 年に発表された。[1]"))
    asked = asyncio.run(request(app, "POST", "/v1/ask", {"question": QUESTION})).json()
    assert not asked["abstained"] and [c["n"] for c in asked["citations"]] == [1]
    chat = asyncio.run(request(app, "POST", "/v1/chat/completions", CHAT)).json()
    (source,) = chat["sources"]
    assert source["n"] == 1 and source["evidence"], chat
    assert source["evidence"][0]["text"] in chat["choices"][0]["message"]["content"]
    assert "\n\nSources:\n[1] n/gemma.md:3 — " in chat["choices"][0]["message"]["content"]


def test_an_abstention_shows_the_closest_passages_without_evidence(tmp_path: Path) -> None:
    app = app_with(tmp_path, Recorder("", NOT_FOUND))
    asked = asyncio.run(request(app, "POST", "/v1/ask", {"question": QUESTION})).json()
    assert asked["abstained"] and asked["citations"] == [] and len(asked["contexts"]) == 1
    chat = asyncio.run(request(app, "POST", "/v1/chat/completions", CHAT)).json()
    assert chat["abstained"]
    assert [s["n"] for s in chat["sources"]] == [1]
    assert all(s["evidence"] == [] for s in chat["sources"])
    assert "\n\nClosest passages:\n[1] n/gemma.md:3-3" in chat["choices"][0]["message"]["content"]


def test_an_llm_that_fails_is_503_and_counted_once_per_request(tmp_path: Path) -> None:
    app = app_with(tmp_path, Recorder("", "", status=500))
    bodies: list[tuple[str, dict[str, Any]]] = [
        ("/v1/ask", {"question": QUESTION}),
        ("/v1/ask", {"question": QUESTION, "stream": True}),
        ("/v1/chat/completions", CHAT),
        ("/v1/chat/completions", {**CHAT, "stream": True}),
    ]
    for path, body in bodies:
        r = asyncio.run(request(app, "POST", path, body))
        assert r.status_code == 503 and r.json()["error"]["type"] == "llm_unavailable", (path, r)
    assert asyncio.run(request(app, "POST", "/v1/search", {"question": QUESTION})).is_success
    metrics = app.state.components.metrics
    assert metrics.registry.get_sample_value("shiori_llm_errors_total") == len(bodies)


def test_a_stream_says_what_it_is_doing_before_the_first_token(tmp_path: Path) -> None:
    """``status`` events (found N passages, writing, checking) come before the answer's text,
    so a reader sees progress while the model reads its prompt."""
    app = app_with(tmp_path, Recorder("", "Word2Vec は 2013 年に発表された。[1]"))
    r = asyncio.run(request(app, "POST", "/v1/ask", {"question": QUESTION, "stream": True}))
    names = [line[7:] for line in r.text.splitlines() if line.startswith("event: ")]
    first_delta = names.index("delta")
    assert names[:first_delta] == ["status", "status"], names
    assert "status" in names[first_delta:] and names[-1] == "final"
    statuses = [
        json.loads(line[6:])
        for line, before in zip(r.text.splitlines()[1:], r.text.splitlines(), strict=False)
        if before == "event: status"
    ]
    assert [s["stage"] for s in statuses] == ["found", "writing", "checking"]
    assert statuses[0]["passages"] == 1
