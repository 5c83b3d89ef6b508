"""POST /v1/ingest: add notes through the running service, which owns the store.

An embedded Qdrant store admits one process; with the service up, `shiori ingest --server URL`
sends its work here instead of opening the store. Two forms:

- JSON ``{"paths": [...], "prune": false}``: files or folders on the server's machine, each
  inside SHIORI_INGEST_ROOTS (default: the service's working directory); anything that
  resolves outside them, by ``..`` or a symbolic link, is refused;
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

from service.api.deps import Shared, require_api_key
from service.api.errors import ApiError
from service.api.schemas import IngestPathsRequest
from service.components import Components
from shiori.config import Settings

router = APIRouter(prefix="/v1", tags=["ingest"], dependencies=[Depends(require_api_key)])
_SAFE_NAME = re.compile(r"^[^/\\\x00]{1,200}$")


def allowed_roots(settings: Settings) -> list[Path]:
    return [r.expanduser().resolve() for r in settings.ingest_roots] or [Path.cwd().resolve()]


def confined(raw: str, roots: list[Path]) -> Path:
    path = Path(raw).expanduser()
    real = (path if path.is_absolute() else Path.cwd() / path).resolve()
    if not any(real.is_relative_to(root) for root in roots):
        raise ApiError(
            403,
            "forbidden_path",
            f"{raw} is outside the folders this service may read "
            f"({', '.join(map(str, roots))}; SHIORI_INGEST_ROOTS)",
        )
    if not real.exists():
        raise ApiError(422, "invalid_request", f"{raw}: no such file or folder on the server")
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
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": IngestPathsRequest.model_json_schema()},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                            }
                        },
                    }
                },
            }
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
    paths = [confined(p, roots) for p in body.paths]
    return await run_ingest(parts, paths, body.prune, roots)


async def ingest_uploads(request: Request, parts: Shared) -> dict[str, Any]:
    limit = int(parts.settings.max_upload_mb * 1024 * 1024)
    too_big = ApiError(
        413,
        "payload_too_large",
        f"uploads are limited to {parts.settings.max_upload_mb:g} MB a request "
        "(SHIORI_MAX_UPLOAD_MB)",
    )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_big
    async with request.form(max_files=1000, max_fields=10) as form:
        uploads = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
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
