"""Bounded work in the HTTP layer (service/api/limits.py), with the answer engine replaced by a
double that generates until cancelled: bodies counted while they arrive, a bounded number of
generations (429 + Retry-After), and a client that leaves cancels its generation. The same
with the real parts: tests/integration/test_contract.py (bodies) and test_backpressure.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from service.api.limits import GenerationSlots
from service.app import create_app
from service.components import Components
from service.metrics import Metrics
from shiori.config import Settings


@dataclass
class EndlessAnswerer:
    """Generates forever, token by token, until cancelled or closed; records what happened."""

    started: int = 0
    ended: list[str] = field(default_factory=list)

    async def ask(self, question: str, *args: Any) -> Any:
        self.started += 1
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.ended.append("cancelled")
            raise

    async def stream(self, question: str, *args: Any) -> AsyncIterator[str]:
        self.started += 1
        try:
            while True:
                yield "token "
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            self.ended.append("cancelled")
            raise
        except GeneratorExit:
            self.ended.append("closed")
            raise


def app_with(answerer: EndlessAnswerer, **settings: Any) -> Any:
    s = Settings(qdrant=":memory:", **settings)
    parts = Components(
        settings=s, embedder=None, client=None, index=None, retriever=None, llm=None,  # type: ignore[arg-type]
        answerer=answerer, ingestor=None, feedback=None, metrics=Metrics(),  # type: ignore[arg-type]
        generation_slots=GenerationSlots(s.max_generations, s.busy_retry_after_s),
    )  # fmt: skip
    app = create_app(s, parts)
    app.state.components = parts
    return app


class Exchange:
    """One request driven at the ASGI level, so the test decides when the client leaves."""

    def __init__(self, app: Any, path: str, body: bytes, chunks: int = 1) -> None:
        self.app, self.body, self.chunks = app, body, chunks
        self.scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "method": "POST", "scheme": "http", "path": path,
            "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": [(b"content-type", b"application/json"), (b"host", b"shiori")],
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
        }  # fmt: skip
        self.sent: list[dict[str, Any]] = []
        self.received_parts = 0
        self.gone = asyncio.Event()
        self.got_body = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        if self.received_parts < self.chunks:
            size = -(-len(self.body) // self.chunks)
            part = self.body[self.received_parts * size : (self.received_parts + 1) * size]
            self.received_parts += 1
            return {"type": "http.request", "body": part,
                    "more_body": self.received_parts < self.chunks}  # fmt: skip
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        if message["type"] == "http.response.body" and message.get("body"):
            self.got_body.set()

    async def run(self) -> None:
        await self.app(self.scope, self.receive, self.send)

    @property
    def status(self) -> int:
        return next(m["status"] for m in self.sent if m["type"] == "http.response.start")

    def header(self, name: str) -> str | None:
        start = next(m for m in self.sent if m["type"] == "http.response.start")
        return dict(start["headers"]).get(name.encode(), b"").decode() or None

    def json(self) -> Any:
        return json.loads(b"".join(m.get("body", b"") for m in self.sent[1:]))


def ask_body(stream: bool) -> bytes:
    return json.dumps({"question": "LoRA とは？", "stream": stream}).encode()


def test_a_client_that_leaves_cancels_its_streamed_generation() -> None:
    answerer = EndlessAnswerer()
    app = app_with(answerer)

    async def go() -> None:
        ex = Exchange(app, "/v1/ask", ask_body(True))
        task = asyncio.create_task(ex.run())
        await asyncio.wait_for(ex.got_body.wait(), 10)
        assert ex.status == 200 and app.state.components.generation_slots.in_use == 1
        ex.gone.set()  # the client closes its connection mid-answer
        await asyncio.wait_for(task, 10)

    asyncio.run(go())
    assert answerer.ended == ["cancelled"]
    assert app.state.components.generation_slots.in_use == 0


def test_a_client_that_leaves_cancels_its_plain_generation() -> None:
    answerer = EndlessAnswerer()
    app = app_with(answerer)

    async def go() -> int:
        ex = Exchange(app, "/v1/ask", ask_body(False))
        task = asyncio.create_task(ex.run())
        while answerer.started == 0:
            await asyncio.sleep(0.01)
        ex.gone.set()
        await asyncio.wait_for(task, 10)
        return ex.status

    assert asyncio.run(go()) == 499  # nobody reads it; the access log and metrics do
    assert answerer.ended == ["cancelled"]
    assert app.state.components.generation_slots.in_use == 0


@pytest.mark.parametrize("stream", [False, True])
def test_generations_beyond_the_limit_get_429_with_retry_after(stream: bool) -> None:
    answerer = EndlessAnswerer()
    app = app_with(answerer, max_generations=2, busy_retry_after_s=7)

    async def go() -> None:
        held = [Exchange(app, "/v1/ask", ask_body(stream)) for _ in range(2)]
        tasks = [asyncio.create_task(ex.run()) for ex in held]
        while answerer.started < 2:
            await asyncio.sleep(0.01)
        third = Exchange(app, "/v1/ask", ask_body(stream))
        await asyncio.wait_for(third.run(), 10)
        assert third.status == 429 and third.header("retry-after") == "7"
        assert third.json()["error"]["type"] == "busy"
        assert "SHIORI_MAX_GENERATIONS" in third.json()["error"]["message"]
        question = {"messages": [{"role": "user", "content": "LoRA"}]}
        chat = Exchange(app, "/v1/chat/completions", json.dumps(question).encode())
        await asyncio.wait_for(chat.run(), 10)
        assert chat.status == 429
        for ex in held:
            ex.gone.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        assert app.state.components.generation_slots.in_use == 0
        again = Exchange(app, "/v1/ask", ask_body(stream))  # a slot is free again
        task = asyncio.create_task(again.run())
        while answerer.started < 3:
            await asyncio.sleep(0.01)
        again.gone.set()
        await asyncio.wait_for(task, 10)

    asyncio.run(go())


def test_a_body_without_length_is_refused_once_past_the_limit() -> None:
    app = app_with(EndlessAnswerer(), max_request_kb=1)

    async def go() -> Exchange:
        body = b'{"question": "' + b"a" * 100_000 + b'"}'
        ex = Exchange(app, "/v1/search", body, chunks=100)  # 1 KB parts, no Content-Length
        await asyncio.wait_for(ex.run(), 10)
        return ex

    ex = asyncio.run(go())
    assert ex.status == 413 and ex.json()["error"]["type"] == "payload_too_large"
    assert ex.received_parts <= 3, "the body was read past the limit"


def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    app = app_with(EndlessAnswerer(), max_request_kb=1)

    async def go() -> Exchange:
        ex = Exchange(app, "/v1/search", b"x" * 5000)
        ex.scope["headers"].append((b"content-length", b"5000"))
        await asyncio.wait_for(ex.run(), 10)
        return ex

    ex = asyncio.run(go())
    assert ex.status == 413 and "SHIORI_MAX_REQUEST_KB" in ex.json()["error"]["message"]
    assert ex.received_parts == 0
