"""`shiori eval …`: run a golden set, adapt JSQuAD, replay a run, compare two runs."""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import ExitStack
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Annotated, Any

import typer
from rich.table import Table

from eval.dataset import BUNDLED, DatasetError, GoldenItem, load, save, select
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
from shiori.config import Settings, reveal

app = typer.Typer(
    help="Measure grounding: retrieval, answers, abstention, hallucination, citations, ragas.",
    no_args_is_help=True,
)


def _default_report() -> Path:
    return Path("reports") / time.strftime("%Y%m%d-%H%M%S")


async def _run(
    settings: Settings,
    items: list[GoldenItem],
    report: Path,
    server: str | None,
    judge_n: int,
    ingest: list[Path],
    answers: bool,
) -> list[dict[str, Any]]:
    import logging

    from eval.judge import Judge
    from eval.runner import Backend, HttpBackend, LocalBackend, evaluate
    from shiori.embedding import Embedder

    for noisy in ("httpx", "openai", "instructor", "ragas"):  # one line per HTTP call otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    backend: Backend
    parts = None
    embedder = None
    if server:
        backend = HttpBackend(server, reveal(settings.api_key))
    else:
        from runtime.parts import Runtime

        with err.status("loading the embedding model and the index…"):
            parts = Runtime.build(settings)
        embedder = parts.embedder
        if ingest:
            with err.status(f"ingesting {', '.join(map(str, ingest))}…"):
                done = parts.ingestor.run(ingest)
            err.print(
                f"ingest: {done.files_new} new, {done.files_updated} updated, "
                f"{done.files_unchanged} unchanged"
            )
        backend = LocalBackend(parts)
    judge = None
    judge_ids: set[str] = set()
    if judge_n and answers:
        embedder = embedder or Embedder(settings)
        secret = settings.judge_api_key or settings.llm_api_key
        judge = Judge(
            settings.judge_url or settings.llm_url,
            settings.judge_model or settings.llm_model,
            reveal(secret),
            embedder,
            settings.judge_timeout_s,
        )
        judge_ids = {i.id for i in items[:judge_n]}
        err.print(f"ragas on {len(judge_ids)} question(s): {judge.label}", highlight=False)
    progress = progress_bar(transient=True)
    task = progress.add_task("evaluating", total=len(items))
    try:
        with progress:
            records = await evaluate(
                items,
                backend,
                report / "results.jsonl",
                judge,
                judge_ids if judge else None,
                lambda item, rec: progress.advance(task),
                answers=answers,
            )
    finally:
        if judge is not None:
            await judge.aclose()
        if parts is not None:
            await parts.aclose()
    return records


