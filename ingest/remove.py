"""Forgetting notes: `shiori remove PATH…` and `DELETE /v1/notes?source=…`.

A note is named as a person sees it — its ``source`` as shown in citations (``notes/a.md``,
``uploads/a.md``) — or by its path on disk, relative or absolute; a folder names every note under
it. The file need not exist any more, and need not be under the folders of any ingest. Names are
compared in Unicode NFC. A note uploaded to the service is a copy the service keeps: removing
the note deletes that copy too (never a file outside SHIORI_UPLOADS_DIR).
"""

from __future__ import annotations

import contextlib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shiori.index import FileRecord, NoteIndex


def _nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def _under(name: str, target: str) -> bool:
    target = target.rstrip("/")
    return name == target or (bool(target) and name.startswith(target + "/"))


def matches(record: FileRecord, target: str, cwd: Path | None = None) -> bool:
    """Whether ``target`` (a source as shown, or a path; a folder names what is under it)
    names this note."""
    wanted = _nfc(target.strip())
    if not wanted:
        return False
    if _under(_nfc(record.source), wanted):
        return True
    # only the user's own home: "~name" would look up another account (RuntimeError when
    # there is none), and a name typed into a request is not a request for that
    path = Path(wanted).expanduser() if wanted == "~" or wanted.startswith("~/") else Path(wanted)
    absolute = path if path.is_absolute() else (cwd or Path.cwd()) / path
    candidates = {_nfc(absolute.as_posix())}
    # resolve() follows links, as ingest did when it recorded the path; a path that no longer
    # exists resolves to itself. A NUL byte, a name too long or a link loop names no note.
    with contextlib.suppress(OSError, ValueError, RuntimeError):
        candidates.add(_nfc(absolute.resolve().as_posix()))
    return any(_under(_nfc(record.path), c) for c in candidates)


def select(records: Iterable[FileRecord], targets: Sequence[str]) -> dict[str, list[FileRecord]]:
    """For each target, the notes it names (possibly none)."""
    listed = list(records)
    return {t: [r for r in listed if matches(r, t)] for t in targets}


@dataclass
class RemoveReport:
    removed: list[dict[str, object]] = field(default_factory=list)  # {"source", "chunks"}
    not_found: list[str] = field(default_factory=list)  # targets that named no note
    chunks_deleted: int = 0
    uploads_deleted: int = 0  # the service's copies of uploaded notes

    def to_dict(self) -> dict[str, object]:
        return {
            "removed": self.removed,
            "not_found": self.not_found,
            "files_deleted": len(self.removed),
            "chunks_deleted": self.chunks_deleted,
            "uploads_deleted": self.uploads_deleted,
        }


def remove_notes(
    index: NoteIndex, targets: Sequence[str], uploads_dir: Path | None = None
) -> RemoveReport:
    """Forget the notes the targets name: their chunks and file records (see module doc)."""
    report = RemoveReport()
    chosen: dict[str, FileRecord] = {}
    for target, found in select(index.file_records().values(), targets).items():
        if not found:
            report.not_found.append(target)
        for record in found:
            chosen[record.path] = record
    uploads = uploads_dir.expanduser().resolve() if uploads_dir is not None else None
    for record in sorted(chosen.values(), key=lambda r: r.source):
        deleted = index.remove_file(record.path)
        report.chunks_deleted += deleted
        report.removed.append({"source": record.source, "chunks": deleted})
        copy = Path(record.path)
        if uploads is not None and copy.is_relative_to(uploads) and copy.is_file():
            copy.unlink()
            report.uploads_deleted += 1
    if chosen:
        index.optimize()  # the embedded engine's statistics (IDF) then count only what is left
    return report
