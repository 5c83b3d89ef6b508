"""The HTTP service: one FastAPI app, its shared components built once in the lifespan.

`create_app(settings)` is what `shiori serve` runs; tests pass ready-made components (with the
session's embedding model) instead of loading them again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Response
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import heap
from service.api import contract, errors
from service.api.limits import BodyLimitMiddleware, ClientGoneError
from service.components import Components
from service.routes import ask, chat, feedback, health, ingest, notes, web
from shiori.config import Settings

log = logging.getLogger("shiori.service")


class MetricsMiddleware:
    """Counts requests and their latency by route template (not raw path: bounded labels).
    Pure ASGI, so streamed responses are timed to their last byte."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            parts: Components | None = getattr(scope["app"].state, "components", None)
            route = getattr(scope.get("route"), "path", "unmatched")
            if parts is not None:
                parts.metrics.requests.labels(route, str(status)).inc()
                parts.metrics.request_seconds.labels(route).observe(time.perf_counter() - began)


def _start_watching(settings: Settings, parts: Components) -> tuple[Any, Any] | None:
    """SHIORI_WATCH: re-ingest the notes that change in these folders while the service runs."""
    roots = [p.expanduser().resolve() for p in settings.watch]
    if not roots:
        return None
    from ingest.watch import watch_in_service

    missing = [str(r) for r in roots if not r.is_dir()]
    if missing:
        raise ValueError(f"SHIORI_WATCH names folders that do not exist: {', '.join(missing)}")
    stop = asyncio.Event()
    task = asyncio.create_task(watch_in_service(parts.ingestor, roots, parts.ingest_lock, stop))
    return stop, task


def create_app(settings: Settings, components: Components | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = components is None
        if owned:
            heap.limit_arenas(settings.malloc_arenas)  # before the models' threads allocate
        parts: Components = (
            components
            if components is not None
            else await anyio.to_thread.run_sync(Components.build, settings)
        )
        app.state.components = parts
        log.info(
            "ready: %d chunks in %s/%s; answers from %s at %s",
            parts.index.count(),
            settings.qdrant,
            settings.collection,
            settings.llm_model,
            settings.llm_url,
        )
        watcher = _start_watching(settings, parts)
        trim_stop = anyio.Event()
        trimmer = asyncio.create_task(heap.trim_every(settings.heap_trim_s, trim_stop))
        try:
            yield
        finally:
            trim_stop.set()
            await trimmer
            if watcher is not None:
                watcher[0].set()
                await watcher[1]
            if owned:
                await parts.aclose()

    app = FastAPI(
        title="Shiori",
        summary="Ask your study notes; answers cite the note, heading and lines.",
        version="0.1.0",
        lifespan=lifespan,
    )
    errors.install(app)

    @app.exception_handler(ClientGoneError)
    async def _gone(_: Any, __: ClientGoneError) -> Response:
        # nobody reads this; nginx's 499 keeps the metrics and the access log honest
        return Response(status_code=499)

    for router in (
        ask.router,
        chat.router,
        feedback.router,
        ingest.router,
        notes.router,
        health.router,
        web.router,
    ):
        app.include_router(router)
    contract.install(app, settings)
    app.add_middleware(BodyLimitMiddleware, settings=settings)
    app.add_middleware(MetricsMiddleware)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key"],
        )
    return app


def describe(settings: Settings) -> dict[str, Any]:
    """What `shiori serve` prints at start."""
    return {
        "url": f"http://{settings.host}:{settings.port}",
        "qdrant": settings.qdrant,
        "collection": settings.collection,
        "llm": f"{settings.llm_model} at {settings.llm_url}",
        "auth": "API key required" if settings.api_keys else "open (no SHIORI_API_KEYS)",
    }
