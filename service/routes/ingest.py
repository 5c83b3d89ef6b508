"""POST /v1/ingest: add notes through the running service, which owns the store.

An embedded Qdrant store admits one process; with the service up, `shiori ingest --server URL`
sends its work here instead of opening the store. Two forms:

- JSON ``{"paths": [...], "prune": false}``: files or folders on the server's machine, each
  inside SHIORI_INGEST_ROOTS (default: the notes folder SHIORI_NOTES_DIR and the uploads folder,
  never the working directory as such); anything that resolves outside them, by ``..`` or a
  symbolic link, is refused (403). A path that is a whole root needs ``"all": true``, and
  ``{"all": true}`` alone ingests every root: an empty or ``.`` path never ingests a whole
  folder by accident;
- ``multipart/form-data`` with one or more ``file`` parts: kept in SHIORI_UPLOADS_DIR under
  their base names and ingested from there (a new upload of the same name replaces it).

One ingest runs at a time; searches and answers go on meanwhile.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from service.api import errors
from service.api.errors import ApiError
from service.api.schemas import MAX_PATH_CHARS, IngestPathsRequest
from service.components import Components
from service.deps import Shared, require_api_key
from shiori.config import Settings

router = APIRouter(prefix="/v1", tags=["ingest"], dependencies=[Depends(require_api_key)])
_SAFE_NAME = re.compile(r"^[^/\\\x00]{1,200}$")
MAX_UPLOAD_FILES = 1000


def allowed_roots(settings: Settings) -> list[Path]:
    """SHIORI_INGEST_ROOTS, or by default the notes folder and the uploads folder."""
    roots = settings.ingest_roots or [settings.notes_dir, settings.uploads_dir]
    return list(dict.fromkeys(r.expanduser().resolve() for r in roots))


def confined(raw: str, roots: list[Path], whole_roots: bool = False) -> Path:
    """The real path of ``raw`` if it lies inside a root: 403 outside, 404 when missing, 422
    when empty or when it is a root itself without ``whole_roots`` ("all": true)."""
    if not raw or len(raw) > MAX_PATH_CHARS or "\x00" in raw:
        raise ApiError(
            422,
            "invalid_request",
            "a path is empty, too long or holds a NUL character"
            + ('; to ingest every allowed folder send {"all": true}' if not raw else ""),
        )
    try:
        path = Path(raw).expanduser()
        real = (path if path.is_absolute() else Path.cwd() / path).resolve()
    except (OSError, ValueError, RuntimeError) as exc:  # bad encoding, symbolic link loops
        raise ApiError(422, "invalid_request", f"{raw!r} is not a usable path: {exc}") from exc
    try:
        exists = real.exists()
    except OSError:  # e.g. a name too long for the file system: no such file can exist
        exists = False
    if not any(real.is_relative_to(root) for root in roots):
        raise ApiError(
            403,
            "forbidden_path",
            f"{raw} is outside the folders this service may read "
            f"({', '.join(map(str, roots))}; SHIORI_INGEST_ROOTS)",
        )
    if real in roots and not whole_roots:
        raise ApiError(
            422,
            "invalid_request",
            f'{raw} is a whole allowed folder ({real}); send "all": true to ingest it all',
        )
    if not exists:
        raise ApiError(404, "not_found", f"{raw}: no such file or folder on the server")
    return real


async def run_ingest(
    parts: Components, paths: list[Path], prune: bool, roots: list[Path]
) -> dict[str, Any]:
    async with parts.ingest_lock:
        report = await anyio.to_thread.run_sync(
            lambda: parts.ingestor.run(paths, prune=prune, confine_to=roots)
        )
    return report.to_dict()


@router.post(
    "/ingest",
    summary="Ingest notes: server-side paths (JSON) or uploaded files (multipart)",
    responses={
        200: {
            "description": "the ingest report (counts, failures, flagged notes)",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        **errors.responses(401, 403, 404, 413, 422),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": IngestPathsRequest.model_json_schema()},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "additionalProperties": False,
                        "properties": {
                            "file": {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": MAX_UPLOAD_FILES,
                                "items": {"type": "string", "format": "binary"},
                                "description": "notes to keep in SHIORI_UPLOADS_DIR and "
                                "ingest; at most SHIORI_MAX_UPLOAD_MB a request",
                            }
                        },
                    }
                },
            },
        }
    },
)
async def ingest(request: Request, parts: Shared) -> dict[str, Any]:
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        return await ingest_uploads(request, parts)
    try:
        body = IngestPathsRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise ApiError(422, "invalid_request", problems) from exc
    roots = allowed_roots(parts.settings)
    if not body.paths and not body.all:
        raise ApiError(
            422,
            "invalid_request",
            'nothing to ingest: give "paths", or "all": true for every allowed folder '
            f"({', '.join(map(str, roots))})",
        )
    paths = [confined(p, roots, body.all) for p in body.paths]
    if not paths:
        paths = [root for root in roots if root.exists()]
    return await run_ingest(parts, paths, body.prune, roots)


async def ingest_uploads(request: Request, parts: Shared) -> dict[str, Any]:
    limit = int(parts.settings.max_upload_mb * 1024 * 1024)
    too_big = ApiError(
        413,
        "payload_too_large",
        f"uploads are limited to {parts.settings.max_upload_mb:g} MB a request "
        "(SHIORI_MAX_UPLOAD_MB)",
    )
    # the body as a whole was counted while it arrived (service.api.limits); this is the files
    async with request.form(max_files=MAX_UPLOAD_FILES, max_fields=10) as form:
        uploads = [v for k, v in form.multi_items() if k == "file" and isinstance(v, UploadFile)]
        others = sorted(
            {k for k, v in form.multi_items() if k != "file" or not isinstance(v, UploadFile)}
        )
        if others:
            raise ApiError(
                422, "invalid_request", f"unexpected form fields {others}: only 'file' parts"
            )
        if not uploads:
            raise ApiError(422, "invalid_request", "multipart body holds no 'file' part")
        if sum(u.size or 0 for u in uploads) > limit:
            raise too_big
        folder = parts.settings.uploads_dir
        folder.mkdir(parents=True, exist_ok=True)
        saved: list[Path] = []
        for upload in uploads:
            # NFC: the same name sent from macOS (decomposed) and elsewhere is one note
            name = unicodedata.normalize("NFC", Path(upload.filename or "").name)
            if not _SAFE_NAME.match(name) or name.startswith("."):
                raise ApiError(422, "invalid_request", f"bad file name {upload.filename!r}")
            target = folder / name
            partial = target.with_name(f".{name}.part")
            partial.write_bytes(await upload.read())
            partial.replace(target)  # a crash never leaves half a note to ingest
            saved.append(target)
    return await run_ingest(parts, saved, False, [folder.resolve()])
