"""`shiori mcp` with the SDK's own client in process, in front of the app with doubles for the
model and retrieval (tests/integration/test_mcp.py runs it over stdio against the real
service)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
from mcp import Client

from service.mcp_server import build_server
from shiori.client import AsyncShioriClient
from tests.unit.rag.test_conversation import FOLLOW_UP, STANDALONE, Recorder
from tests.unit.service.test_feedback import app_with

NOTES = {
    "collection": "notes",
    "chunks": 3,
    "notes": [
        {
            "source": "notes/word2vec.md",
            "title": "Word2Vec",
            "chunks": 3,
            "size": 9,
            "tags": ["nlp"],
        }
    ],
}


def connector(app: Any) -> Any:
    asgi = httpx.ASGITransport(app=app)

    async def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/notes":  # the doubles have no index to list
            return httpx.Response(200, json=NOTES)
        return await asgi.handle_async_request(request)

    def connect() -> AsyncShioriClient:
        client = AsyncShioriClient("http://shiori")
        client.http = httpx.AsyncClient(
            base_url="http://shiori", transport=httpx.MockTransport(route)
        )
        return client

    return connect


def test_the_tools_are_read_only_and_answers_come_with_citations(tmp_path: Path) -> None:
    llm = Recorder(
        json.dumps({"question": STANDALONE}, ensure_ascii=False),
        "Word2Vec は 2013 年に発表された。[1]",
    )
    server = build_server(connector(app_with(tmp_path, llm)))

    async def session() -> dict[str, Any]:
        async with Client(server) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            history = [
                {"role": "user", "content": "Skip-gram があるのはどの手法？"},
                {"role": "assistant", "content": "Word2Vec です（GloVe ではない）。"},
            ]
            asked = await client.call_tool("ask", {"question": FOLLOW_UP, "history": history})
            found = await client.call_tool("search", {"question": "Word2Vec"})
            notes = await client.call_tool("list_notes", {})
            bad = await client.call_tool("ask", {"question": ""})
            return {"tools": tools, "asked": asked, "found": found, "notes": notes, "bad": bad}

    got = asyncio.run(session())
    assert set(got["tools"]) == {"ask", "search", "list_notes"}
    for tool in got["tools"].values():
        assert tool.annotations.read_only_hint and not tool.annotations.destructive_hint
        assert tool.output_schema and tool.output_schema["type"] == "object"
    asked = got["asked"]
    assert not asked.is_error, asked
    data = asked.structured_content
    assert data["question"] == STANDALONE and not data["abstained"] and "2013" in data["answer"]
    (citation,) = data["citations"]
    assert citation["n"] == 1 and citation["lines"] == [3, 3]
    assert citation["evidence"] and "2013" in citation["evidence"][0]["text"]
    text = asked.content[0].text
    assert "Sources:" in text and "[1] n/gemma.md:3 — Gemma > 公開" in text
    assert got["found"].structured_content["results"][0]["source"] == "n/gemma.md"
    assert got["notes"].structured_content["notes"][0]["tags"] == ["nlp"]
    assert got["bad"].is_error  # an empty question is refused by the tool's schema


def test_a_service_error_is_a_tool_error_in_words(tmp_path: Path) -> None:
    server = build_server(connector(app_with(tmp_path, Recorder("", "", status=500))))

    async def call() -> Any:
        async with Client(server) as client:
            return await client.call_tool("ask", {"question": "Word2Vec は何年？"})

    result = asyncio.run(call())
    assert result.is_error and "llm_unavailable" in result.content[0].text
