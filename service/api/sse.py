"""Server-Sent Events framing, and starting a stream early enough to fail with a status."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, TypeVar

T = TypeVar("T")


def event(data: Any, name: str | None = None) -> str:
    """One SSE event; ``data`` is JSON-encoded (a str is sent as is, e.g. '[DONE]')."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {name}\n" if name else ""
    return head + "".join(f"data: {line}\n" for line in payload.split("\n")) + "\n"


async def started(stream: AsyncIterator[T]) -> AsyncGenerator[T, None]:
    """Pull the first item now, so that failures before the first byte (retrieval, the LLM
    refusing the connection) raise here and become a proper HTTP status, not a broken stream.
    Closing the returned stream closes ``stream`` too."""
    first = await anext(stream)

    async def rest() -> AsyncGenerator[T, None]:
        try:
            yield first
            async for item in stream:
                yield item
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    return rest()
