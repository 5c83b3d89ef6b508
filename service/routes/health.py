"""GET /healthz (the process is up), /readyz (Qdrant and the LLM answer), /metrics."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from service.api import errors
from service.components import Components
from service.deps import Shared, require_api_key

router = APIRouter(tags=["health"])
READY_TIMEOUT_S = 3.0


class ReadyResponse(BaseModel):
    ready: bool
    qdrant: dict[str, Any] = Field(description='{"ok", "location", "chunks" or "error"}')
    llm: dict[str, Any] = Field(
        description='{"ok", "url", "model", "error"?, "supervisor"?}: under `shiori up`, '
        '"supervisor" tells the local vLLM\'s state (starting, running, restarting, stopped), '
        "the pid of its guard (the leader of its process session), its restarts, last exit "
        "status and when the next start is due"
    )


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
    where: dict[str, Any] = {"url": s.llm_url, "model": s.llm_model}
    if parts.llm_supervisor is not None:
        where["supervisor"] = parts.llm_supervisor.status()
    try:
        listed = await asyncio.wait_for(parts.llm.models.list(), READY_TIMEOUT_S)
    except Exception as exc:
        return {"ok": False, **where, "error": str(exc) or repr(exc)}
    served = [m.id for m in listed.data]
    if s.llm_model not in served:
        return {"ok": False, **where, "error": f"serves {served}, not {s.llm_model}"}
    return {"ok": True, **where}


@router.get(
    "/readyz",
    summary="Ready: Qdrant and the LLM both answer (503 says which not)",
    response_model=ReadyResponse,
    responses={503: {"model": ReadyResponse, "description": "Qdrant or the LLM is down"}},
)
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
    responses={
        200: {
            "description": "Prometheus text format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **errors.responses(401),
    },
)
async def metrics(parts: Shared) -> Response:
    return Response(parts.metrics.render(), media_type="text/plain; version=0.0.4")
