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
  the relative path their file name gives (``2024/summary.md``: folders kept, so same-named
  notes of different folders stay two notes) and ingested from there; a new upload of the same
  path replaces it. A name that is absolute, holds ``..``, a hidden part or a control
  character, two parts naming one file, or a place in the uploads folder taken by a file where
  a folder is needed (or the reverse), refuse the request (422) before anything is written.
  With one or more ``sync_root`` fields (``notes``: an uploaded folder's name, as the file
  names start), the parts under it are the whole of that folder: uploaded notes under
  ``uploads/<root>/`` that are not in this upload (renamed, deleted, no longer taken) are
  forgotten and their kept copies deleted, named in the report's ``forgotten``. Parts outside
  every sync root, and uploads without ``sync_root``, only add or replace notes.

One ingest runs at a time; searches and answers go on meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import re
import unicodedata
from collections.abc import AsyncIterator
from email.message import Message
from pathlib import Path, PurePosixPath
from tempfile import SpooledTemporaryFile
from typing import Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import ValidationError
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from ingest.pipeline import display_path
from service.api import errors
from service.api.errors import ApiError
from service.api.schemas import MAX_PATH_CHARS, IngestPathsRequest
from service.components import Components
from service.deps import Shared, require_api_key
from shiori.config import Settings

router = APIRouter(prefix="/v1", tags=["ingest"], dependencies=[Depends(require_api_key)])
MAX_UPLOAD_FILES = 1000
MAX_UPLOAD_DEPTH = 32  # folders in an uploaded file's name
MAX_NAME_BYTES = 255  # one file or folder name, in UTF-8 (the common file system limit)
_SEPARATORS = re.compile(r"[/\\]")  # Windows clients send "week1\\index.md"
# "C:\\notes\\a.md", "C:/notes/a.md"; not "Q:A.md", a name with a colon in it
_DRIVE = re.compile(r"^[A-Za-z]:[/\\]")
MAX_SYNC_ROOTS = 32


class BadUploadNameError(ValueError):
    """An uploaded part's file name that cannot be kept inside the uploads folder."""


def upload_relpath(filename: str) -> PurePosixPath:
    """Where an uploaded part is kept, relative to the uploads folder: its file name in Unicode
    NFC, with ``/`` or ``\\`` between folders, empty and ``.`` parts dropped.

    ``"2024/summary.md"`` → ``2024/summary.md``; ``"week1\\index.md"`` → ``week1/index.md``.
    Why folders are kept: two notes with one base name in different folders are two notes.
    Raises `BadUploadNameError` (never returns a path outside the folder) for an empty name, an
    absolute one (``/x``, ``C:\\x``), a ``..`` part, a hidden part (``.x``: ingest skips hidden
    files, so it would be kept but never read), a control character, a part over 255 bytes,
    or more than 32 folders."""
    name = unicodedata.normalize("NFC", filename)  # macOS sends names decomposed
    if not name or len(name) > MAX_PATH_CHARS:
        raise BadUploadNameError("the name is empty or too long")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise BadUploadNameError("the name holds a control character")
    if _SEPARATORS.match(name) or _DRIVE.match(name):
        raise BadUploadNameError("an absolute path; send a name relative to the notes folder")
    parts = [part for part in _SEPARATORS.split(name) if part not in ("", ".")]
    if not parts:
        raise BadUploadNameError("no file name")
    if ".." in parts:
        raise BadUploadNameError("'..' would lead outside the uploads folder")
    if len(parts) > MAX_UPLOAD_DEPTH + 1:
        raise BadUploadNameError(f"more than {MAX_UPLOAD_DEPTH} folders")
    for part in parts:
        if part.startswith("."):
            raise BadUploadNameError(f"{part!r} is hidden (starts with '.'); ingest skips it")
        if len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            raise BadUploadNameError(f"a part is longer than {MAX_NAME_BYTES} bytes")
    return PurePosixPath(*parts)


def extended_filename(disposition: str) -> str | None:
    """The ``filename*`` of a part's Content-Disposition (RFC 7578 §4.2, with RFC 5987/2231's
    ``charset'language'percent-encoded`` value, continuations included), decoded; None when
    the part has none. Parsed by the standard library's MIME header parser (email), decoded
    strictly: raises `BadUploadNameError` for an unknown charset or bytes not in it."""
    header = Message()
    header["content-disposition"] = disposition
    for key, value in header.get_params([], header="content-disposition"):
        if key.lower() == "filename" and isinstance(value, tuple):
            charset, _language, text = value  # text: the percent-decoded bytes, as latin-1
            try:
                return text.encode("latin-1").decode(charset or "us-ascii")
            except (LookupError, UnicodeError) as exc:
                raise BadUploadNameError(
                    f"its filename* is not valid {charset or 'ASCII'} ({exc})"
                ) from exc
    return None


