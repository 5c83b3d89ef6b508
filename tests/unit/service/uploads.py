"""Posting uploads to POST /v1/ingest without a store or a model: a stand-in ingestor that
records what the route asks for, and the app around it (the `post_ingest` fixture of
conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

from ingest.pipeline import IngestReport
from service.app import create_app
from service.metrics import Metrics
from shiori.config import Settings


class Ingestor:
    """Records what the route asks to ingest; reports every path as seen."""

    def __init__(self) -> None:
        self.paths: list[Path] = []

    def run(self, paths: list[Path], **_: object) -> IngestReport:
        self.paths = list(paths)
        return IngestReport(files_seen=len(self.paths))


PostIngest = Callable[..., httpx.Response]


def poster(uploads: Path) -> PostIngest:
    """POST /v1/ingest to the app over a stand-in ingestor (the first argument), its uploads
    folder ``uploads``; the other arguments are httpx's (``files``, ``data``...)."""

    def send(ingestor: Ingestor, **request: Any) -> httpx.Response:
        settings = Settings(qdrant=":memory:", uploads_dir=uploads)
        parts = SimpleNamespace(
            settings=settings, ingestor=ingestor, ingest_lock=asyncio.Lock(), metrics=Metrics()
        )
        app = create_app(settings, parts)  # type: ignore[arg-type]
        app.state.components = parts

        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://shiori") as http:
                return await http.post("/v1/ingest", **request)

        return asyncio.run(go())

    return send
