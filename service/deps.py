"""FastAPI dependencies: the shared components, and the API-key check."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from service.api.errors import ApiError
from service.components import Components


def components(request: Request) -> Components:
    parts: Components = request.app.state.components
    return parts


Shared = Annotated[Components, Depends(components)]


def presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.headers.get("x-api-key")


def require_api_key(request: Request, parts: Shared) -> None:
    """401 unless the request carries one of SHIORI_API_KEYS (none configured: open)."""
    keys = parts.settings.api_keys
    if not keys:
        return
    given = (presented_key(request) or "").encode()
    ok = False
    for key in keys:  # compare with every key, in constant time each: no early exit
        ok |= hmac.compare_digest(given, key.get_secret_value().encode())
    if not ok:
        raise ApiError(
            401,
            "unauthorized",
            "a valid API key is required: 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
