"""`shiori ingest`, `shiori remove`, `shiori stats`: the notes in the index."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from shiori import models as model_registry
from shiori.cli.common import (
    ExitStatus,
    err,
    fail,
    load_settings,
    open_store_or_exit,
    progress_bar,
)
from shiori.config import Settings, reveal


class _BarReporter:
    """Progress bar on stderr for the ingest pipeline."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("ingesting", total=None)

    def start(self, total_files: int) -> None:
        self.progress.update(self.task, total=total_files)

    def advance(self, files: int = 1) -> None:
        self.progress.advance(self.task, files)

    def warn(self, message: str) -> None:
        self.progress.console.print(f"[yellow]warning:[/yellow] {escape(message)}")


class _QuietReporter:
    def __init__(self, console: Console | None) -> None:
        self.console = console

    def start(self, total_files: int) -> None: ...

    def advance(self, files: int = 1) -> None: ...

    def warn(self, message: str) -> None:
        if self.console is not None:
            self.console.print(f"warning: {message}")


def ingest(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Files or folders (walked recursively). Markdown, text, HTML, PDF."),
    ],
    prune: Annotated[
        bool,
        typer.Option(
            help="Also forget notes under PATHS that are still on disk but no longer taken "
            "(hidden, or excluded by a .shioriignore). Notes whose files are gone are forgotten "
            "without it."
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object with the counts, nothing else.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    server: Annotated[
        str | None,
        typer.Option(
            help="Ingest through a running Shiori service at this URL (it owns the store) "
            "instead of opening the store here. Paths must be inside its SHIORI_INGEST_ROOTS.",
            show_default=False,
        ),
    ] = None,
    upload: Annotated[
        bool,
        typer.Option(
            help="With --server: send the files' contents (for a service elsewhere). A folder "
            "is sent whole: notes uploaded from it before that it no longer holds (renamed, "
            "deleted, hidden, in a .shioriignore) are forgotten on the service, as with --prune."
        ),
    ] = False,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="After ingesting, keep watching PATHS and re-ingest what changes (debounced; "
            "deleted notes are forgotten) until Ctrl-C.",
        ),
    ] = False,
) -> None:
    """Add notes to the index, or bring it up to date. Safe to re-run: unchanged files cost
    nothing, changed files are replaced, an interrupted run is finished by the next one.

    Afterwards the index matches PATHS as they are now: notes under PATHS whose files were
    deleted, renamed or moved are forgotten (a moved note keeps its vectors), an emptied note
    keeps no passages (a warning, not a failure), and each forgotten note is named. Notes
    outside PATHS are left alone.

    Skips hidden files and whatever a `.shioriignore` (gitignore syntax) in a folder lists.
    Reports notes it could not read (exit status 1), and notes with the same content as another.

    Examples: `shiori ingest notes/` · `shiori ingest --prune ~/notes` ·
    `shiori ingest --watch ~/notes` (keeps the index in step while you write) ·
    `shiori ingest --server http://127.0.0.1:8000 notes/` (while `shiori serve` runs) ·
    `SHIORI_QDRANT=http://qdrant:6333 shiori ingest --json notes/`
    """
    from ingest.pipeline import Ingestor, Reporter
    from shiori.embedding import Embedder
    from shiori.index import NoteIndex, StoreLockedError, StoreUnavailableError, open_client

    settings = load_settings()
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        fail(f"no such file or folder: {', '.join(missing)}", ExitStatus.USAGE)
    if server:
        if watch:
            fail(
                "--watch works on the store here; a running service watches the folders in "
                "its SHIORI_WATCH instead",
                ExitStatus.USAGE,
            )
        _ingest_remote(settings, server, paths, prune, upload, as_json)
        return
    try:
        embedder = Embedder(settings)
        client = open_client(settings)
    except (model_registry.ModelError, StoreLockedError, StoreUnavailableError) as exc:
        fail(exc, ExitStatus.UNAVAILABLE)
    show_bar = not (as_json or quiet) and err.is_terminal
    try:
        with (
            err.status("loading the embedding model…", spinner="dots")
            if show_bar
            else nullcontext()
        ):
            index = NoteIndex(client, settings, embedder.dimension)
            index.ensure_collections()
            ingestor = Ingestor(settings, index, embedder)
        if show_bar:
            progress = progress_bar(transient=True)
            with progress:
                report = ingestor.run(paths, prune=prune, reporter=_BarReporter(progress))
        else:
            reporter: Reporter = _QuietReporter(None if as_json else err)
            report = ingestor.run(paths, prune=prune, reporter=reporter)
        where = f"{settings.qdrant} / {settings.collection}"
        if watch:
            _print_report(report.to_dict(), as_json, where, exit_on_failure=False)
            _watch(ingestor, paths, as_json, where)
            return
    except ValueError as exc:  # e.g. a collection of another dimension
        fail(exc, ExitStatus.UNAVAILABLE)
    finally:
        client.close()

    _print_report(report.to_dict(), as_json, where)


