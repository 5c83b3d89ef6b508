"""Keeping the index in step with folders as notes change: `shiori ingest --watch`, and the
folders in SHIORI_WATCH while `shiori serve` / `shiori up` run.

File-system events come from watchfiles (inotify, FSEvents, ReadDirectoryChangesW), debounced:
a burst of events (an editor's save, a sync client's batch) becomes one batch, handled once the
folders have been quiet for ``debounce_ms``. A batch is incremental: only the changed files that
an ingest of the folders would take (supported, not hidden, not in a .shioriignore) are read,
with every such file under a changed folder (a folder renamed or moved in arrives as one event
for the folder), and notes whose files or folders are gone are forgotten. A changed
.shioriignore re-checks every file under the folders (unchanged ones cost a hash). The watched
folders themselves are looked at every few seconds: one renamed away or deleted is named in a
warning (its notes are forgotten), and one back again or replaced is ingested and watched anew.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import aclosing, closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.discovery import IGNORE_FILE, discover
from ingest.pipeline import Ingestor, IngestReport, Reporter, file_is_gone
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
    """Bring the index up to date with these changed paths under ``roots``.

    ``changed``: the paths of one batch of file-system events, files or folders, created,
    modified or deleted. A changed file is read when an ingest of ``roots`` would take it. A
    changed folder that exists stands for every file under it that such an ingest takes: the
    operating system reports a folder renamed or moved into place as one event for the folder
    and none for the files inside; notes under it whose files are gone are forgotten (a folder
    name reused within one batch). A changed path that no longer exists is forgotten with every
    note under it (a deleted file, a folder renamed away). A changed .shioriignore re-checks
    every file under the roots, with prune (notes it now excludes are forgotten).

    Returns the batch's report; notes forgotten are counted in ``files_deleted`` and named in
    ``forgotten`` (a note whose bytes were taken at a new path in this batch as "moved to"
    it; the new path reused its vectors). Errors of the store propagate; files that cannot be
    read are failures in the report."""
    changed = {Path(p).absolute() for p in changed}
    taken: set[Path] = set()
    folders: list[Path] = []
    if any(p.name == IGNORE_FILE for p in changed):
        report = ingestor.run(list(roots), prune=True, reporter=reporter)
    else:
        wanted = discover(list(roots)).files
        named = {q for p in changed for q in (p, p.resolve())}
        folders = [q for q in named if q.is_dir()]
        taken = {f for f in wanted if f in named or any(f.is_relative_to(d) for d in folders)}
        todo = sorted(taken)
        report = ingestor.run(todo, reporter=reporter) if todo else IngestReport()
    gone = [str(p) for p in changed if not p.exists()]
    if folders:
        # a changed folder that exists may hold the records of notes gone from it: a folder
        # name reused in one batch (week1 renamed away, week2 renamed to week1) arrives as
        # "added week1" and "deleted week1" together, and week1 is there
        for record in ingestor.index.file_records().values():
            path = Path(record.path)
            under = any(path.is_relative_to(d) for d in folders)
            if under and path not in taken and file_is_gone(path):
                gone.append(record.path)
    if gone:
        records = ingestor.index.file_records()
        # where the same bytes now live (this batch's files), to name a move as one
        now_at = {r.file_hash: r.source for r in records.values() if Path(r.path) in taken}
        removed = remove_notes(ingestor.index, gone, ingestor.settings.uploads_dir)
        hashes = {r.source: r.file_hash for r in records.values()}
        for note in removed.removed:
            source = str(note["source"])
            target = now_at.get(hashes.get(source, ""))
            reason = f"moved to {target}" if target is not None else "file is gone"
            report.forgotten.append({"path": source, "reason": reason})
            if reporter is not None:
                reporter.warn(f"forgot {source}: {reason}")
        report.files_deleted += len(removed.removed)
        report.chunks_deleted += removed.chunks_deleted
    return report


POLL_S = 3.0  # how often the watched folders themselves are looked at (gone, back, replaced)


class _Roots:
    """The watched folders' identities, (st_dev, st_ino) or None while a folder is missing: a
    watched folder renamed away, deleted or replaced is not followed by the file-system events,
    so the watcher looks at the folders themselves between batches and starts over when one
    changed."""

    def __init__(self, roots: Sequence[Path]) -> None:
        self.roots = list(roots)
        self.ids = {r: self._id(r) for r in self.roots}

    @staticmethod
    def _id(root: Path) -> tuple[int, int] | None:
        try:
            st = root.stat()
        except OSError:
            return None
        return (st.st_dev, st.st_ino) if root.is_dir() else None

    def present(self) -> list[Path]:
        return [r for r in self.roots if self.ids[r] is not None]

    def check(self, changed: Iterable[Path] = ()) -> tuple[list[Path], list[Path]]:
        """(folders gone since the last look, folders back or replaced since then, or named
        themselves in ``changed``: renamed away and back within one batch)."""
        named = {Path(p) for p in changed}
        gone: list[Path] = []
        back: list[Path] = []
        for root in self.roots:
            now = self._id(root)
            if now is None and self.ids[root] is not None:
                gone.append(root)
            elif now is not None and (now != self.ids[root] or root in named):
                back.append(root)
            self.ids[root] = now
        return gone, back


def _root_gone(root: Path, reporter: Reporter | None) -> None:
    message = (
        f"the watched folder {root} is gone (renamed, moved or deleted): its notes are "
        "forgotten; it is watched again when it is back"
    )
    _log.warning(message)
    if reporter is not None:
        reporter.warn(message)


def _root_back(ingestor: Ingestor, root: Path, reporter: Reporter | None) -> IngestReport:
    _log.warning("the watched folder %s is there again (or was replaced): ingesting it", root)
    if reporter is not None:
        reporter.warn(f"the watched folder {root} is there again: ingesting it")
    return ingestor.run([root], prune=True, reporter=reporter)


def watch(
    ingestor: Ingestor,
    roots: Sequence[Path],
    on_batch: Callable[[IngestReport], None],
    *,
    stop: threading.Event | None = None,
    debounce_ms: int = DEBOUNCE_MS,
    reporter: Reporter | None = None,
    poll_s: float = POLL_S,
) -> None:
    """Handle batches of changes under ``roots`` until ``stop`` is set (or Ctrl-C). A watched
    folder that goes away is named (its notes are forgotten); when it is back, or replaced by
    another folder of that name, it is ingested again and watched from then on."""
    from watchfiles import watch as watch_paths

    state = _Roots(roots)
    while stop is None or not stop.is_set():
        present = state.present()
        if not present:  # nothing to watch until a folder is back
            if stop is not None:
                stop.wait(poll_s)
            else:
                time.sleep(poll_s)
            for root in state.check()[1]:
                on_batch(_root_back(ingestor, root, reporter))
            continue
        batches = watch_paths(
            *present,
            debounce=debounce_ms,
            stop_event=stop,
            rust_timeout=int(poll_s * 1000),
            yield_on_timeout=True,
        )
        with closing(batches):
            for changes in batches:
                paths = [Path(p) for _, p in changes]
                if paths:
                    on_batch(ingest_changes(ingestor, roots, paths, reporter))
                gone, back = state.check(paths)
                for root in gone:
                    _root_gone(root, reporter)
                for root in back:
                    on_batch(_root_back(ingestor, root, reporter))
                if gone or back:
                    break  # start over: watch the folders that are there now
            else:
                return  # stopped


async def watch_in_service(
    ingestor: Ingestor, roots: Sequence[Path], lock: asyncio.Lock, stop: Any
) -> None:
    """The service's watcher: first brings the folders up to date (what changed while the service
    was down), then handles each batch of changes; all under the service's ingest lock, in a
    worker thread. A watched folder that goes away is logged; when it is back (or replaced) it
    is ingested again and watched from then on."""
    import anyio
    from watchfiles import awatch

    _log.info("watching %s for changed notes", ", ".join(map(str, roots)))
    try:
        async with lock:
            first = await anyio.to_thread.run_sync(lambda: ingestor.run(list(roots), prune=True))
        _log_report(first)
    except Exception:
        _log.exception("ingesting the watched folders failed")
    state = _Roots(roots)

    async def reingest(back: list[Path]) -> None:
        for root in back:
            try:
                async with lock:
                    report = await anyio.to_thread.run_sync(_root_back, ingestor, root, None)
            except Exception:
                _log.exception("ingesting %s failed", root)
                continue
            _log_report(report)

    while not stop.is_set():
        present = state.present()
        if not present:
            with anyio.move_on_after(POLL_S):
                await stop.wait()
            await reingest(state.check()[1])
            continue
        restart = False
        batches = awatch(
            *present,
            debounce=DEBOUNCE_MS,
            stop_event=stop,
            rust_timeout=int(POLL_S * 1000),
            yield_on_timeout=True,
        )
        async with aclosing(batches):
            async for changes in batches:
                paths = [Path(p) for _, p in changes]
                if paths:
                    try:
                        async with lock:
                            report = await anyio.to_thread.run_sync(
                                ingest_changes, ingestor, roots, paths
                            )
                        _log_report(report)
                    except Exception:  # a watcher must outlive one bad batch; the next retries
                        _log.exception("re-ingesting changed notes failed")
                gone, back = state.check(paths)
                for root in gone:
                    _root_gone(root, None)
                await reingest(back)
                if gone or back:
                    restart = True
                    break
        if not restart:
            return


def _log_report(report: IngestReport) -> None:
    """The counts, then each note that could not be read well or was forgotten by name: in a
    service the log is the only place a watcher's report is seen."""
    _log.info(
        "notes changed: %d new, %d updated, %d deleted, %d failed",
        report.files_new,
        report.files_updated,
        report.files_deleted,
        report.files_failed,
    )
    for failure in report.failures:
        _log.warning("skipped %s: %s", failure["path"], failure["error"])
    for item in report.warnings:
        _log.warning("%s: %s", item["path"], item["warning"])
    for note in report.forgotten:
        _log.info("forgot %s: %s", note["path"], note["reason"])
