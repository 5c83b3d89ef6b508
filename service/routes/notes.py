"""GET /v1/notes: which notes the index holds, with their chunk counts (the page lists them);
DELETE /v1/notes?source=…: forget notes (see `ingest.remove`)."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from ingest.remove import remove_notes
from service.api import errors
from service.api.errors import ApiError
from service.deps import Shared, require_api_key
from shiori.index import FileRecord

router = APIRouter(prefix="/v1", tags=["notes"], dependencies=[Depends(require_api_key)])


class NoteOut(BaseModel):
    source: str = Field(description="the note's path as shown in citations")
    title: str
    chunks: int = Field(description="passages the note was split into")
    size: int = Field(description="bytes")
    tags: list[str] = Field(default_factory=list, description="front matter tags and #tags")


class NotesResponse(BaseModel):
    collection: str
    notes: list[NoteOut]
    chunks: int = Field(description="searchable passages in all")


class RemovedNote(BaseModel):
    source: str
    chunks: int = Field(description="passages deleted")


class RemoveResponse(BaseModel):
    removed: list[RemovedNote]
    not_found: list[str] = Field(description="sources that named no note")
    files_deleted: int
    chunks_deleted: int
    uploads_deleted: int = Field(description="uploaded copies deleted from SHIORI_UPLOADS_DIR")


def _listing(records: dict[str, FileRecord]) -> list[NoteOut]:
    notes = [
        NoteOut(source=r.source, title=r.title, chunks=r.chunks, size=r.size, tags=r.tags)
        for r in records.values()
    ]
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


@router.delete(
    "/notes",
    response_model=RemoveResponse,
    summary="Forget notes: every `source` given (as shown in citations; a folder: all under it)",
    responses={
        **errors.responses(401, 422, 503),
        404: {"model": errors.ErrorResponse, "description": "no note has any of these sources"},
    },
)
async def delete_notes(
    parts: Shared,
    source: Annotated[
        list[str],
        Query(min_length=1, description="a note's source as shown, e.g. notes/a.md; repeatable"),
    ],
) -> dict[str, Any]:
    async with parts.ingest_lock:  # not while an ingest writes
        report = await anyio.to_thread.run_sync(
            lambda: remove_notes(parts.index, source, parts.settings.uploads_dir)
        )
    if not report.removed:
        raise ApiError(404, "not_found", f"no ingested note has the source {', '.join(source)}")
    return report.to_dict()
