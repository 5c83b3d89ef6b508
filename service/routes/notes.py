"""GET /v1/notes: which notes the index holds, with their chunk counts (the page lists them)."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from service.api import errors
from service.api.deps import Shared, require_api_key
from shiori.index import FileRecord

router = APIRouter(prefix="/v1", tags=["notes"], dependencies=[Depends(require_api_key)])


class NoteOut(BaseModel):
    source: str = Field(description="the note's path as shown in citations")
    title: str
    chunks: int = Field(description="passages the note was split into")
    size: int = Field(description="bytes")


class NotesResponse(BaseModel):
    collection: str
    notes: list[NoteOut]
    chunks: int = Field(description="searchable passages in all")


def _listing(records: dict[str, FileRecord]) -> list[NoteOut]:
    notes = [NoteOut(source=r.source, title=r.title, chunks=r.chunks, size=r.size)
             for r in records.values()]  # fmt: skip
    return sorted(notes, key=lambda n: n.source)


@router.get(
    "/notes",
    response_model=NotesResponse,
    summary="The ingested notes and their counts",
    responses=errors.responses(401, 503),
)
async def notes(parts: Shared) -> NotesResponse:
    records = await anyio.to_thread.run_sync(parts.index.file_records)
    chunks = await anyio.to_thread.run_sync(parts.index.count)
    return NotesResponse(
        collection=parts.settings.collection, notes=_listing(records), chunks=chunks
    )
