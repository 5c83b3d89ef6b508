"""GET /healthz (the process is up), /readyz (Qdrant and the LLM answer), /metrics."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from service.api.deps import Shared, require_api_key
from service.components import Components

router = APIRouter(tags=["health"])
READY_TIMEOUT_S = 3.0


@router.get("/healthz", summary="Alive (no dependencies checked)")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def check_qdrant(parts: Components) -> dict[str, Any]:
    try:
        with anyio.fail_after(READY_TIMEOUT_S):
            chunks = await anyio.to_thread.run_sync(parts.index.count)
        return {"ok": True, "location": parts.settings.qdrant, "chunks": chunks}
    except Exception as exc:
        return {"ok": False, "location": parts.settings.qdrant, "error": str(exc) or repr(exc)}


async def check_llm(parts: Components) -> dict[str, Any]:
    s = parts.settings
    where = {"url": s.llm_url, "model": s.llm_model}
    try:
        listed = await asyncio.wait_for(parts.llm.models.list(), READY_TIMEOUT_S)
    except Exception as exc:
        return {"ok": False, **where, "error": str(exc) or repr(exc)}
    served = [m.id for m in listed.data]
    if s.llm_model not in served:
        return {"ok": False, **where, "error": f"serves {served}, not {s.llm_model}"}
    return {"ok": True, **where}


@router.get("/readyz", summary="Ready: Qdrant and the LLM both answer (503 says which not)")
async def readyz(parts: Shared) -> JSONResponse:
    qdrant, llm = await asyncio.gather(check_qdrant(parts), check_llm(parts))
    ready = qdrant["ok"] and llm["ok"]
    return JSONResponse(
        {"ready": ready, "qdrant": qdrant, "llm": llm}, status_code=200 if ready else 503
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    dependencies=[Depends(require_api_key)],
    response_class=Response,
)
async def metrics(parts: Shared) -> Response:
    return Response(parts.metrics.render(), media_type="text/plain; version=0.0.4")
