"""What a query asks of the store besides vectors (`ChunkFilter`), and what a hit is (`Hit`)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from shiori.chunk import Chunk


@dataclass(frozen=True)
class ChunkFilter:
    """Optional restrictions on which chunks a query may return (all must hold).

    Names are compared in Unicode NFC on both sides: a name typed by a person finds a note
    whose file name macOS wrote decomposed (NFD)."""

    sources: tuple[str, ...] = ()  # exact `source` values (paths as shown)
    path_prefix: str | None = None  # `source` or absolute `path` starts with this
    title: str | None = None  # the note's title or one of its aliases
    tags: tuple[str, ...] = ()  # the note has every one of these tags

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", tuple(_nfc(s) for s in self.sources))
        if self.path_prefix:
            object.__setattr__(self, "path_prefix", _nfc(self.path_prefix))
        if self.title:
            object.__setattr__(self, "title", _nfc(self.title))
        object.__setattr__(self, "tags", tuple(_nfc(t).lstrip("#") for t in self.tags))

    @property
    def empty(self) -> bool:
        return not (self.sources or self.path_prefix or self.title or self.tags)

    def accepts(self, chunk: Chunk) -> bool:
        if self.sources and _nfc(chunk.source) not in self.sources:
            return False
        if self.title and self.title != chunk.title and self.title not in chunk.aliases:
            return False
        if self.tags and not set(self.tags) <= set(chunk.tags):
            return False
        prefix = self.path_prefix
        return (
            not prefix
            or _nfc(chunk.source).startswith(prefix)
            or _nfc(chunk.path).startswith(prefix)
        )


def _nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)


Hit = tuple[Chunk, float, list[float]]
"""(chunk, fused score, the chunk's dense vector: unit length, for cosine similarity)."""
