"""`shiori ask`: a question to the running service, or answered in this process."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape

from rag.body import line_span, shown_passages, supported_evidence
from shiori import models as model_registry
from shiori.cli.common import ExitStatus, err, fail, load_settings, out
from shiori.config import Settings, reveal


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
    body: dict[str, Any] | None = None
    if not local:
        try:
            with ShioriClient(url, reveal(settings.api_key)) as client:
                body = _ask_remote(client, question, options, as_json)
        except ServiceUnreachableError:
            if server:
                fail(f"no Shiori service answers at {url}", ExitStatus.UNAVAILABLE)
            err.print(
                f"no service at {url}; answering in this process…", highlight=False, markup=False
            )
        except ServiceError as exc:
            fail(exc, ExitStatus.UNAVAILABLE if exc.status >= 500 else ExitStatus.USAGE)
    if body is None:
        body = asyncio.run(_ask_local(settings, question, options))
        if not as_json:
            out.print(body["answer"], highlight=False, markup=False)
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
            out.print(body["answer"], highlight=False, markup=False)
        return body
    streamed = ""
    for name, data in client.ask_stream(question, **options):
        if name == "delta":
            streamed += data["text"]
            out.print(data["text"], end="", highlight=False, soft_wrap=True, markup=False)
        elif name == "error":
            from shiori.client import ServiceError

            raise ServiceError(503, data["error"]["type"], data["error"]["message"])
        elif name == "final":
            out.print()
            if data["answer"].strip() != streamed.strip():
                out.print(f"[bold]final answer:[/bold] {escape(data['answer'])}", highlight=False)
            return data
    raise typer.Exit(ExitStatus.UNAVAILABLE)


async def _ask_local(settings: Settings, question: str, options: dict[str, Any]) -> dict[str, Any]:
    from rag.answer import LLMUnavailableError
    from runtime.parts import Runtime
    from service.api.schemas import FiltersIn
    from shiori.index import StoreLockedError, StoreUnavailableError

    try:
        with err.status("loading the embedding model and the index…", spinner="dots"):
            parts = Runtime.build(settings)
    except (model_registry.ModelError, StoreLockedError, StoreUnavailableError) as exc:
        fail(exc, ExitStatus.UNAVAILABLE)
    try:
        flt = FiltersIn(**options["filters"]).to_filters() if "filters" in options else None
        answer = await parts.answerer.ask(question, options.get("top_k"), flt)
    except LLMUnavailableError as exc:
        fail(f"{exc}. Start it with `shiori llm serve` (or `make run`).", ExitStatus.UNAVAILABLE)
    finally:
        await parts.aclose()
    return answer.to_json()


def _print_sources(body: dict[str, Any]) -> None:
    listed = shown_passages(body)
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
    evidence = supported_evidence(body)
    if evidence:
        out.print("\n[bold]Evidence[/bold]")
    for e in {(e["n"], tuple(e["lines"]), e["text"]): e for e in evidence}.values():
        where = line_span(*e["lines"])
        out.print(
            f"  [{e['n']}] {e['source']}:{where}  “{e['text'].strip()}”",
            highlight=False,
            markup=False,
        )
    for sentence in body.get("unsupported", []) if not body["abstained"] else []:
        out.print(
            f"[yellow]not supported by its source:[/yellow] {escape(sentence)}", highlight=False
        )
