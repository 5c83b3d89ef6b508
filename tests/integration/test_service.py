"""The HTTP API end to end with the real parts: the bundled notes in embedded Qdrant, the real
embedding model, and the real vLLM CPU server answering.

The app runs in process (httpx over ASGI: the same requests and responses as over a socket);
`test_cli_through_a_running_service` also runs `shiori serve` as a real process.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from runtime.serve_process import serve_command, serving
from service.app import create_app
from service.components import Components
from shiori.client import parse_sse
from shiori.config import Settings
from shiori.embedding import Embedder
from shiori.index import NoteIndex, open_client
from tests.integration.conftest import free_port, settings_for

pytestmark = pytest.mark.slow
GEMMA_DATE = "Gemma が公開されたのはいつですか？"


def client_for(parts: Components) -> httpx.AsyncClient:
    app = create_app(parts.settings, parts)
    app.state.components = parts  # httpx's ASGI transport does not run the lifespan
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://shiori")


@pytest.fixture(scope="module")
def parts(
    llm_settings: Settings, notes_index: NoteIndex, embedder: Embedder
) -> Iterator[Components]:
    yield Components.assemble(settings_for(notes_index, llm_settings), embedder, notes_index)


_loop: list[asyncio.Runner] = []


@pytest.fixture(scope="module", autouse=True)
def one_event_loop() -> Iterator[None]:
    """One loop for the module, as in a server: the shared async LLM client's connections
    belong to the loop that opened them."""
    with asyncio.Runner() as runner:
        _loop.append(runner)
        yield
        _loop.clear()


def run(coro: Any) -> Any:
    return _loop[0].run(coro)


async def post(parts: Components, path: str, body: dict[str, Any], **kw: Any) -> httpx.Response:
    async with client_for(parts) as http:
        return await http.post(path, json=body, timeout=300, **kw)


async def stream(parts: Components, path: str, body: dict[str, Any]) -> list[tuple[str, Any]]:
    async with client_for(parts) as http, http.stream("POST", path, json=body, timeout=300) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = [line async for line in r.aiter_lines()]
    events = []
    for name, data in parse_sse(iter(line for line in lines if "[DONE]" not in line)):
        events.append((name, data))
    assert any("[DONE]" in line for line in lines) == path.endswith("completions")
    return events


def note_lines(source: dict[str, Any]) -> list[str]:
    path = Path(__file__).resolve().parents[2] / source["source"]
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[source["lines"][0] - 1 : source["lines"][1]]


def test_japanese_question_cites_the_note_and_lines_that_hold_the_answer(
    parts: Components,
) -> None:
    r = run(post(parts, "/v1/ask", {"question": GEMMA_DATE}))
    assert r.status_code == 200, r.text
    body = r.json()
    assert not body["abstained"], body
    assert "2024" in body["answer"] and "21" in body["answer"]
    assert body["citations"] and body["invalid_markers"] == [] and body["unsupported"] == []
    gemma = [c for c in body["citations"] if c["source"].endswith("05-gemma.md")]
    assert gemma and any("2月21日" in line for c in gemma for line in note_lines(c))
    for c in body["citations"]:  # every marker in the text maps to a listed citation
        assert f"[{c['n']}]" in body["answer"]
    assert set(body["timings"]) >= {"retrieve_ms", "generate_ms", "total_ms"}
    assert body["usage"]["prompt_tokens"] > 0 and body["model"] == parts.settings.llm_model


def test_english_question_over_japanese_notes(parts: Components) -> None:
    body = run(post(parts, "/v1/ask", {"question": "When did Google release Gemma?"})).json()
    assert not body["abstained"], body
    assert "2024" in body["answer"]
    assert any(c["source"].endswith("05-gemma.md") for c in body["citations"])
    assert body["unsupported"] == []


@pytest.mark.parametrize(
    "question",
    [
        "Gemma 2 の 27B モデルは何兆トークンで学習されましたか？",  # a number the note lacks
        "What is the price of Claude 3.5 Sonnet per million tokens?",  # a neighbouring model
        "フランスの首都はどこですか？",  # general knowledge, not in the notes
    ],
)
def test_questions_the_notes_cannot_answer_are_refused(parts: Components, question: str) -> None:
    body = run(post(parts, "/v1/ask", {"question": question})).json()
    assert body["abstained"], body
    assert body["citations"] == [] and body["contexts"], "closest passages are still listed"
    japanese = any("\u3040" <= ch <= "\u9fff" for ch in question)
    assert ("ノート" in body["answer"]) == japanese  # refused in the question's language


def test_a_streamed_answer_equals_the_plain_one(parts: Components) -> None:
    plain = run(post(parts, "/v1/ask", {"question": GEMMA_DATE})).json()
    events = run(stream(parts, "/v1/ask", {"question": GEMMA_DATE, "stream": True}))
    names = [name for name, _ in events]
    assert names[-1] == "final" and names.count("final") == 1 and "delta" in names
    final = events[-1][1]
    assert final["answer"] == plain["answer"]
    assert final["citations"] == plain["citations"] and final["abstained"] is False
    assert "first_token_ms" in final["timings"]
    streamed = "".join(data["text"] for name, data in events if name == "delta")
    assert "2024" in streamed


def test_openai_facade_answers_with_sources_plain_and_streamed(parts: Components) -> None:
    body = {"model": "shiori", "messages": [{"role": "user", "content": GEMMA_DATE}]}
    r = run(post(parts, "/v1/chat/completions", body))
    assert r.status_code == 200, r.text
    plain = r.json()
    content = plain["choices"][0]["message"]["content"]
    assert "2024" in content and "05-gemma.md" in content and plain["sources"]
    chunks = run(stream(parts, "/v1/chat/completions", {**body, "stream": True}))
    text = "".join(c["choices"][0]["delta"].get("content") or "" for _, c in chunks)
    answer = content.partition("\n\nSources:")[0]
    # the stream ends with the same sources; if the checked answer differs from what was
    # streamed (a repaired citation), it is appended, so the stream never ends unchecked
    assert text.endswith(content[len(answer) :]) and answer in text
    assert chunks[-1][1]["choices"][0]["finish_reason"] == "stop"


def test_the_openai_sdk_works_unchanged(parts: Components) -> None:
    from openai import AsyncOpenAI

    async def go() -> str:
        app = create_app(parts.settings, parts)
        app.state.components = parts
        transport = httpx.ASGITransport(app=app)
        sdk = AsyncOpenAI(
            base_url="http://shiori/v1",
            api_key="unused",
            http_client=httpx.AsyncClient(transport=transport, timeout=300),
        )
        assert [m.id for m in (await sdk.models.list()).data] == ["shiori"]
        reply = await sdk.chat.completions.create(
            model="shiori", messages=[{"role": "user", "content": "LoRA の r とは何ですか？"}]
        )
        return reply.choices[0].message.content or ""

    assert "09-lora.md" in run(go())


def test_search_filters_and_limits(parts: Components) -> None:
    r = run(post(parts, "/v1/search", {"question": "LoRA", "top_k": 3,
                                       "filters": {"sources": ["notes/05-gemma.md"]}}))  # fmt: skip
    assert r.status_code == 200
    assert [x["source"] for x in r.json()["results"]] == ["notes/05-gemma.md"] * 3
    assert [x["n"] for x in r.json()["results"]] == [1, 2, 3]
    too_long = run(post(parts, "/v1/ask", {"question": "あ" * 5000}))
    assert too_long.status_code == 422 and "SHIORI_MAX_QUESTION_CHARS" in too_long.text
    too_many = run(post(parts, "/v1/search", {"question": "LoRA", "top_k": 500}))
    assert too_many.status_code == 422 and "SHIORI_MAX_TOP_K" in too_many.text
    for bad in ({}, {"question": ""}, {"question": "x", "filters": {"nope": 1}}):
        r = run(post(parts, "/v1/ask", bad))
        assert r.status_code == 422 and r.json()["error"]["type"] == "invalid_request"

    async def raw() -> httpx.Response:
        async with client_for(parts) as http:
            return await http.post("/v1/ask", content=b"{not json", timeout=30)

    assert run(raw()).status_code == 422


def test_api_keys(parts: Components) -> None:
    locked = Components(**{**vars(parts), "settings": parts.settings.model_copy(
        update={"api_keys": [SecretStr("first-key"), SecretStr("second-key")]})})  # fmt: skip
    body = {"question": "LoRA", "top_k": 1}
    assert run(post(locked, "/v1/search", body)).status_code == 401
    wrong = run(post(locked, "/v1/search", body, headers={"Authorization": "Bearer nope"}))
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert run(post(locked, "/v1/search", body, headers={"X-API-Key": "second-key"})).is_success
    assert run(post(parts, "/v1/search", body)).is_success  # no keys configured: open

    async def get(path: str) -> int:
        async with client_for(locked) as http:
            return (await http.get(path)).status_code

    assert run(get("/healthz")) == 200 and run(get("/metrics")) == 401


def test_llm_down_gives_503_while_search_and_health_work(
    parts: Components, embedder: Embedder
) -> None:
    dead = parts.settings.model_copy(
        update={"llm_url": f"http://127.0.0.1:{free_port()}/v1", "llm_timeout_s": 5}
    )
    down = Components.assemble(dead, embedder, parts.index)
    r = run(post(down, "/v1/ask", {"question": GEMMA_DATE}))
    assert r.status_code == 503
    assert r.json()["error"]["type"] == "llm_unavailable" and dead.llm_url in r.text
    assert run(post(down, "/v1/ask", {"question": GEMMA_DATE, "stream": True})).status_code == 503
    chat = {"messages": [{"role": "user", "content": GEMMA_DATE}]}
    assert run(post(down, "/v1/chat/completions", chat)).status_code == 503
    assert run(post(down, "/v1/search", {"question": GEMMA_DATE})).status_code == 200

    async def get(path: str) -> httpx.Response:
        async with client_for(down) as http:
            return await http.get(path)

    ready = run(get("/readyz"))
    assert ready.status_code == 503
    assert ready.json()["qdrant"]["ok"] and not ready.json()["llm"]["ok"]
    assert run(get("/healthz")).status_code == 200
    metrics = run(get("/metrics")).text
    assert 'shiori_requests_total{route="/v1/ask",status="503"}' in metrics
    assert "shiori_llm_errors_total 3.0" in metrics


def test_metrics_count_answers_and_stages(parts: Components) -> None:
    fresh = Components(**{**vars(parts), "metrics": type(parts.metrics)()})
    run(post(fresh, "/v1/ask", {"question": "フランスの首都はどこですか？"}))

    async def get() -> str:
        async with client_for(fresh) as http:
            return (await http.get("/metrics")).text

    text = get_text = run(get())
    assert 'shiori_requests_total{route="/v1/ask",status="200"} 1.0' in text
    assert 'shiori_stage_seconds_count{stage="retrieve"} 1.0' in get_text
    assert "shiori_answers_total{outcome=" in text


# --- ingest through the service ------------------------------------------------------------


@pytest.fixture
def ingest_parts(
    tmp_path: Path, embedder: Embedder, llm_settings: Settings
) -> Iterator[Components]:
    root = tmp_path / "allowed"
    root.mkdir()
    settings = Settings(
        qdrant=str(tmp_path / "store"),
        ingest_roots=[root],
        uploads_dir=tmp_path / "uploads",
        max_upload_mb=0.01,
        llm_url=llm_settings.llm_url,
    )
    index = NoteIndex(open_client(settings), settings, embedder.dimension)
    index.ensure_collections()
    yield Components.assemble(settings, embedder, index)
    index.client.close()


async def search_sources(parts: Components, question: str) -> list[str]:
    r = await post(parts, "/v1/search", {"question": question, "top_k": 3})
    return [x["source"] for x in r.json()["results"]]


def test_ingest_paths_inside_the_allowed_roots_only(
    ingest_parts: Components, tmp_path: Path
) -> None:
    root = ingest_parts.settings.ingest_roots[0]
    (root / "kanji.md").write_text("# 漢字\n\n栞（しおり）は本に挟む目印である。\n", "utf-8")
    secret = tmp_path / "secret.md"
    secret.write_text("# secret\n\nthe password is swordfish\n", "utf-8")
    (root / "link.md").symlink_to(secret)

    r = run(post(ingest_parts, "/v1/ingest", {"paths": [str(root)], "all": True}))
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["files_new"] == 1 and report["files_failed"] == 1
    assert "outside the allowed folders" in report["failures"][0]["error"]
    assert any(s.endswith("kanji.md") for s in run(search_sources(ingest_parts, "栞とは")))

    for outside in (str(secret), str(root / ".." / "secret.md"), "/etc/passwd"):
        r = run(post(ingest_parts, "/v1/ingest", {"paths": [outside]}))
        assert r.status_code == 403 and r.json()["error"]["type"] == "forbidden_path"
    missing = run(post(ingest_parts, "/v1/ingest", {"paths": [str(root / "nope.md")]}))
    assert missing.status_code == 404
    assert not any("secret" in s for s in run(search_sources(ingest_parts, "password")))


def test_ingest_uploads_and_their_size_limit(ingest_parts: Components) -> None:
    async def upload(files: list[tuple[str, bytes]]) -> httpx.Response:
        async with client_for(ingest_parts) as http:
            parts = [("file", (name, data, "text/markdown")) for name, data in files]
            return await http.post("/v1/ingest", files=parts, timeout=300)

    note = "# 量子化\n\n量子化は重みを少ないビット数で表す手法である。\n".encode()
    r = run(upload([("quant.md", note)]))
    assert r.status_code == 200 and r.json()["files_new"] == 1, r.text
    assert (ingest_parts.settings.uploads_dir / "quant.md").read_bytes() == note
    # cited as uploads/NAME, not by the server's own path
    assert "uploads/quant.md" in run(search_sources(ingest_parts, "量子化"))
    big = run(upload([("big.md", b"x" * 20_000)]))
    assert big.status_code == 413 and "SHIORI_MAX_UPLOAD_MB" in big.text
    assert not (ingest_parts.settings.uploads_dir / "big.md").exists()
    assert run(upload([("..", note)])).status_code == 422


# --- the real process ----------------------------------------------------------------------


def test_cli_through_a_running_service(
    tmp_path: Path, llm_settings: Settings, notes_copy: Path
) -> None:
    """`shiori serve` as a process; `shiori ingest --server` and `shiori ask` talk to it."""
    import subprocess
    import sys

    port = free_port()
    env = {
        **os.environ,
        "SHIORI_QDRANT": str(tmp_path / "store"),
        "SHIORI_LLM_URL": llm_settings.llm_url,
        "SHIORI_LLM_API_KEY": "test-llm-key",
        "SHIORI_PORT": str(port),
        "SHIORI_SERVER_URL": f"http://127.0.0.1:{port}",
        "SHIORI_API_KEYS": "k1",
        "SHIORI_API_KEY": "k1",
        "SHIORI_INGEST_ROOTS": str(notes_copy),
    }
    shiori = [sys.executable, "-m", "shiori.cli"]
    log = tmp_path / "serve.log"
    with serving(
        env, port=port, log=log, command=serve_command("info"), ready="/healthz", timeout_s=180
    ):

        def cli(*args: str, **env_changes: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*shiori, *args], env={**env, **env_changes}, capture_output=True, text=True
            )

        ingest = cli("ingest", "--json", "--server", env["SHIORI_SERVER_URL"], str(notes_copy))
        assert ingest.returncode == 0, ingest.stderr
        assert json.loads(ingest.stdout)["files_new"] == 15
        # the service holds the embedded store: a second process is told so, plainly
        direct = cli("ingest", str(notes_copy))
        assert direct.returncode == 3 and "in use by another process" in direct.stderr
        asked = cli("ask", "--json", GEMMA_DATE)
        assert asked.returncode == 0, asked.stderr
        body = json.loads(asked.stdout)
        assert not body["abstained"] and "2024" in body["answer"]
        plain = cli("ask", GEMMA_DATE)
        assert "Sources" in plain.stdout and "05-gemma.md" in plain.stdout
        nokey = cli("ask", GEMMA_DATE, SHIORI_API_KEY="")
        assert nokey.returncode == 2 and "API key" in nokey.stderr
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the parent sees why it ended
    assert "Application shutdown complete" in log.read_text()
