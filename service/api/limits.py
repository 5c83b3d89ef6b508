"""Bounded work: request bodies counted as they arrive, a fixed number of generations at once,
and no generation outliving the client that asked for it.

- `BodyLimitMiddleware` counts a request's body while it streams in and answers 413 as soon as
  it passes the limit (at once when ``Content-Length`` already says so), so an upload without a
  length is never read whole before the check.
- `GenerationSlots` admits at most SHIORI_MAX_GENERATIONS answers at once (each holds a
  CPU-heavy LLM request); one more gets 429 with ``Retry-After`` instead of queueing unbounded.
- `until_disconnected` runs a non-streamed answer and cancels it when the client goes away;
  `EventStream` does the same for a streamed one. Cancelling closes the HTTP request to the LLM,
  and vLLM aborts a request whose client has closed its connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import anyio
from fastapi import HTTPException, Request
from fastapi.responses import StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.errors import ApiError
from shiori.config import Settings

T = TypeVar("T")


class BodyTooLargeError(HTTPException):
    """Raised from ``receive`` itself: FastAPI's body parsing lets HTTPExceptions through
    unchanged, and the app's error handler turns it into the JSON 413."""

    def __init__(self, limit: int, setting: str) -> None:
        super().__init__(
            413, f"the request body is over {_size(limit)}, the limit of this endpoint ({setting})"
        )


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:g} MB" if n >= 1024 * 1024 else f"{n / 1024:g} KB"


def body_limit(settings: Settings, scope: Scope) -> tuple[int, str]:
    """The body limit of a request, in bytes, and the setting that sets it: uploads to
    /v1/ingest get SHIORI_MAX_UPLOAD_MB, every other body SHIORI_MAX_REQUEST_KB."""
    headers = dict(scope.get("headers") or [])
    content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
    if scope.get("path") == "/v1/ingest" and content_type.startswith("multipart/"):
        return int(settings.max_upload_mb * 1024 * 1024), "SHIORI_MAX_UPLOAD_MB"
    return int(settings.max_request_kb * 1024), "SHIORI_MAX_REQUEST_KB"


class BodyLimitMiddleware:
    """Counts each request body while it arrives; 413 once past the limit (pure ASGI)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, setting = body_limit(self.settings, scope)
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        over = declared.isdigit() and int(declared) > limit
        received = 0

        async def counted() -> Message:
            nonlocal received
            if over:  # the client said how much it will send: refuse before reading any of it
                raise BodyTooLargeError(limit, setting)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit, setting)
            return message

        await self.app(scope, counted, send)


class GenerationSlots:
    """At most ``size`` generations at once. Every request runs on the one event loop, so a
    counter needs no lock: nothing awaits between the check and the increment."""

    def __init__(self, size: int, retry_after_s: int) -> None:
        self.size = size
        self.retry_after_s = retry_after_s
        self.in_use = 0

    def take(self) -> None:
        if self.in_use >= self.size:
            raise ApiError(
                429,
                "busy",
                f"{self.size} answers are being generated, the most this service runs at once "
                f"(SHIORI_MAX_GENERATIONS); retry in {self.retry_after_s} s. "
                "POST /v1/search is not limited.",
                headers={"Retry-After": str(self.retry_after_s)},
            )
        self.in_use += 1

    def give_back(self) -> None:
        self.in_use = max(0, self.in_use - 1)

    @contextmanager
    def held(self) -> Iterator[None]:
        self.take()
        try:
            yield
        finally:
            self.give_back()


class ClientGoneError(Exception):
    """The client closed its connection before its answer was ready; the work was cancelled."""


async def until_disconnected(request: Request, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` and cancel it if the client disconnects first (raises `ClientGoneError`).

    Called after the body has been read: the next ASGI message can only be ``http.disconnect``
    (which servers also send once the response is complete)."""
    done: list[T] = []
    failed: list[Exception] = []
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass
            group.cancel_scope.cancel()

        async def run() -> None:
            try:
                done.append(await work())
            except Exception as exc:  # raised below as itself, not in an ExceptionGroup
                failed.append(exc)
            group.cancel_scope.cancel()

        group.start_soon(watch)
        group.start_soon(run)
    if failed:
        raise failed[0]
    if not done:
        raise ClientGoneError
    return done[0]


class EventStream(StreamingResponse):
    """Server-Sent Events whose producer is cancelled when the client disconnects, and always
    closed afterwards (Starlette leaves an abandoned generator to the garbage collector, and
    with it the open request to the LLM). ``on_close`` runs once the response is over."""

    def __init__(
        self, events: AsyncIterator[str], on_close: Callable[[], None] | None = None
    ) -> None:
        super().__init__(
            events,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self.events = events
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def stream() -> None:
                    await self.stream_response(send)
                    group.cancel_scope.cancel()

                async def watch() -> None:
                    await self.listen_for_disconnect(receive)
                    group.cancel_scope.cancel()

                group.start_soon(stream)
                group.start_soon(watch)
        finally:
            with anyio.CancelScope(shield=True):
                aclose: Any = getattr(self.events, "aclose", None)
                if aclose is not None:
                    await aclose()
                if self.on_close is not None:
                    self.on_close()
