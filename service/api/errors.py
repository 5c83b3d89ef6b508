"""Every error leaves the API as JSON, ``{"error": {"type", "message"}}``, with a fitting status;
none as a stack trace. Known faults say which part failed and what to do."""

from __future__ import annotations

import logging

import httpx
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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


def error_body(kind: str, message: str, **extra: object) -> dict[str, object]:
    return {"error": {"type": kind, "message": message, **extra}}


def _json(status: int, kind: str, message: str, **extra: object) -> JSONResponse:
    return JSONResponse(error_body(kind, message, **extra), status_code=status)


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
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _json(exc.status_code, kind, str(exc.detail))

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
