"""/openapi.json states the limits the routes enforce, from the same settings, and the request
rules hold before any model is touched (the answer engine is a double here; schemathesis runs
against the real service in tests/integration/test_contract.py)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.routes.ingest import allowed_roots, confined
from shiori.config import Settings
from tests.unit.service.test_limits import EndlessAnswerer, app_with


def call(app: Any, method: str, path: str, **kw: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shiori") as http:
            return await http.request(method, path, **kw)

    return asyncio.run(go())


def test_the_schema_carries_the_configured_limits() -> None:
    app = app_with(EndlessAnswerer(), max_question_chars=123, max_top_k=7, max_chat_messages=3)
    schema = call(app, "GET", "/openapi.json").json()
    models = schema["components"]["schemas"]
    for name in ("SearchRequest", "AskRequest"):
        props = models[name]["properties"]
        assert props["question"]["maxLength"] == 123 and "pattern" in props["question"]
        assert {"type": "integer", "minimum": 1, "maximum": 7} in props["top_k"]["anyOf"]
        assert models[name]["additionalProperties"] is False
    assert models["ChatRequest"]["properties"]["messages"]["maxItems"] == 3
    assert models["AskRequest"]["properties"]["history"]["maxItems"] == 3
    assert models["HistoryTurn"]["properties"]["content"]["maxLength"] == 123
    assert models["HistoryTurn"]["additionalProperties"] is False
    feedback = models["FeedbackRequest"]
    assert (
        feedback["additionalProperties"] is False
        and "pattern" in feedback["properties"]["question"]
    )
    assert models["CitedSource"]["additionalProperties"] is False
    assert set(schema["paths"]["/v1/feedback"]["post"]["responses"]) >= {"401", "413", "422"}
    roles = models["ChatMessage"]["properties"]["role"]["enum"]
    assert set(roles) == {"system", "developer", "user", "assistant", "tool", "function"}
    content = models["ChatMessage"]["properties"]["content"]["anyOf"]
    assert {"type": "string", "maxLength": 123} in content
    ingest = schema["paths"]["/v1/ingest"]["post"]["requestBody"]["content"]
    assert "anyOf" in ingest["application/json"]["schema"]  # paths, or "all": true
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) and path not in ("/readyz",):
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ErrorResponse"), (path, method, status)
    assert "securitySchemes" not in schema["components"]  # no keys configured: open


def test_api_keys_appear_as_security_schemes() -> None:
    from pydantic import SecretStr

    app = app_with(EndlessAnswerer(), api_keys=[SecretStr("k")])
    schema = call(app, "GET", "/openapi.json").json()
    assert set(schema["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    assert schema["paths"]["/v1/ask"]["post"]["security"] == [{"bearer": []}, {"apiKey": []}]
    assert "security" not in schema["paths"]["/healthz"]["get"]


@pytest.mark.parametrize(
    "body",
    [
        {"question": "LoRA", "stream": 0},
        {"question": "LoRA", "stream": "true"},
        {"question": "LoRA", "top_k": "5"},
        {"question": "LoRA", "top_k": True},
        {"question": "LoRA", "top_k": 2.5},
        {"question": "LoRA", "top_k": 8},  # above max_top_k 7
        {"question": "a" * 124},  # above max_question_chars 123
        {"question": "\u3000 \t"},  # blank
        {"question": "LoRA", "unknown": 1},
        {"question": "LoRA", "filters": {"sources": "notes/a.md"}},
        {"question": "LoRA", "history": [{"role": "user", "content": "a" * 124}]},
        {"question": "LoRA", "history": [{"role": "user", "content": "a"}] * 4},  # above 3
        {"question": "LoRA", "history": [{"role": "system", "content": "a"}]},
        {"question": "LoRA", "history": [{"role": "user", "content": "a", "name": "x"}]},
        {"question": "LoRA", "history": {"role": "user", "content": "a"}},
    ],
)
def test_requests_outside_the_schema_get_422(body: dict[str, Any]) -> None:
    answerer = EndlessAnswerer()
    app = app_with(answerer, max_question_chars=123, max_top_k=7, max_chat_messages=3)
    r = call(app, "POST", "/v1/ask", json=body)
    assert r.status_code == 422 and r.json()["error"]["type"] == "invalid_request"
    assert answerer.started == 0


def test_lone_surrogates_are_replaced_or_echoed_never_a_500() -> None:
    """JSON may escape a lone UTF-16 surrogate (\\ud800), which UTF-8 cannot hold."""
    answerer = EndlessAnswerer()
    app = app_with(answerer, max_question_chars=123, max_top_k=7)

    def ask(body: dict[str, Any]) -> httpx.Response:
        raw = json.dumps(body).encode()  # ensure_ascii: the surrogate travels as \\ud800
        return call(
            app, "POST", "/v1/ask", content=raw, headers={"Content-Type": "application/json"}
        )

    # replaced by U+FFFD, so the question passes the schema: refused for top_k only
    r = ask(
        {"question": "Lo\ud800RA", "top_k": 8, "history": [{"role": "user", "content": "\udc00"}]}
    )
    assert r.status_code == 422 and "SHIORI_MAX_TOP_K" in r.json()["error"]["message"], r.text
    # echoed in the details of a refusal, as the client sent it
    r = ask({"question": "LoRA", "x\ud800": 1})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["input"] == "x\ud800"
    assert answerer.started == 0


def test_405_says_which_methods_and_unparsable_bodies_are_422() -> None:
    app = app_with(EndlessAnswerer())
    r = call(app, "DELETE", "/v1/ask")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    r = call(app, "OPTIONS", "/v1/notes")  # two routes on one path: both methods named
    assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET"
    assert r.json()["error"]["type"] == "method_not_allowed"
    # a path two routes share: both methods, not the first route's alone
    r = call(app, "OPTIONS", "/v1/notes")
    assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET"
    for raw in (b"{not json", b"\xff\xfe not utf-8"):
        r = call(app, "POST", "/v1/ask", content=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == 422 and r.json()["error"]["type"] == "invalid_request"


@pytest.mark.parametrize(
    ("messages", "status"),
    [
        ([{"role": "system", "content": "be brief"}], 422),  # no user question
        ([{"role": "user", "content": " "}], 422),  # blank
        ([{"role": "wizard", "content": "LoRA"}], 422),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}], 422),
        ([{"role": "user", "content": [{"type": "text", "text": " "}, {"type": "text"}]}], 422),
        ([{"role": "user", "content": "x"}] * 4, 422),  # above max_chat_messages 3
    ],
)
def test_chat_requests_the_schema_refuses_are_refused(
    messages: list[dict[str, Any]], status: int
) -> None:
    app = app_with(EndlessAnswerer(), max_chat_messages=3)
    r = call(app, "POST", "/v1/chat/completions", json={"messages": messages})
    assert r.status_code == status, r.text


def test_ingest_roots_default_to_the_notes_and_uploads_folders(tmp_path: Path) -> None:
    notes, uploads = tmp_path / "notes", tmp_path / "uploads"
    notes.mkdir()
    (notes / "a.md").write_text("# a\n", encoding="utf-8")
    roots = allowed_roots(Settings(notes_dir=notes, uploads_dir=uploads))
    assert roots == [notes.resolve(), uploads.resolve()]
    assert Path.cwd().resolve() not in roots
    assert confined(str(notes / "a.md"), roots) == (notes / "a.md").resolve()

    def status(raw: str, whole: bool = False) -> int:
        try:
            confined(raw, roots, whole)
        except Exception as exc:
            return int(exc.status)  # type: ignore[attr-defined]
        return 200

    assert status("") == 422 and status(str(notes)) == 422 and status(str(notes), True) == 200
    assert status(str(notes / "..")) == 403 and status(str(notes / "b.md")) == 404
    assert status(str(notes / ("x" * 300))) == 404  # too long for a file name: cannot exist
    assert status("a\x00b") == 422
