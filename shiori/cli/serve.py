"""`shiori serve`, `shiori up`, `shiori mcp`: the HTTP API, everything at once, MCP."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shiori import models as model_registry
from shiori.cli.common import ExitStatus, err, fail, load_settings, say
from shiori.config import Settings, reveal

if TYPE_CHECKING:
    from service.components import Components


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

    from service import heap
    from service.components import Components
    from shiori.index import StoreLockedError, StoreUnavailableError

    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = load_settings().model_copy(update=overrides)
    heap.limit_arenas(settings.malloc_arenas)  # before the models' threads allocate
    try:
        with err.status("loading the embedding model and the index…", spinner="dots"):
            parts = Components.build(settings)
    except (model_registry.ModelError, StoreLockedError, StoreUnavailableError, ValueError) as exc:
        fail(exc, ExitStatus.UNAVAILABLE)
    try:
        _run_api(settings, parts, log_level)
    except KeyboardInterrupt:
        err.print("stopped")


def _run_api(settings: Settings, parts: Components, log_level: str) -> None:
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
    from runtime.llm import vllm_cpu
    from runtime.llm.supervisor import local_llm
    from service import heap
    from service.components import Components
    from shiori.index import StoreLockedError, StoreUnavailableError

    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = load_settings().model_copy(update=overrides)
    heap.limit_arenas(settings.malloc_arenas)  # before the models' threads allocate
    try:
        with local_llm(settings, llm_log, say) as supervisor:
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
        fail(exc)
    except (StoreLockedError, StoreUnavailableError, ValueError) as exc:
        fail(exc, ExitStatus.UNAVAILABLE)
    except KeyboardInterrupt:
        pass


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
    key = reveal(settings.api_key)
    app_ = build_server(lambda: AsyncShioriClient(url, key))
    if http:
        err.print(f"MCP over streamable HTTP at http://{host}:{port}/mcp; answers from {url}")
        app_.run("streamable-http", host=host, port=port)
    else:
        app_.run("stdio")