def _watch(ingestor: Any, paths: list[Path], as_json: bool, where: str) -> None:
    from ingest.watch import watch

    roots = [p.resolve() for p in paths]
    err.print(
        f"watching {', '.join(map(str, roots))} for changes; Ctrl-C stops",
        highlight=False,
        markup=False,
    )

    def batch(report: Any) -> None:
        _print_report(report.to_dict(), as_json, where, exit_on_failure=False)

    try:
        watch(ingestor, roots, batch, reporter=_QuietReporter(None if as_json else err))
    except KeyboardInterrupt:
        err.print("stopped watching")


def _print_report(
    report: dict[str, Any], as_json: bool, where: str, exit_on_failure: bool = True
) -> None:
    if as_json:
        print(json.dumps(report, ensure_ascii=False), flush=True)
    else:
        from ingest.pipeline import unsupported_summary

        seen = report["files_seen"]
        err.print(
            f"[bold]{seen}[/bold] file{'' if seen == 1 else 's'}: "
            f"{report['files_new']} new, {report['files_updated']} updated, "
            f"{report['files_unchanged']} unchanged, {report['files_deleted']} deleted, "
            f"{report['files_failed']} failed"
            + (f", {report['files_empty']} empty" if report.get("files_empty") else "")
            + (
                f", {report['files_unsupported']} of unsupported types skipped"
                + (
                    f" ({unsupported_summary(report['unsupported_types'])})"
                    if report.get("unsupported_types")
                    else ""
                )
                if report["files_unsupported"]
                else ""
            )
        )
        err.print(
            f"{report['chunks_written']} chunks written, {report['chunks_deleted']} deleted; "
            f"{report['embeddings_computed']} embeddings computed, "
            f"{report['embeddings_reused']} reused; {report['seconds']:.1f} s "
            f"→ {escape(str(where))}"
        )
        if report.get("duplicates"):
            n = len(report["duplicates"])
            err.print(
                f"{n} note{'' if n == 1 else 's'} with the same content as another (listed "
                "above; search shows each passage once). `shiori remove PATH` forgets a copy."
            )
    if report["files_failed"] and exit_on_failure:
        raise typer.Exit(ExitStatus.FAILED)


def _ingest_remote(
    settings: Settings, url: str, paths: list[Path], prune: bool, upload: bool, as_json: bool
) -> None:
    from ingest.discovery import discover
    from shiori.client import (
        ServiceError,
        ServiceUnreachableError,
        ShioriClient,
        sync_roots,
        upload_names,
    )

    try:
        with (
            ShioriClient(url, reveal(settings.api_key), timeout=None) as client,
            err.status(f"ingesting through {url}…") if not as_json else nullcontext(),
        ):
            if upload:
                found = discover(list(paths))
                if not found.files:
                    fail("no supported files to upload", ExitStatus.USAGE)
                try:
                    # folders kept in the names: same-named notes of two folders stay two
                    named = upload_names(found.roots, found.files)
                except ValueError as exc:
                    fail(exc, ExitStatus.USAGE)
                # each folder is synced (what it no longer holds is forgotten there), so
                # --prune is what an upload does anyway; a folder with a part this side could
                # not list is only added to (its missing notes are not known to be gone)
                synced = sync_roots(found.roots, found.unlisted)
                report = client.ingest_files(named, synced)
                # what this side's walk did not follow (loops, unreadable folders) is part of
                # the report too: a skipped folder never looks like a complete upload
                report.setdefault("warnings", [])[:0] = [
                    {"path": str(folder), "warning": why} for folder, why in found.skipped
                ] + [
                    {"path": str(root), "warning": "not synced: a folder in it could not be "
                     "listed, so notes uploaded from it before are kept"}
                    for root in found.roots
                    if root.is_dir() and root.name and root.name not in synced
                ]  # fmt: skip
            else:
                report = client.ingest_paths(paths, prune)
    except (ServiceError, ServiceUnreachableError) as exc:
        fail(exc, ExitStatus.UNAVAILABLE)
    if not as_json:
        _print_remote_warnings(report)
    _print_report(report, as_json, url)


