"""Chunks of a note's text without a store: the ingest readers and splitter (one token per two
characters), as ingest makes them."""

from __future__ import annotations

from pathlib import Path

from ingest.chunking import NoteSplitter
from ingest.readers import read_document
from shiori.chunk import Chunk


def chunks_of(path: Path, source: str | None = None, chunk_tokens: int = 300) -> list[Chunk]:
    """The chunks ingest would store for the note at ``path`` (its splitter and reader)."""
    document = read_document(path)
    splitter = NoteSplitter(
        lambda texts: [max(1, len(t) // 2) for t in texts],
        chunk_tokens=chunk_tokens,
        overlap_tokens=20,
    )
    title = str(document.metadata.get("title", path.stem))
    return [
        Chunk(
            path=str(path.resolve()),
            source=source or path.name,
            title=title,
            headings=list(n.metadata["headings"]),
            line_start=int(n.metadata["line_start"]),
            line_end=int(n.metadata["line_end"]),
            char_start=int(n.metadata["char_start"]),
            char_end=int(n.metadata["char_end"]),
            text=n.get_content(),
            chunk_index=int(n.metadata["chunk_index"]),
            content_hash=str(n.metadata["content_hash"]),
            page=n.metadata.get("page"),
            lead_chars=int(n.metadata.get("lead_chars", 0)),
            lead_line=int(n.metadata.get("lead_line", 0)),
        )
        for n in splitter.split(document.text, dict(document.metadata))
    ]


def note(tmp: Path, name: str, text: str) -> list[Chunk]:
    """Write ``text`` as ``tmp/name`` and chunk it."""
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return chunks_of(path, source=name)
