"""A small client of the Shiori HTTP API, for `shiori ask`, `ingest --server`, `remove --server`
and `shiori mcp`."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx


class ServiceError(RuntimeError):
    """The service answered with an error; ``kind`` is its ``error.type``."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(f"{message} (HTTP {status}, {kind})")
        self.status, self.kind = status, kind


class ServiceUnreachableError(RuntimeError):
    """Nothing answers at the URL."""


class ShioriClient:
    def __init__(self, url: str, api_key: str | None = None, timeout: float | None = 600) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ShioriClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self.http.post(path, **kwargs)
        except httpx.ConnectError as exc:
            raise ServiceUnreachableError(f"no Shiori service at {self.url}: {exc}") from exc
        return _checked(response)

    def ask(self, question: str, **options: Any) -> dict[str, Any]:
        return self._post("/v1/ask", json={"question": question, **options})

    def search(self, question: str, **options: Any) -> dict[str, Any]:
        return self._post("/v1/search", json={"question": question, **options})

    def ask_stream(self, question: str, **options: Any) -> Iterator[tuple[str, dict[str, Any]]]:
        """(event, data) pairs: 'delta' {"text"}, then 'final' (the /v1/ask body) or 'error'."""
        body = {"question": question, "stream": True, **options}
        try:
            with self.http.stream("POST", "/v1/ask", json=body) as response:
                if response.status_code != 200:
                    response.read()
                    _checked(response)
                yield from parse_sse(response.iter_lines())
        except httpx.ConnectError as exc:
            raise ServiceUnreachableError(f"no Shiori service at {self.url}: {exc}") from exc

    def ingest_paths(self, paths: Sequence[Path], prune: bool = False) -> dict[str, Any]:
        """Ingest files or folders on the server's machine. The folders were named on purpose,
        so a whole allowed folder is accepted ("all": true)."""
        body = {"paths": [str(p.resolve()) for p in paths], "prune": prune, "all": True}
        return self._post("/v1/ingest", json=body)

    def remove_notes(self, sources: Sequence[str]) -> dict[str, Any]:
        """DELETE /v1/notes: forget the notes with these sources (as the service shows them)."""
        try:
            response = self.http.delete("/v1/notes", params=[("source", s) for s in sources])
        except httpx.ConnectError as exc:
            raise ServiceUnreachableError(f"no Shiori service at {self.url}: {exc}") from exc
        return _checked(response)

    def ingest_files(
        self, files: Sequence[Path | tuple[str, Path]], sync_roots: Sequence[str] = ()
    ) -> dict[str, Any]:
        """Upload notes (POST /v1/ingest, multipart) and return the ingest report.

        Each item is ``(name, file)``, the name being the path the service keeps the note at
        (``"notes/2024/summary.md"``, see `upload_names`), or a bare file, sent under its base
        name. ``sync_roots``: folders (``"notes"``) sent whole: notes the service keeps under
        them that are not in this upload are forgotten (``forgotten`` in the report). Raises
        `ServiceError` (e.g. 422 for a name the service refuses), or
        `ServiceUnreachableError`."""
        named = [item if isinstance(item, tuple) else (item.name, item) for item in files]
        data = {"sync_root": list(sync_roots)} if sync_roots else None
        with ExitStack() as stack:
            parts = [("file", (name, stack.enter_context(f.open("rb")))) for name, f in named]
            return self._post("/v1/ingest", files=parts, data=data)


def upload_names(roots: Sequence[Path], files: Sequence[Path]) -> list[tuple[str, Path]]:
    """The name each file is uploaded under: its path relative to the folder above the root it
    was found under, so ``~/notes`` gives ``notes/2024/summary.md`` and
    ``notes/2025/summary.md``, two notes (why: a base name alone would make them one, the
    second replacing the first). A root that is a file is sent under its base name. Names use
    "/" whatever the system.

    ``roots``: the folders and files asked for, resolved (as `ingest.discovery.Discovery.roots`);
    ``files``: the files found under them. Raises ValueError, naming both files, when two
    files would get one name (two roots with the same base name holding the same relative
    path), or when a file lies under no root."""
    named: list[tuple[str, Path]] = []
    owner: dict[str, Path] = {}
    for f in files:
        root = next((r for r in roots if f == r or f.is_relative_to(r)), None)
        if root is None:
            raise ValueError(f"{f} is under none of {', '.join(map(str, roots))}")
        rel = f.relative_to(root.parent) if root.name else f.relative_to(root)
        name = rel.as_posix()
        if name in owner:
            raise ValueError(
                f"{owner[name]} and {f} would both be uploaded as {name}; upload their folders "
                "in separate runs or from a common parent folder"
            )
        owner[name] = f
        named.append((name, f))
    return named


def sync_roots(roots: Sequence[Path], unlisted: Sequence[Path] = ()) -> list[str]:
    """The upload names of the folders among ``roots`` (their base names, as `upload_names`
    starts the names of their files), to send as ``sync_root``: the service then forgets what
    it keeps under them that this upload does not hold. A folder with a part that could not be
    listed (``unlisted``) is left out: what is in it is not known to be gone."""
    return [
        r.name
        for r in roots
        if r.name and r.is_dir() and not any(u == r or u.is_relative_to(r) for u in unlisted)
    ]


class AsyncShioriClient:
    """The read-only part of the API for async callers (the MCP server): ask, search, notes."""

    def __init__(self, url: str, api_key: str | None = None, timeout: float | None = 600) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = url.rstrip("/")
        self.http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self.http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise ServiceUnreachableError(f"no Shiori service at {self.url}: {exc}") from exc
        return _checked(response)

    async def ask(self, question: str, **options: Any) -> dict[str, Any]:
        return await self._call("POST", "/v1/ask", json={"question": question, **options})

    async def search(self, question: str, **options: Any) -> dict[str, Any]:
        return await self._call("POST", "/v1/search", json={"question": question, **options})

    async def notes(self) -> dict[str, Any]:
        return await self._call("GET", "/v1/notes")


def parse_sse(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    name, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", list[str]()
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
    if data:
        yield name, json.loads("\n".join(data))


def _checked(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code >= 400:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        raise ServiceError(
            response.status_code,
            error.get("type", "http_error"),
            error.get("message", response.text[:300]),
        )
    return body