def _finish(
    records: list[dict[str, Any]], report: Path, thresholds: Path | None, judge_label: str | None
) -> None:
    from eval import report as rep
    from eval.runner import summarise

    summary = summarise(records, judge_label)
    failures = rep.check(summary, rep.load_thresholds(thresholds)) if thresholds else []
    rep.write(report, summary, records, failures)
    table = Table(title=f"{summary['questions']} questions → {report}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for path, (label, _) in rep.HEADLINES.items():
        value = rep.lookup(summary, path)
        if value == value:  # measured in this run
            table.add_row(label, f"{value:.3f}")
    out.print(table)
    h = summary["hallucination"]
    if summary["answered_questions"]:
        counts = summary["selective"]["counts"]
        out.print(
            f"hallucination {h['rate']:.3f} = ({h['wrong_answers']} wrong + "
            f"{h['answered_when_unanswerable']} answered when unanswerable + "
            f"{h['unfaithful_answers']} judged unfaithful of {h['judged_answers']} judged) / "
            f"{h['n_items']}; outcomes: " + ", ".join(f"{k} {v}" for k, v in counts.items()),
            highlight=False,
        )
    out.print(f"report: {report / 'report.html'}")
    if failures:
        for f in failures:
            err.print(f"[red]below threshold:[/red] {f}")
        raise typer.Exit(ExitStatus.FAILED)


Report = Annotated[
    Path | None,
    typer.Option(help="Output folder (default reports/<time>); an existing one is resumed."),
]
Limit = Annotated[int | None, typer.Option(help="Only the first N questions (after --sample).")]
Sample = Annotated[int | None, typer.Option(help="A random sample of N questions (seeded).")]
Judge = Annotated[
    int,
    typer.Option(
        help="Score the first N questions with ragas (slow: ~9 judge calls each); 0 = no judge."
    ),
]


StartLLM = Annotated[
    bool, typer.Option(help="Start vLLM (CPU) for the run unless an LLM answers already.")
]


@app.command()
def run(
    dataset: Annotated[Path, typer.Option(help="Golden set (JSONL).")] = BUNDLED,
    report: Report = None,
    limit: Limit = None,
    sample: Sample = None,
    seed: int = 0,
    judge: Judge = 0,
    server: Annotated[str | None, typer.Option(help="Ask a running service instead.")] = None,
    ingest: Annotated[
        list[Path] | None,
        typer.Option(
            help="Ingest these into a fresh temporary store and ask over it alone (in-process "
            "runs; the configured store is left alone). Without it: the configured store."
        ),
    ] = None,
    distractors: Annotated[
        int,
        typer.Option(
            help="Also ingest N paragraphs of --distractor-data as extra notes (with --ingest): "
            "the golden set asked over a notebook that has grown."
        ),
    ] = 0,
    distractor_data: Annotated[
        Path | None,
        typer.Option(help="SQuAD-format JSON the distractors come from (e.g. JSQuAD valid)."),
    ] = None,
    thresholds: Annotated[
        Path | None, typer.Option(help="Fail (exit 1) below these (TOML).")
    ] = None,
    retrieval_only: Annotated[bool, typer.Option(help="Skip the LLM: retrieval metrics.")] = False,
    start_llm: StartLLM = False,
) -> None:
    """Ask every question of a golden set, score the answers, write results.jsonl, summary.json
    and report.html. Resumable: run again with the same --report to finish an interrupted run.

    Examples:

      shiori eval run --ingest notes/ --judge 5 --report reports/notes

      shiori eval run --ingest notes/ --distractors 300 --distractor-data valid-v1.3.json

      shiori eval run --dataset ../shared/cases/grounding/questions.jsonl \\
          --ingest ../shared/cases/grounding/notes --report reports/grounding
    """
    settings = load_settings()
    try:
        items = select(load(dataset), limit, sample, seed)
    except DatasetError as exc:
        fail(str(exc), ExitStatus.USAGE)
    sources = list(ingest or [])
    if distractors:
        from eval.jsquad import NotEnoughQuestionsError, write_distractors

        if not ingest or server:
            fail(
                "--distractors needs --ingest (they go into the run's own temporary store)",
                ExitStatus.USAGE,
            )
        if distractor_data is None or not distractor_data.is_file():
            fail(
                "--distractors needs --distractor-data: a SQuAD-format JSON file", ExitStatus.USAGE
            )
        try:
            sources.append(write_distractors(distractor_data, _cache(settings), distractors, seed))
        except NotEnoughQuestionsError as exc:
            fail(str(exc), ExitStatus.USAGE)
    report = report or _default_report()
    with ExitStack() as stack:
        if ingest and not server:
            # measured on exactly these notes: whatever else the configured store holds (other
            # notes, the same notes ingested from another folder) would change the results
            scratch = stack.enter_context(TemporaryDirectory(prefix="shiori-eval-"))
            settings = settings.model_copy(update={"qdrant": scratch})
        stack.enter_context(
            llm_running(settings, start_llm and not retrieval_only, ExitStatus.FAILED)
        )
        records = asyncio.run(
            _run(settings, items, report, server, judge, sources, answers=not retrieval_only)
        )
    label = _judge_label(settings) if judge and not retrieval_only else None
    _finish(records, report, thresholds, label)


def _cache(settings: Settings) -> Path:
    """Where evaluation corpora and their stores are kept between runs."""
    return settings.models_dir.parent


def _judge_label(settings: Settings) -> str:
    from eval.judge import judge_label

    return judge_label(settings.judge_model or settings.llm_model)


@app.command()
def jsquad(
    path: Annotated[Path, typer.Argument(help="A SQuAD-format JSON file (e.g. JSQuAD valid).")],
    report: Report = None,
    limit: Limit = None,
    sample: Sample = None,
    seed: int = 0,
    judge: Judge = 0,
    near_miss: Annotated[
        bool,
        typer.Option(
            help="Answer mode over near misses: whole articles as notes, and for half of the "
            "questions the paragraph that answers them left out (--articles, --questions)."
        ),
    ] = False,
    articles: Annotated[int, typer.Option(help="--near-miss: articles taken as notes.")] = 24,
    questions: Annotated[
        int, typer.Option(help="--near-miss: questions asked, half of them unanswerable.")
    ] = 120,
    collection: Annotated[str, typer.Option(help="Collection for the corpus.")] = "jsquad",
    retrieval_only: Annotated[bool, typer.Option(help="Skip the LLM: retrieval metrics.")] = False,
    thresholds: Annotated[Path | None, typer.Option(help="Fail below these (TOML).")] = None,
    start_llm: StartLLM = False,
) -> None:
    """Evaluate on SQuAD-format data. By default every paragraph is a note (written once to
    the cache, ingested into its own collection) and every question a golden item.

    With --near-miss, a seeded sample of whole articles becomes the notes and half of the
    questions lose the paragraph that answers them (kept as unanswerable only when no other
    paragraph holds the answer), so the rest of the article is a near miss: the honest test of
    abstention. Its corpus and store are cached per argument set; the run resumes.

    Examples:

      shiori eval jsquad valid-v1.3.json --retrieval-only --sample 1000

      shiori eval jsquad valid-v1.3.json --near-miss --start-llm --report reports/near-miss
    """
    from eval.jsquad import NotEnoughQuestionsError, build, build_near_miss, corpus_dir_for

    if not path.is_file():
        fail(f"{path}: no such file", ExitStatus.USAGE)
    settings = load_settings()
    cache = _cache(settings)
    report = report or _default_report()
    if near_miss:
        try:
            corpus, items, counts = build_near_miss(path, cache, articles, questions, seed)
        except NotEnoughQuestionsError as exc:
            fail(str(exc), ExitStatus.USAGE)
        # a store of its own per corpus: resuming (or re-running) embeds nothing again
        store = cache / "eval-stores" / corpus.name
        settings = settings.model_copy(update={"qdrant": str(store), "collection": "notes"})
        err.print(f"near-miss set: {counts}", highlight=False)
    else:
        settings = settings.model_copy(update={"collection": collection})
        corpus = corpus_dir_for(path, cache)
        items = build(path, corpus)
    save(items, report / "dataset.jsonl")
    chosen = select(items, limit, sample, seed)
    err.print(
        f"{len(items)} questions over {len(list(corpus.iterdir()))} paragraphs; "
        f"evaluating {len(chosen)}",
        highlight=False,
    )
    with llm_running(settings, start_llm and not retrieval_only, ExitStatus.FAILED):
        records = asyncio.run(
            _run(settings, chosen, report, None, judge, [corpus], answers=not retrieval_only)
        )
    _finish(records, report, thresholds, _judge_label(settings) if judge else None)


@app.command()
def replay(
    report: Annotated[Path, typer.Argument(help="Report folder of an earlier run.")],
    out: Annotated[Path, typer.Option(help="Folder for the replayed run's report.")],
    dataset: Annotated[
        Path | None,
        typer.Option(help="Golden set whose items (by id) replace the stored ones (new checks)."),
    ] = None,
    thresholds: Annotated[Path | None, typer.Option(help="Fail below these (TOML).")] = None,
) -> None:
    """Judge a run's stored model outputs again with today's checks and settings, without
    asking the model: what a change to the verification would have done to that run.
    Questions refused before generation stay as they were.

    Example: `shiori eval replay reports/notes --out reports/notes-replay`"""
    from eval.replay import replay as rejudge
    from eval.runner import read_results
    from rag.verdict import Verifier
    from shiori.embedding import Embedder
    from shiori.grounding import GroundingVerifier

    records = read_results(report / "results.jsonl")
    if not records:
        fail(f"{report / 'results.jsonl'}: no results to replay", ExitStatus.USAGE)
    items: dict[str, GoldenItem] = {}
    if dataset is not None:
        try:
            items = {i.id: i for i in load(dataset)}
        except DatasetError as exc:
            fail(str(exc), ExitStatus.USAGE)
    settings = load_settings()
    with err.status("loading the embedding model…"):
        verifier = Verifier.from_settings(settings, Embedder(settings), GroundingVerifier(settings))
    replayed = rejudge(records, items, verifier)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "results.jsonl").open("w", encoding="utf-8") as f:
        for record in replayed:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    _finish(replayed, out, thresholds, None)