def part_filename(upload: UploadFile) -> str:
    """A part's file name: its ``filename*`` (RFC 5987, e.g. ``UTF-8''2024%2Fa.md``) when it has
    one, as RFC 6266 says a receiver should prefer, else its ``filename``. A ``filename*`` that
    does not decode gives way to a plain ``filename``; alone, it raises `BadUploadNameError`."""
    disposition = upload.headers.get("content-disposition", "") if upload.headers else ""
    try:
        found = extended_filename(disposition)
    except BadUploadNameError:
        if not upload.filename:
            raise
        found = None  # the plain name the sender gave as well
    return found if found is not None else upload.filename or ""


class UploadParser(MultiPartParser):
    """Starlette's multipart parser, except that a part whose Content-Disposition names its file
    only by ``filename*`` is a file too (Starlette and python-multipart read only ``filename``,
    so such a part would arrive as a text field: its bytes decoded, its size capped at 1 MB).
    Its name is decoded later, by `part_filename`."""

    def on_headers_finished(self) -> None:
        super().on_headers_finished()
        part = self._current_part
        disposition = part.content_disposition or b""
        if part.file is not None or b"filename*" not in disposition.lower():
            return
        try:
            extended = extended_filename(disposition.decode("latin-1"))
        except BadUploadNameError:
            extended = ""  # a file all the same: the request is refused for its name
        if extended is None:  # e.g. "filename*" in another parameter's value
            return
        # what Starlette does for a part with a filename (formparsers.MultiPartParser)
        self._current_fields -= 1
        self._current_files += 1
        if self._current_files > self.max_files:
            raise MultiPartException(
                f"Too many files. Maximum number of files is {self.max_files}."
            )
        # closed with the form, or by the parser on an error, as Starlette's own
        spool: SpooledTemporaryFile[bytes] = SpooledTemporaryFile(max_size=self.spool_max_size)  # noqa: SIM115
        self._files_to_close_on_error.append(spool)
        part.file = UploadFile(
            file=spool,  # type: ignore[arg-type]
            size=0,
            filename=None,
            headers=Headers(raw=part.item_headers),
        )


@contextlib.asynccontextmanager
async def upload_form(request: Request, max_files: int, max_fields: int) -> AsyncIterator[FormData]:
    """The multipart body, parsed by `UploadParser`: as ``request.form()``, with Starlette's
    limits and its 400 for a malformed body; its files are closed on leaving."""
    parser = UploadParser(
        request.headers, request.stream(), max_files=max_files, max_fields=max_fields
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise HTTPException(status_code=400, detail=exc.message) from exc
    try:
        yield form
    finally:
        await form.close()


def upload_targets(filenames: list[str]) -> list[PurePosixPath]:
    """`upload_relpath` of each part's file name, in order, checked together: two parts may not
    name one file (also not in names that differ only in case: one file on macOS and Windows),
    nor one part a file where another needs a folder. Raises `BadUploadNameError` naming the
    part(s): the request is refused before anything is written, never half-kept."""
    targets: list[PurePosixPath] = []
    by_key: dict[str, str] = {}
    for filename in filenames:
        try:
            rel = upload_relpath(filename)
        except BadUploadNameError as exc:
            raise BadUploadNameError(f"bad file name {filename!r}: {exc}") from exc
        key = rel.as_posix().casefold()
        if key in by_key:
            raise BadUploadNameError(
                f"file names {by_key[key]!r} and {filename!r} name the same file ({rel}); "
                "send each note once, under a distinct relative path"
            )
        by_key[key] = filename
        targets.append(rel)
    for rel in targets:
        for folder in rel.parents:
            key = folder.as_posix().casefold()
            if key in by_key:
                raise BadUploadNameError(
                    f"{by_key[key]!r} is a file, and {rel.as_posix()!r} needs it as a folder"
                )
    return targets


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
                            },
                            "sync_root": {
                                "type": "array",
                                "maxItems": MAX_SYNC_ROOTS,
                                "items": {"type": "string", "maxLength": MAX_PATH_CHARS},
                                "description": "the uploaded folder(s), as the file names "
                                "start (notes for notes/2024/a.md): the upload is the whole "
                                "folder, and kept notes under uploads/<root>/ not in it are "
                                "forgotten (named in the report's forgotten). Without it an "
                                "upload only adds or replaces notes",
                            },
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
    async with upload_form(request, MAX_UPLOAD_FILES, MAX_SYNC_ROOTS) as form:
        uploads = [v for k, v in form.multi_items() if k == "file" and isinstance(v, UploadFile)]
        raw_roots = [v for k, v in form.multi_items() if k == "sync_root" and isinstance(v, str)]
        others = sorted(
            {
                k
                for k, v in form.multi_items()
                if not (k == "file" and isinstance(v, UploadFile))
                and not (k == "sync_root" and isinstance(v, str))
            }
        )
        if "file" in others:  # a part with neither filename= nor filename*= is a field
            raise ApiError(
                422,
                "invalid_request",
                "a 'file' part has no file name: send filename=\"NAME\" "
                "(or filename*=UTF-8''NAME, percent-encoded, for a name that is not ASCII)",
            )
        if others:
            raise ApiError(
                422,
                "invalid_request",
                f"unexpected form fields {others}: only 'file' parts and 'sync_root' fields",
            )
        if not uploads:
            raise ApiError(422, "invalid_request", "multipart body holds no 'file' part")
        if sum(u.size or 0 for u in uploads) > limit:
            raise too_big
        try:
            targets = upload_targets([part_filename(u) for u in uploads])
            roots = sync_roots(raw_roots)
        except BadUploadNameError as exc:
            raise ApiError(422, "invalid_request", str(exc)) from exc
        folder = parts.settings.uploads_dir
        folder.mkdir(parents=True, exist_ok=True)
        home = folder.resolve()
        async with parts.ingest_lock:
            stale = stale_uploads(home, roots, targets)
            for rel in targets:  # every place checked before anything is written
                _check_place(home, rel, stale)
            for path in stale:
                path.unlink(missing_ok=True)
            saved: list[Path] = []
            for upload, rel in zip(uploads, targets, strict=True):
                saved.append(await _keep(upload, home, rel))
            # a synced folder is ingested whole: its notes whose files were deleted above are
            # forgotten by the ingest (named in `forgotten`)
            paths = [home.joinpath(*r.parts) for r in roots]
            paths += [p for p in saved if not any(p.is_relative_to(r) for r in paths)]
            report = await anyio.to_thread.run_sync(
                lambda: parts.ingestor.run(paths, prune=False, confine_to=[home])
            )
    result = report.to_dict()
    shown = {display_path(p, home) for p in stale}
    for entry in result.get("forgotten", []):
        if entry.get("path") in shown and entry.get("reason") == "file is gone":
            entry["reason"] = "not in this upload of its folder (sync_root)"
    return result


