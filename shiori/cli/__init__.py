"""The `shiori` command: the entry point at the top of the layers.

Nothing imports this package; it imports the jobs below it (`service`, `eval`, `study`, `runtime`,
`rag`, `ingest` and the core) and wires them into subcommands, one module per command group:
`notes` (ingest, remove, stats), `models` (models …, config), `serve` (serve, up, mcp), `ask`,
`llm` (llm …), `evaluate` (eval …), `store` (store …), `study` (quiz). What they share
(consoles, exit statuses, the error helper, the progress bar) is in `common`.
"""

from __future__ import annotations

import typer

from shiori.cli import ask, evaluate, llm, models, notes, serve, store, study

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
app.command()(notes.ingest)
app.add_typer(models.app, name="models")
app.add_typer(llm.app, name="llm")
app.command()(models.config)
app.command()(notes.remove)
app.command()(notes.stats)
app.command()(serve.serve)
app.command()(serve.up)
app.command()(ask.ask)
app.command()(study.quiz)
app.command()(serve.mcp)
app.add_typer(evaluate.app, name="eval")
app.add_typer(store.app, name="store")


def main() -> None:  # pragma: no cover - console entry
    app()
