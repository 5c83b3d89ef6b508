"""GET /: the page for asking in a browser (plain HTML, CSS and one script; no build step).

The page itself holds nothing secret and is served without a key; every API call it makes
carries the key the person typed (kept in the tab's sessionStorage), so the API stays closed.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

router = APIRouter(include_in_schema=False)

_ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "i18n.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
# Only our own files run and load; note text is inserted as text, never as markup.
_SECURITY = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@cache
def _body(name: str) -> bytes:
    """Read once per process: the files ship with the package and do not change under it."""
    return resources.files("service.web").joinpath(name).read_bytes()


def _asset(name: str) -> Response:
    if name not in _ASSETS:
        raise HTTPException(404, f"no such file: /static/{name}")
    return Response(_body(name), media_type=_ASSETS[name], headers=_SECURITY)


@router.get("/")
async def page() -> Response:
    return _asset("index.html")


@router.get("/static/{name}")
async def static(name: str) -> Response:
    return _asset(name)
