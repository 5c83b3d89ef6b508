"""Every error leaves the API as JSON, ``{"error": {"type", "message"}}``, with a fitting status;
none as a stack trace. Known faults say which part failed and what to do.

`responses(...)` documents the statuses an operation can answer in the OpenAPI schema, with the
body they carry, so the schema is the contract the server keeps (tests/integration/
test_contract.py runs schemathesis against it).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from service.rag.answer import LLMUnavailableError
from shiori.index import StoreUnavailableError

log = logging.getLogger("shiori.service")


class ApiError(Exception):
    """An error with its HTTP status and a message meant for the caller."""

    def __init__(
        self, status: int, kind: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.headers = status, kind, message, headers


class ErrorDetail(BaseModel):
    type: str = Field(
        description="invalid_request, unauthorized, forbidden_path, not_found, "
        "method_not_allowed, payload_too_large, busy, llm_unavailable, qdrant_unavailable, "
        "internal"
    )
    message: str = Field(description="what went wrong and what to do, for people")
    details: list[dict[str, Any]] | None = Field(
        default=None, description="invalid_request from validation: one entry per problem"
    )


class ErrorResponse(BaseModel):
    """The body of every error."""

    error: ErrorDetail


_DESCRIPTIONS = {
    401: "no valid API key (only when SHIORI_API_KEYS is set)",
    403: "a path outside the folders this service may read (SHIORI_INGEST_ROOTS)",
    404: "no such file or folder on the server",
    413: "the request body is over its limit (SHIORI_MAX_REQUEST_KB; uploads: "
    "SHIORI_MAX_UPLOAD_MB), refused as soon as the limit is passed",
    422: "the request breaks the schema or a limit (the message names the setting)",
    429: "every generation slot is taken (SHIORI_MAX_GENERATIONS); retry after Retry-After s",
    503: "the LLM (llm_unavailable) or Qdrant (qdrant_unavailable) did not answer",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of these error statuses (for a route's ``responses=``)."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {"model": ErrorResponse, "description": _DESCRIPTIONS[status]}
        if status == 429:
            entry["headers"] = {
                "Retry-After": {"description": "seconds", "schema": {"type": "integer"}}
            }
        if status == 401:
            entry["headers"] = {
                "WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}
            }
        documented[status] = entry
    return documented


_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def allowed_methods(request: Request) -> str | None:
    """Every method the OpenAPI document gives the request's path, for a 405's ``Allow``
    (Starlette names only the first route whose path matched: GET /v1/notes, not DELETE);
    None for a path the document does not describe."""
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        if compile_path(template)[0].match(request.url.path):
            methods |= {m.upper() for m in operations if m in _METHODS}
    return ", ".join(sorted(methods)) or None


def error_body(kind: str, message: str, **extra: object) -> dict[str, object]:
    return {"error": {"type": kind, "message": message, **extra}}


class _ErrorJSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:  # a lone surrogate of the request, echoed in the details:
            # JSON's own escape (\ud800) carries it back as the client sent it
            return json.dumps(content, ensure_ascii=True, allow_nan=False).encode("ascii")


def _json(status: int, kind: str, message: str, **extra: object) -> JSONResponse:
    return _ErrorJSON(error_body(kind, message, **extra), status_code=status)


def as_api_error(exc: BaseException) -> ApiError | None:
    """Map the faults of the parts Shiori talks to onto API errors (None: not one of them)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, LLMUnavailableError):
        return ApiError(503, "llm_unavailable", f"{exc}. Retrieval still works: POST /v1/search.")
    if isinstance(exc, StoreUnavailableError | ResponseHandlingException | httpx.TransportError):
        return ApiError(503, "qdrant_unavailable", f"the Qdrant store did not answer: {exc}")
    if isinstance(exc, UnexpectedResponse) and (exc.status_code or 500) >= 500:
        return ApiError(503, "qdrant_unavailable", f"the Qdrant store failed: {exc}")
    return None


_KINDS = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        response = _json(exc.status, exc.kind, exc.message)
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'body'}: {e.get('msg')}"
            for e in exc.errors()
        ]
        return _json(
            422, "invalid_request", "; ".join(problems), details=jsonable_encoder(exc.errors())
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code
        if status == 400:  # a body FastAPI or Starlette could not parse (not UTF-8, bad
            # multipart): the same answer as any other malformed request
            status, kind = 422, "invalid_request"
            message = f"the request body could not be parsed: {exc.detail}"
        else:
            kind = _KINDS.get(status, "http_error")
            message = str(exc.detail)
        response = _json(status, kind, message)
        response.headers.update(exc.headers or {})
        allowed = allowed_methods(request) if status == 405 else None
        if allowed:
            response.headers["Allow"] = allowed
        return response

    async def _fault(_: Request, exc: Exception) -> JSONResponse:
        known = as_api_error(exc)
        assert known is not None
        return _json(known.status, known.kind, known.message)

    for fault in (
        LLMUnavailableError,
        StoreUnavailableError,
        ResponseHandlingException,
        UnexpectedResponse,
        httpx.TransportError,
    ):
        app.add_exception_handler(fault, _fault)

    @app.exception_handler(Exception)  # last resort (Starlette re-raises it, for the log)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        known = as_api_error(exc)
        if known is not None:
            return _json(known.status, known.kind, known.message)
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _json(500, "internal", "internal error; the service log has the details")
