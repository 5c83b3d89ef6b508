"""/openapi.json as the contract the server enforces.

The request models declare what is fixed (types, strictness, unknown fields refused); the limits
that come from settings are written in here, from the same Settings the routes enforce them
with, so a schema-valid request is never refused for a limit the schema did not state:

- ``question``: ``maxLength`` SHIORI_MAX_QUESTION_CHARS (search, ask, every message of an ask's
  ``history`` and every chat message's text); ``top_k``: ``maximum`` SHIORI_MAX_TOP_K;
  ``messages`` and an ask's ``history``: ``maxItems`` SHIORI_MAX_CHAT_MESSAGES;
- with SHIORI_API_KEYS set, the two ways to present a key as security schemes, required by the
  operations that check it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from shiori.config import Settings

OPEN_PATHS = {"/healthz", "/readyz"}


def _integer_branch(prop: dict[str, Any]) -> dict[str, Any]:
    for branch in prop.get("anyOf", [prop]):
        if branch.get("type") == "integer":
            return branch
    raise KeyError("no integer type in the property")


def _string_branches(prop: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in prop.get("anyOf", [prop]) if b.get("type") == "string"]


def apply_limits(schema: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Write the settings' limits into a generated OpenAPI document (in place; returned)."""
    models = schema["components"]["schemas"]
    for name in ("SearchRequest", "AskRequest"):
        props = models[name]["properties"]
        props["question"]["maxLength"] = settings.max_question_chars
        _integer_branch(props["top_k"])["maximum"] = settings.max_top_k
    models["AskRequest"]["properties"]["history"]["maxItems"] = settings.max_chat_messages
    models["HistoryTurn"]["properties"]["content"]["maxLength"] = settings.max_question_chars
    chat = models.get("ChatRequest")
    if chat is not None:
        chat["properties"]["messages"]["maxItems"] = settings.max_chat_messages
        message = models["ChatMessage"]["properties"]
        for branch in _string_branches(message["content"]):
            branch["maxLength"] = settings.max_question_chars
        for part in models.get("ChatContentPart", {}).get("properties", {}).values():
            if part.get("type") == "string" and "maxLength" in part:
                part["maxLength"] = settings.max_question_chars
    if settings.api_keys:
        schema["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        for path, item in schema["paths"].items():
            if path in OPEN_PATHS:
                continue
            for operation in item.values():
                operation["security"] = [{"bearer": []}, {"apiKey": []}]
    return schema


def install(app: FastAPI, settings: Settings) -> None:
    """Serve the generated schema with the settings' limits (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = apply_limits(schema, settings)
        return app.openapi_schema

    method: Callable[[], dict[str, Any]] = openapi
    app.openapi = method  # type: ignore[method-assign]