def _print_remote_warnings(report: dict[str, Any]) -> None:
    """What a service's ingest report names, one line each (a local ingest prints them as it
    goes, through its reporter)."""
    from ingest.pipeline import unsupported_summary

    for failure in report.get("failures", []):
        err.print(
            f"[yellow]warning:[/yellow] skipped {escape(failure['path'])}: "
            f"{escape(str(failure['error']))}"
        )
    for item in report.get("warnings", []):
        err.print(f"[yellow]warning:[/yellow] {escape(item['path'])}: {escape(item['warning'])}")
    for note in report.get("forgotten", []):
        err.print(f"forgot {note['path']}: {note['reason']}", highlight=False, markup=False)
    for copy in report.get("duplicates", []):
        err.print(
            f"[yellow]warning:[/yellow] {escape(copy['path'])} has the same content as "
            f"{escape(copy['same_as'])} (search shows it once)"
        )
    for flagged in report.get("flagged", []):
        err.print(
            f"[yellow]warning:[/yellow] {escape(flagged['path'])}: "
            f"{flagged['passages']} passage(s) "
            "hold text addressed to an AI model, kept as note text and never followed: "
            f"{escape(repr(flagged['examples'][0]))}",
            highlight=False,
        )
    for item in report.get("unsupported", []):
        err.print(f"[yellow]warning:[/yellow] {escape(item['path'])}: {escape(item['warning'])}")
    more = int(report.get("files_unsupported", 0)) - len(report.get("unsupported", []))
    if more > 0:
        err.print(
            f"[yellow]warning:[/yellow] … and {more:,} more files of unsupported types not "
            f"read ({unsupported_summary(report.get('unsupported_types', {}))})",
            highlight=False,
        )


def remove(
    targets: Annotated[
        list[str],
        typer.Argument(
            help="Notes to forget: as shown in citations (notes/a.md, uploads/a.md) or a path; "
            "a folder forgets every note under it.",
            show_default=False,
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object, nothing else.")
    ] = False,
    server: Annotated[
        str | None,
        typer.Option(
            help="Forget them through a running Shiori service at this URL (it owns the store).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Forget notes: delete their passages from the index. The files themselves are left alone
    (an uploaded note's copy on the service is deleted). Works for notes whose files are gone
    and for notes ingested from anywhere.

    Examples: `shiori remove notes/` (the bundled samples) · `shiori remove ~/old/draft.md` ·
    `shiori remove --server http://127.0.0.1:8000 uploads/draft.md`. Exit status 1 when a
    target names no note."""
    if server:
        from shiori.client import ServiceError, ServiceUnreachableError, ShioriClient

        settings = load_settings()
        try:
            with ShioriClient(server, reveal(settings.api_key)) as client:
                report = client.remove_notes(targets)
        except ServiceError as exc:
            fail(exc, ExitStatus.FAILED if exc.status == 404 else ExitStatus.UNAVAILABLE)
        except ServiceUnreachableError as exc:
            fail(exc, ExitStatus.UNAVAILABLE)
    else:
        report = _remove_local(targets)
    if as_json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        for note in report["removed"]:
            err.print(
                f"forgot {note['source']} ({note['chunks']} passages)",
                highlight=False,
                markup=False,
            )
        for target in report["not_found"]:
            err.print(
                f"[yellow]warning:[/yellow] no ingested note is {escape(str(target))}",
                highlight=False,
            )
        err.print(f"{report['files_deleted']} notes, {report['chunks_deleted']} passages removed")
    if report["not_found"]:
        raise typer.Exit(ExitStatus.FAILED)


def _remove_local(targets: list[str]) -> dict[str, Any]:
    from ingest.remove import remove_notes
    from shiori.index import NoteIndex

    settings = load_settings()
    client = open_store_or_exit(settings)
    try:
        if not client.collection_exists(settings.collection):
            return {"removed": [], "not_found": targets, "files_deleted": 0, "chunks_deleted": 0}
        index = NoteIndex(client, settings, dimension=0)  # no vectors are written
        return remove_notes(index, targets, settings.uploads_dir).to_dict()
    finally:
        client.close()


def stats() -> None:
    """How many notes and chunks the index holds."""
    from shiori.index import FILES_SUFFIX

    settings = load_settings()
    client = open_store_or_exit(settings)
    try:
        if not client.collection_exists(settings.collection):
            err.print(f"collection '{settings.collection}' does not exist yet: run `shiori ingest`")
            raise typer.Exit(ExitStatus.FAILED)
        chunks = client.count(settings.collection, exact=True).count
        files = client.count(settings.collection + FILES_SUFFIX, exact=True).count
    finally:
        client.close()
    print(json.dumps({"collection": settings.collection, "files": files, "chunks": chunks}))
