"""A chunk: one retrievable passage and everything a citation needs (stored as payload)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Chunk:
    """One retrievable passage and everything a citation needs. Stored as the point's payload."""

    path: str  # absolute path: the document's identity
    source: str  # the path as shown to people (relative to the working directory when inside it)
    title: str
    headings: list[str]
    line_start: int  # 1-based, inclusive
    line_end: int
    char_start: int  # offsets into the document text, end exclusive
    char_end: int
    text: str
    chunk_index: int
    content_hash: str
    file_hash: str = ""
    generation: str = ""
    page: int | None = None
    kind: str = "markdown"

    @property
    def heading(self) -> str:
        return " > ".join(self.headings)

    def payload(self, live: bool) -> dict[str, Any]:
        data = asdict(self)
        data["heading"] = self.heading
        data["live"] = live
        return data

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Chunk:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in payload.items() if k in names})
