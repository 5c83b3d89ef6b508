"""`shiori quiz`: questions drawn from your notes, each with its evidence, checked by asking
them back; as a list, JSON, an Anki deck or a TSV/CSV table."""

from __future__ import annotations

import asyncio
import json
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shiori import models as model_registry
from shiori.cli.common import (
    ExitStatus,
    err,
    fail,
    llm_running,
    load_settings,
    out,
    progress_bar,
    say,
)
from shiori.config import Settings

if TYPE_CHECKING:
    from study.roundtrip import Quiz


def quiz(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Notes or folders to draw questions from (ingested first)."),
    ],
    n: Annotated[int, typer.Option("--n", "-n", min=1, help="How many questions to keep.")] = 10,
    heading: Annotated[
        str | None,
        typer.Option(help="Only sections whose heading path contains this (case and width aside)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the items, their checks and counts as JSON.")
    ] = False,
    anki: Annotated[
        Path | None,
        typer.Option(
            help="Also write an Anki deck (.apkg), deck 'Shiori::<file name>'; importing it "
            "again updates the cards."
        ),
    ] = None,
    tsv: Annotated[
        Path | None,
        typer.Option(help="Also write a table: tab-separated (.tsv), or comma-separated (.csv)."),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check/--no-check",
            help="Ask each question back through Shiori and keep only those it answers from "
            "their evidence (needs the LLM). --no-check: the first N drawn, unchecked.",
        ),
    ] = True,
    ingest: Annotated[
        bool,
        typer.Option(
            "--ingest/--no-ingest",
            help="Ingest PATHs into the store first (unchanged notes cost a hash).",
        ),
    ] = True,
    start_llm: Annotated[
        bool, typer.Option(help="Start vLLM (CPU) for the run unless an LLM answers already.")
    ] = False,
) -> None:
    """Quiz yourself on your notes: question–answer pairs drawn from the notes, each with its
    evidence sentence (note, heading path, lines), in the note's language.

    Questions come from definitions (「XとはYである」, "X is a Y", "X: Y"), numbers and dates,
    names (「XはYが提案した」, "proposed by"), contrasts ("A uses X while B uses Y") and table
    cells, spread over the notes and their headings. Each is then asked back through Shiori's
    own answer path over the whole store and kept only if the answer is not a refusal, contains
    the expected answer and cites the evidence's note and lines (about 11 s a question, 17 s
    a kept one, on a 2-core CPU; the item says how it was checked). Checking needs the LLM:
    a running `shiori llm serve`, or --start-llm. The store must not be held by a running
    `shiori serve` (stop it, or quiz with its store closed).

    Examples:

      shiori quiz notes/ --n 20 --start-llm

      shiori quiz notes/05-gemma.md --heading 公開情報 --anki gemma.apkg --start-llm

      shiori quiz ~/my-notes --n 50 --tsv cards.tsv --start-llm

      shiori quiz notes/ --no-check --json     # drawn only: no LLM needed
    """
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        fail(f"no such file or folder: {', '.join(missing)}", ExitStatus.USAGE)
    result = run_quiz(load_settings(), paths, n, heading, check, ingest, start_llm, as_json)
    _write(result, as_json, anki, tsv)
    if not result.items:
        raise typer.Exit(ExitStatus.FAILED)


def run_quiz(
    settings: Settings,
    paths: list[Path],
    n: int,
    heading: str | None,
    check: bool,
    ingest: bool,
    start_llm: bool,
    quiet: bool = False,
) -> Quiz:
    """Open the store and the models, ingest ``paths`` (with ``ingest``), draw candidates and,
    with ``check``, ask them back until ``n`` are kept (vLLM started for it with
    ``start_llm``). Exits with a message when a store, model or the LLM is unavailable, or
    when nothing could be drawn (`shiori eval generate` shares it)."""
    from rag.answer import LLMUnavailableError
    from shiori.index import StoreLockedError, StoreUnavailableError

    with ExitStack() as stack:
        if check:
            stack.enter_context(llm_running(settings, start_llm))
        try:
            return asyncio.run(_quiz(settings, paths, n, heading, check, ingest, quiet))
        except (model_registry.ModelError, StoreLockedError, StoreUnavailableError) as exc:
            fail(exc, ExitStatus.UNAVAILABLE)
        except LLMUnavailableError as exc:
            fail(
                f"{exc}. Start it with `shiori llm serve`, pass --start-llm, or --no-check.",
                ExitStatus.UNAVAILABLE,
            )


async def _quiz(
    settings: Settings,
    paths: list[Path],
    n: int,
    heading: str | None,
    check: bool,
    ingest: bool,
    quiet: bool,
) -> Quiz:
    from runtime.parts import Runtime
    from study.extract import draw
    from study.roundtrip import quiz as run_quiz

    with err.status("loading the embedding model and the index…", spinner="dots"):
        parts = Runtime.build(settings)
    try:
        if ingest:
            with err.status(f"ingesting {', '.join(map(str, paths))}…", spinner="dots"):
                done = parts.ingestor.run(paths)
            say(
                f"ingest: {done.files_new} new, {done.files_updated} updated, "
                f"{done.files_unchanged} unchanged"
            )
        drawn = draw(parts.index, paths, heading, None if check else n)
        if not drawn:
            where = f" under a heading containing {heading!r}" if heading else ""
            fail(
                f"no questions could be drawn from {', '.join(map(str, paths))}{where} "
                "(are they ingested? `shiori ingest PATH`)",
                ExitStatus.FAILED,
            )
        if not check:
            return await run_quiz(None, drawn, n)
        say(f"{len(drawn)} candidate questions; asking them back until {n} are kept…")
        progress = progress_bar(transient=True, disable=quiet and not err.is_terminal)
        task = progress.add_task(f"checking (kept 0 of {n})", total=len(drawn))
        kept = 0

        def advance(item: Any) -> None:
            nonlocal kept
            kept += bool(item.check and item.check.kept)
            progress.update(task, advance=1, description=f"checking (kept {kept} of {n})")

        with progress:
            return await run_quiz(parts.answerer, drawn, n, advance)
    finally:
        await parts.aclose()


def _write(result: Quiz, as_json: bool, anki: Path | None, tsv: Path | None) -> None:
    from study.deck import write_anki, write_table

    if anki is not None:
        write_anki(result.items, anki, name=f"Shiori::{anki.stem}")  # a subdeck per file
        say(f"Anki deck: {anki} ({len(result.items)} cards)")
    if tsv is not None:
        write_table(result.items, tsv)
        say(f"table: {tsv} ({len(result.items)} rows)")
    if as_json:
        body: dict[str, Any] = result.to_json()
        print(json.dumps(body, ensure_ascii=False, indent=2))
        return
    for k, item in enumerate(result.items, 1):
        out.print(f"{k}. {item.question}", highlight=False, markup=False, style="bold")
        out.print(f"   {item.answer}", highlight=False, markup=False)
        out.print(f"   “{item.evidence}”", highlight=False, markup=False, style="dim")
        out.print(f"   {item.citation}", highlight=False, markup=False, style="dim")
    if result.checked:
        per_item = result.seconds / len(result.items) if result.items else float("nan")
        say(
            f"kept {len(result.items)} of {len(result.checked)} asked back "
            f"({result.candidates} drawn) in {result.seconds:.0f} s ({per_item:.1f} s a kept item)"
        )