@app.command()
def compare(
    a: Annotated[Path, typer.Argument(help="Report folder (or summary.json) of the first run.")],
    b: Annotated[Path, typer.Argument(help="…and of the second run.")],
) -> None:
    """What got better or worse from run A to run B (headline metrics)."""
    from eval.report import compare as diff

    def summary(p: Path) -> dict[str, Any]:
        f = p / "summary.json" if p.is_dir() else p
        if not f.is_file():
            fail(f"{f}: no summary.json", ExitStatus.USAGE)
        data: dict[str, Any] = json.loads(f.read_text(encoding="utf-8"))
        return data

    table = Table(title=f"{a} → {b}")
    for col in ("metric", "A", "B", ""):
        table.add_column(col)
    colour = {"better": "green", "worse": "red"}
    for label, x, y, verdict in diff(summary(a), summary(b)):
        style = colour.get(verdict, "")
        table.add_row(label, f"{x:.3f}", f"{y:.3f}", f"[{style}]{verdict}[/]" if style else verdict)
    out.print(table)


@app.command()
def generate(
    paths: Annotated[
        list[Path], typer.Argument(help="Notes or folders to draw questions from (ingested first).")
    ],
    out_file: Annotated[Path, typer.Option("--out", help="The golden set to write (JSONL).")],
    n: Annotated[int, typer.Option("--n", "-n", min=1, help="How many items.")] = 50,
    heading: Annotated[
        str | None, typer.Option(help="Only sections whose heading path contains this.")
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check/--no-check",
            help="Keep only items Shiori already answers (needs the LLM). Off by default: a "
            "set filtered by the system it measures would flatter it.",
        ),
    ] = False,
    start_llm: StartLLM = False,
) -> None:
    """Your notes as your own golden set: answerable questions drawn from the notes (as
    `shiori quiz` draws them), each with `must_contain` taken from its evidence sentence and
    its note as `reference_sources`. Then `shiori eval run --dataset FILE` measures Shiori on
    your own notes. (Unanswerable near-miss items are not generated yet.)

    Example:

      shiori eval generate ~/my-notes --n 80 --out mine.jsonl

      shiori eval run --dataset mine.jsonl --start-llm
    """
    from eval.generate import golden_items
    from shiori.cli.study import run_quiz

    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        fail(f"no such file or folder: {', '.join(missing)}", ExitStatus.USAGE)
    result = run_quiz(load_settings(), paths, n, heading, check, True, start_llm)
    items = golden_items(result.items)
    if not items:  # an empty set would only fail later, in `eval run`, with less to say
        fail(
            f"none of the {result.candidates} questions drawn was kept "
            "(Shiori answered none from its evidence); nothing written",
            ExitStatus.FAILED,
        )
    save(items, out_file)
    say(f"{len(items)} answerable items ({result.candidates} drawn) → {out_file}")
