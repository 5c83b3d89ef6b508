"""Keeping the index in step with folders as notes change: `shiori ingest --watch`, and the
folders in SHIORI_WATCH while `shiori serve` / `shiori up` run.

File-system events come from watchfiles (inotify, FSEvents, ReadDirectoryChangesW), debounced:
a burst of events (an editor's save, a sync client's batch) becomes one batch, handled once the
folders have been quiet for ``debounce_ms``. A batch is incremental: only the changed files that
an ingest of the folders would take (supported, not hidden, not in a .shioriignore) are read,
and notes whose files are gone are forgotten. A changed .shioriignore re-checks every file
under the folders (unchanged ones cost a hash).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.discovery import IGNORE_FILE, discover
from ingest.pipeline import Ingestor, IngestReport, Reporter
from ingest.remove import remove_notes

if TYPE_CHECKING:
    import asyncio

DEBOUNCE_MS = 1600
_log = logging.getLogger(__name__)


def ingest_changes(
    ingestor: Ingestor,
    roots: Sequence[Path],
    changed: Iterable[Path],
    reporter: Reporter | None = None,
) -> IngestReport:
    """Bring the index up to date with these changed paths under ``roots``."""
    changed = {Path(p).absolute() for p in changed}
    if any(p.name == IGNORE_FILE for p in changed):
        report = ingestor.run(list(roots), prune=True, reporter=reporter)
    else:
        wanted = set(discover(list(roots)).files)
        todo = sorted({q for p in changed for q in (p, p.resolve()) if q in wanted})
        report = ingestor.run(todo, reporter=reporter) if todo else IngestReport()
    gone = [str(p) for p in changed if not p.exists()]
    if gone:
        removed = remove_notes(ingestor.index, gone, ingestor.settings.uploads_dir)
        report.files_deleted += len(removed.removed)
        report.chunks_deleted += removed.chunks_deleted
    return report


def watch(
    ingestor: Ingestor,
    roots: Sequence[Path],
    on_batch: Callable[[IngestReport], None],
    *,
    stop: threading.Event | None = None,
    debounce_ms: int = DEBOUNCE_MS,
    reporter: Reporter | None = None,
) -> None:
    """Handle batches of changes under ``roots`` until ``stop`` is set (or Ctrl-C)."""
    from watchfiles import watch as watch_paths

    for changes in watch_paths(*roots, debounce=debounce_ms, stop_event=stop):
        report = ingest_changes(ingestor, roots, [Path(p) for _, p in changes], reporter)
        on_batch(report)


async def watch_in_service(
    ingestor: Ingestor, roots: Sequence[Path], lock: asyncio.Lock, stop: Any
) -> None:
    """The service's watcher: first brings the folders up to date (what changed while the service
    was down), then handles each batch of changes; all under the service's ingest lock, in a
    worker thread."""
    import anyio
    from watchfiles import awatch

    _log.info("watching %s for changed notes", ", ".join(map(str, roots)))
    try:
        async with lock:
            await anyio.to_thread.run_sync(lambda: ingestor.run(list(roots), prune=True))
    except Exception:
        _log.exception("ingesting the watched folders failed")
    async for changes in awatch(*roots, debounce=DEBOUNCE_MS, stop_event=stop):
        paths = [Path(p) for _, p in changes]
        try:
            async with lock:
                report = await anyio.to_thread.run_sync(ingest_changes, ingestor, roots, paths)
        except Exception:  # a watcher must outlive one bad batch; the next batch retries
            _log.exception("re-ingesting changed notes failed")
            continue
        _log.info(
            "notes changed: %d new, %d updated, %d deleted, %d failed",
            report.files_new,
            report.files_updated,
            report.files_deleted,
            report.files_failed,
        )
