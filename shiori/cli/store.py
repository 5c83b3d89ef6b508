"""`shiori store`: check the store (and repair it), or move it between Qdrant deployments."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr

from shiori.cli.common import ExitStatus, err, fail, load_settings, open_store_or_exit, progress_bar

app = typer.Typer(
    help="Check the index and repair it; move it between Qdrant deployments (an embedded store "
    "to a server or cluster).",
    no_args_is_help=True,
)


def dest_is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


@app.command("migrate")
def migrate(
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="Destination: a Qdrant server URL (http(s)://…:6333), or a directory for an "
            "embedded copy (a backup).",
            show_default=False,
        ),
    ],
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="SHIORI_MIGRATE_API_KEY",
            help="API key of the destination server (better in the environment than on the "
            "command line, where `ps` shows it).",
            show_default=False,
        ),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Points read from the source per request.")
    ] = 256,
    recreate: Annotated[
        bool,
        typer.Option(help="Delete the destination's collections of the same names first."),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object with the counts, nothing else.")
    ] = False,
) -> None:
    """Copy the store named by SHIORI_QDRANT / SHIORI_COLLECTION (the chunks and the file
    records) to another Qdrant: a server, or a directory (an embedded store).

    On a server the collections are created with SHIORI_SHARD_NUMBER, SHIORI_REPLICATION_FACTOR
    and SHIORI_WRITE_CONSISTENCY_FACTOR (not the source's single shard) and get their payload
    indexes. Refuses when the destination already has the collections, unless --recreate. Stop
    anything that writes to the source first (an embedded store allows one process anyway).

    Example: `SHIORI_SHARD_NUMBER=6 SHIORI_REPLICATION_FACTOR=2 SHIORI_MIGRATE_API_KEY=…
    shiori store migrate --to https://qdrant.example:6333`, then point SHIORI_QDRANT there."""
    from shiori.store import MigrationError, collection_names, migrate_store, point_counts

    settings = load_settings()
    if to == settings.qdrant or (
        not dest_is_url(to)
        and not settings.is_remote
        and settings.qdrant != ":memory:"
        and Path(to).expanduser().resolve() == Path(settings.qdrant).expanduser().resolve()
    ):
        fail(f"--to is the source itself ({to})", ExitStatus.USAGE)
    if to == ":memory:":
        fail("--to :memory: would be lost when the command ends", ExitStatus.USAGE)
    dest_settings = settings.model_copy(
        update={"qdrant": to, "qdrant_api_key": SecretStr(api_key) if api_key else None}
    )
    source = open_store_or_exit(settings)
    try:
        dest = open_store_or_exit(dest_settings)
    except typer.Exit:
        source.close()
        raise

    names = collection_names(settings)
    started = time.monotonic()
    try:
        totals = point_counts(source, [n for n in names if source.collection_exists(n)])
        progress = progress_bar(disable=as_json or not err.is_terminal)
        tasks = {n: progress.add_task(n, total=totals.get(n)) for n in names}
        layout = dest.layout
        if not as_json and len(totals) == len(names):
            err.print(
                f"{settings.qdrant} → {to}: "
                + ", ".join(f"'{n}' ({totals.get(n, '?')} points)" for n in names)
                + (f"; layout {layout}" if layout else "")
            )
        with progress:
            report = migrate_store(
                source,
                dest,
                settings,
                dest_settings,
                batch_size=batch_size,
                recreate=recreate,
                progress=lambda name, n: progress.advance(tasks[name], n),
            )
    except MigrationError as exc:
        fail(exc)
    except Exception as exc:  # the server went away, auth, a full disk ...
        fail(f"migration failed: {type(exc).__name__}: {exc}", ExitStatus.UNAVAILABLE)
    finally:
        source.close()
        dest.close()
    seconds = time.monotonic() - started
    result = {"to": to, "points": report.points, "layout": report.layout, "seconds": seconds}
    if as_json:
        print(json.dumps(result))
    else:
        err.print(
            "copied "
            + ", ".join(f"'{n}': {c} points" for n, c in report.points.items())
            + f" in {seconds:.1f} s. Point the service there: SHIORI_QDRANT={to}"
        )


@app.command("check")
def check(
    repair: Annotated[
        bool,
        typer.Option(
            help="Fix what is found: delete leftovers, rebuild file records from whole live "
            "chunks, forget files whose chunks are broken (the next ingest reads them again)."
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object, nothing else.")
    ] = False,
) -> None:
    """Check that the store is what ingest promises: every live chunk has its file record, each
    file shows one whole generation, vectors have the right size (the model's), and no
    invisible chunks are left by an interrupted ingest.

    Exit status 0 when all is well (or all was repaired), 1 when problems remain, 3 when the
    store cannot be opened. Stop ingests first: on a Qdrant server a running one writes
    invisible chunks that --repair would delete.

    Example: `shiori store check` · `shiori store check --repair --json`"""
    from shiori.index import NoteIndex
    from shiori.integrity import check as check_store
    from shiori.integrity import model_dimension

    settings = load_settings()
    client = open_store_or_exit(settings)
    try:
        if not client.collection_exists(settings.collection):
            err.print(f"collection '{settings.collection}' does not exist yet: run `shiori ingest`")
            raise typer.Exit(ExitStatus.FAILED)
        stored = client.collection_params(settings.collection).size("dense")
        index = NoteIndex(client, settings, model_dimension(settings) or stored or 0)
        found = check_store(index, repair=repair)
        after = check_store(index) if found.repaired else found
    finally:
        client.close()
    if as_json:
        result = found.to_dict()
        result["after_repair"] = after.to_dict() if found.repaired else None
        print(json.dumps(result, ensure_ascii=False))
    else:
        where = f"{settings.qdrant} / {settings.collection}"
        err.print(
            f"{where}: {found.files} files, {found.live_chunks} live chunks, {found.points} "
            f"points, {found.dimension}-d vectors",
            highlight=False,
        )
        for p in found.problems:
            fix = f" → {p.repair}" if found.repaired and p.repair else ""
            err.print(f"  {p.kind}: {p.path or '-'}: {p.detail}{fix}", highlight=False)
        if found.ok:
            err.print("[green]ok[/green]: no problems")
        elif found.repaired:
            err.print(
                "[green]repaired[/green]" if after.ok else f"[red]{len(after.problems)} left[/red]"
            )
        else:
            err.print(f"{len(found.problems)} problem(s); `shiori store check --repair` fixes them")
    if not after.ok:
        raise typer.Exit(ExitStatus.FAILED)
