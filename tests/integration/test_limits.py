"""Bounded work with the real parts: the app under uvicorn on 127.0.0.1, the real vLLM CPU
server, the bundled notes in embedded Qdrant. A client that goes away aborts its vLLM request
(vLLM's own metrics say so: the request leaves the running ones at once without finishing,
where running to its end takes tens of seconds at 400 tokens), and generations beyond
SHIORI_MAX_GENERATIONS get 429 while search goes on. (Bodies counted while they arrive:
test_contract.py.)"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn

from service.app import create_app
from service.components import Components
from shiori.config import Settings
from shiori.embedding import Embedder
from shiori.index import NoteIndex
from tests.integration.conftest import LLM_KEY, free_port, settings_for

pytestmark = pytest.mark.slow
LONG = "LoRA の仕組みと利点と r の選び方を、できるだけ詳しく説明してください。"
OUTSIDE = "フランスの首都はどこですか？"  # refused before generation


@contextmanager
def live(parts: Components) -> Iterator[str]:
    port = free_port()
    app = create_app(parts.settings, parts)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def vllm_metric(llm: Settings, name: str, **labels: str) -> float:
    """The sum of a vLLM Prometheus metric over the series that carry ``labels``."""
    base = llm.llm_url.removesuffix("/v1")
    text = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {LLM_KEY}"}).text
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s+(\S+)$", line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            total += float(match.group(2))
    return total


def running(llm: Settings) -> float:
    return vllm_metric(llm, "vllm:num_requests_running")


def finished(llm: Settings) -> float:
    """Requests vLLM completed: a stop sequence or max_tokens (an aborted one is neither)."""
    return sum(
        vllm_metric(llm, "vllm:request_success_total", finished_reason=reason)
        for reason in ("stop", "length")
    )


def wait_for(condition, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def raw_post(url: str, path: str, body: dict[str, object]) -> socket.socket:
    """Send a request on a socket the test closes itself, as a browser tab that is shut."""
    host, port = url.removeprefix("http://").split(":")
    data = json.dumps(body).encode()
    sock = socket.create_connection((host, int(port)))
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n".encode()
        + data
    )
    return sock


def read_until(sock: socket.socket, marker: bytes, timeout: float = 120) -> bytes:
    sock.settimeout(timeout)
    seen = b""
    while marker not in seen:
        part = sock.recv(4096)
        assert part, f"the connection closed before {marker!r}: {seen[-500:]!r}"
        seen += part
    return seen


@pytest.fixture(scope="module")
def parts(
    llm_settings: Settings, notes_index: NoteIndex, embedder: Embedder
) -> Iterator[Components]:
    settings = settings_for(notes_index, llm_settings, llm_max_tokens=400, max_generations=1)
    yield Components.assemble(settings, embedder, notes_index)


def test_a_streamed_answer_whose_client_leaves_is_aborted_in_vllm(
    parts: Components, llm_settings: Settings
) -> None:
    before = finished(llm_settings)
    with live(parts) as url:
        sock = raw_post(url, "/v1/ask", {"question": LONG, "stream": True})
        read_until(sock, b"event: delta")
        assert wait_for(lambda: running(llm_settings) == 1, timeout=5)
        sock.close()  # the tab is closed mid-answer
        assert wait_for(lambda: running(llm_settings) == 0, timeout=5)
        assert finished(llm_settings) == before, "the generation ran to its end"
        assert wait_for(lambda: parts.generation_slots.in_use == 0, timeout=5)


def test_a_plain_answer_whose_client_leaves_is_aborted_in_vllm(
    parts: Components, llm_settings: Settings
) -> None:
    before = finished(llm_settings)
    with live(parts) as url:
        sock = raw_post(url, "/v1/ask", {"question": LONG})
        assert wait_for(lambda: running(llm_settings) == 1, timeout=60), "never generated"
        sock.close()
        assert wait_for(lambda: running(llm_settings) == 0, timeout=5)
        assert finished(llm_settings) == before, "the generation ran to its end"
        assert wait_for(lambda: parts.generation_slots.in_use == 0, timeout=5)


def test_generations_beyond_the_limit_get_429_and_search_goes_on(
    parts: Components, llm_settings: Settings
) -> None:
    with live(parts) as url, httpx.Client(base_url=url, timeout=120) as http:
        sock = raw_post(url, "/v1/ask", {"question": LONG, "stream": True})
        read_until(sock, b"event: delta")  # the one generation slot is taken
        busy = http.post("/v1/ask", json={"question": OUTSIDE})
        assert busy.status_code == 429 and busy.headers["retry-after"] == "5"
        assert busy.json()["error"]["type"] == "busy"
        chat = {"messages": [{"role": "user", "content": OUTSIDE}]}
        assert http.post("/v1/chat/completions", json=chat).status_code == 429
        assert http.post("/v1/search", json={"question": LONG}).status_code == 200
        sock.close()
        assert wait_for(lambda: parts.generation_slots.in_use == 0, timeout=10)
        assert http.post("/v1/ask", json={"question": OUTSIDE}).status_code == 200
