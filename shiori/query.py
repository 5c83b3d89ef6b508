"""What a query asks of the store besides vectors (`ChunkFilter`), and what a hit is (`Hit`)."""

from __future__ import annotations

import contextlib
import posixpath
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from shiori.chunk import Chunk


@dataclass(frozen=True)
class ChunkFilter:
    """Optional restrictions on which chunks a query may return (all must hold).

    Names are compared in Unicode NFC on both sides: a name typed by a person finds a note
    whose file name macOS wrote decomposed (NFD). A path prefix is taken as a path
    (`normal_prefix`): ``./notes/ml``, ``notes\\ml`` and ``notes/ml/`` all name ``notes/ml``."""

    sources: tuple[str, ...] = ()  # exact `source` values (paths as shown)
    # a folder (or one file), as shown (`source`) or absolute (`path`): matches that file and
    # what lies under that folder, never a sibling whose name merely starts the same way
    path_prefix: str | None = None
    title: str | None = None  # the note's title or one of its aliases
    tags: tuple[str, ...] = ()  # the note has every one of these tags

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", tuple(_nfc(s) for s in self.sources))
        if self.path_prefix:
            object.__setattr__(self, "path_prefix", normal_prefix(self.path_prefix))
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
        if not self.path_prefix:
            return True
        return any(
            is_under(_nfc(chunk.source), prefix) or is_under(_nfc(chunk.path), prefix)
            for prefix in prefix_spellings(self.path_prefix)
        )

    def prefix_forms(self) -> list[tuple[str, str]] | None:
        """``(exact, folder)`` pairs for the store's filter, one for each spelling of the prefix
        (`prefix_spellings`), or None without a path prefix: a name equal to ``exact`` (the
        file itself) or starting with ``folder`` (which ends in "/")."""
        if not self.path_prefix:
            return None
        return [prefix_forms(p) for p in prefix_spellings(self.path_prefix)]


def normal_prefix(prefix: str) -> str:
    """A path prefix as sources and paths are stored: Unicode NFC, ``/`` between folders (a
    Windows ``\\`` too), ``.`` and empty parts and a trailing ``/`` dropped, ``a/..`` folded
    (`posixpath.normpath`): ``./notes/ml/`` and ``notes\\ml`` → ``notes/ml``; ``/`` stays."""
    name = _nfc(prefix).replace("\\", "/")
    if not name:
        return name
    name = posixpath.normpath(name)
    return "/" + name.lstrip("/") if name.startswith("/") else name


def prefix_spellings(prefix: str) -> list[str]:
    """The normalised prefix, and for an absolute one also its real path (symbolic links
    followed, as ingest records ``path`` and as ``shiori remove`` matches): a note ingested
    through ``~/notes`` → ``/data/notes`` is found under either."""
    name = normal_prefix(prefix)
    names = [name]
    if name.startswith("/"):
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            names.append(_nfc(Path(name).resolve().as_posix()))
    return list(dict.fromkeys(names))


def prefix_forms(prefix: str) -> tuple[str, str]:
    """The file a path prefix may name, and the folder it names, ending in one "/".

    ``"notes/ml"`` and ``"notes/ml/"`` give ``("notes/ml", "notes/ml/")``; ``"/"`` gives
    ``("/", "/")``; ``"./notes/ml"`` and ``"notes\\ml"`` give the same (`normal_prefix`).
    Why both: a plain string prefix ``notes/ml`` also matches ``notes/ml-old/x.md``, a
    different folder; a folder boundary does not."""
    prefix = normal_prefix(prefix)
    exact = prefix.rstrip("/") or prefix[:1]
    folder = exact if exact.endswith("/") else exact + "/"
    return exact, folder


def is_under(name: str, prefix: str) -> bool:
    """Whether ``name`` (a path with "/" separators) is the file ``prefix`` or lies under the
    folder ``prefix``: ``is_under("notes/ml/a.md", "notes/ml")`` holds,
    ``is_under("notes/ml-old/a.md", "notes/ml")`` does not."""
    exact, folder = prefix_forms(prefix)
    name = _nfc(name)
    return name == exact or name.startswith(folder)


def _nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)


Hit = tuple[Chunk, float, list[float]]
"""(chunk, fused score, the chunk's dense vector: unit length, for cosine similarity)."""
