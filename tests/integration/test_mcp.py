"""`shiori mcp` as assistants run it: a separate process over stdio (and streamable HTTP), driven
by the official SDK's client, answering through the real service (real vLLM, real
EmbeddingGemma, the bundled notes in embedded Qdrant, API keys on)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from mcp import Client, StdioServerParameters
from pydantic import SecretStr

from service.components import Components
from shiori.config import Settings
from shiori.embedding import Embedder
from shiori.index import NoteIndex
from tests.conftest import REPO
from tests.integration.conftest import free_port, settings_for
from tests.integration.test_web import LiveServer

pytestmark = pytest.mark.slow
KEY = "mcp-test-key"


@pytest.fixture(scope="module")
def service(
    llm_settings: Settings, notes_index: NoteIndex, embedder: Embedder
) -> Iterator[LiveServer]:
    settings = settings_for(notes_index, llm_settings, api_keys=[SecretStr(KEY)])
    with LiveServer(Components.assemble(settings, embedder, notes_index)) as server:
        yield server


def environment() -> dict[str, str]:
    return {**os.environ, "SHIORI_API_KEY": KEY, "PYTHONPATH": str(REPO)}


def test_an_assistant_lists_the_tools_and_gets_a_cited_answer(service: LiveServer) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "shiori.cli", "mcp", "--server", service.url],
        env=environment(),
        cwd=str(REPO),
    )

    async def session() -> dict[str, Any]:
        async with Client(params, read_timeout_seconds=600) as client:
            tools = await client.list_tools()
            notes = await client.call_tool("list_notes", {})
            asked = await client.call_tool(
                "ask", {"question": "Gemma が公開されたのはいつですか？"}
            )
            return {"tools": tools.tools, "notes": notes, "asked": asked}

    got = asyncio.run(session())
    assert {t.name for t in got["tools"]} == {"ask", "search", "list_notes"}
    assert all(t.annotations.read_only_hint for t in got["tools"])
    assert len(got["notes"].structured_content["notes"]) == 15
    asked = got["asked"]
    assert not asked.is_error, asked.content
    data = asked.structured_content
    assert not data["abstained"] and "2024" in data["answer"], data
    gemma = [c for c in data["citations"] if c["source"] == "notes/05-gemma.md"]
    assert gemma, data["citations"]
    # the evidence sentence with the date, with its own line in the note
    evidence = [e for c in gemma for e in c["evidence"]]
    assert any("2月21日" in e["text"] and e["lines"] == [17, 17] for e in evidence), evidence
    assert "notes/05-gemma.md:" in asked.content[0].text  # the same, readable


def test_streamable_http_serves_the_same_tools(service: LiveServer) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shiori.cli",
            "mcp",
            "--http",
            "--port",
            str(port),
            "--server",
            service.url,
        ],
        env=environment(),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=2)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"shiori mcp --http did not start: {proc.stderr.read()!r}")  # type: ignore[union-attr]
                time.sleep(0.3)

        async def session() -> Any:
            async with Client(f"http://127.0.0.1:{port}/mcp") as client:
                found = await client.call_tool("search", {"question": "LoRA の r", "top_k": 3})
                return found

        found = asyncio.run(session())
        results = found.structured_content["results"]
        assert len(results) == 3 and results[0]["source"] == "notes/09-lora.md", results
    finally:
        proc.terminate()
        proc.wait(timeout=30)