def sync_roots(raw: list[str]) -> list[PurePosixPath]:
    """The ``sync_root`` fields as folders relative to the uploads folder (`upload_relpath`'s
    rules). Raises `BadUploadNameError`."""
    roots: list[PurePosixPath] = []
    for value in raw:
        try:
            roots.append(upload_relpath(value))
        except BadUploadNameError as exc:
            raise BadUploadNameError(f"bad sync_root {value!r}: {exc}") from exc
    return list(dict.fromkeys(roots))


def stale_uploads(
    home: Path, roots: list[PurePosixPath], targets: list[PurePosixPath]
) -> list[Path]:
    """The kept files under the sync roots that this upload does not hold: to delete (their
    notes are then forgotten). Hidden files (a write in progress) and anything behind a
    symbolic link are left alone; a root that leads out of ``home`` is refused (403)."""
    keep = {home.joinpath(*t.parts) for t in targets}
    stale: list[Path] = []
    for root in roots:
        top = home.joinpath(*root.parts)
        if not top.exists():
            continue
        if top.is_symlink() or not top.resolve().is_relative_to(home) or not top.is_dir():
            raise ApiError(
                422, "invalid_request", f"sync_root {root} is not a folder among the uploads"
            )
        for dirpath, dirnames, filenames in os.walk(top):  # links are not followed
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                path = Path(dirpath, name)
                if not name.startswith(".") and path not in keep:
                    stale.append(path)
    return sorted(stale)


def _check_place(home: Path, rel: PurePosixPath, stale: list[Path]) -> None:
    """Whether ``rel`` can be written under ``home`` without a change to anything else: 422
    when a folder on the way is a file (one of ``stale``, deleted first, excepted) or the
    path is a folder; 403 when a folder on the way is a link leading out of ``home``."""
    path = home
    for part in rel.parts[:-1]:
        path = path / part
        if path.is_symlink():
            with contextlib.suppress(OSError):
                if path.resolve().is_relative_to(home) and path.resolve().is_dir():
                    continue
            raise ApiError(
                403, "forbidden_path", f"{rel} leads outside the uploads folder (a link)"
            )
        if path.exists() and not path.is_dir() and path not in stale:
            raise ApiError(
                422,
                "invalid_request",
                f"{rel}: the upload {path.relative_to(home).as_posix()} is a file, not a folder",
            )
    target = home.joinpath(*rel.parts)
    if target.is_dir() and not target.is_symlink():
        raise ApiError(422, "invalid_request", f"{rel} is a folder among the uploads")


async def _keep(upload: UploadFile, home: Path, rel: PurePosixPath) -> Path:
    """Write one part to ``home / rel`` (``home``: the resolved uploads folder), atomically.
    403 when a folder on the way is a symbolic link leading out of ``home`` (nothing is written
    outside it); 422 when the path is taken by a folder, or a folder on the way by a file."""
    target = home.joinpath(*rel.parts)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # why: a link inside the uploads folder must not carry a write out of it
        if not target.parent.resolve().is_relative_to(home):
            raise ApiError(
                403, "forbidden_path", f"{rel} leads outside the uploads folder (a link)"
            )
        if target.is_dir() and not target.is_symlink():
            raise ApiError(422, "invalid_request", f"{rel} is a folder among the uploads")
        partial = target.with_name(f".{target.name}.part")
        partial.unlink(missing_ok=True)  # never write through a link left there
        partial.write_bytes(await upload.read())
        os.replace(partial, target)  # a crash never leaves half a note to ingest
    except (FileExistsError, NotADirectoryError) as exc:
        raise ApiError(
            422, "invalid_request", f"{rel}: a file among the uploads is in the way ({exc})"
        ) from exc
    return target
