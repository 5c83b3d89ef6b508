"""What every command shares: the consoles, exit statuses, the one error helper, settings,
the store, and the one progress bar."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from shiori.config import Settings

if TYPE_CHECKING:
    from shiori.index import StoreEngine

err = Console(stderr=True, soft_wrap=True)  # messages stay whole lines in logs
out = Console(soft_wrap=True)


class ExitStatus(IntEnum):
    """The `shiori` command's exit statuses (0: success)."""

    FAILED = 1  # the work ran and did not succeed (unreadable notes, thresholds not met …)
    USAGE = 2  # bad arguments or configuration
    UNAVAILABLE = 3  # a store, model or service it needs cannot be reached or opened


def fail(message: object, status: ExitStatus = ExitStatus.FAILED) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``status``."""
    # a message carries paths, headings and note text: "[draft]" or "[/INST]" is not markup
    err.print(f"[red]error:[/red] {escape(str(message))}", highlight=False)
    raise typer.Exit(status)


def say(message: str) -> None:
    """A progress line on stderr (not highlighted; printed as written, never as markup)."""
    err.print(message, highlight=False, markup=False)


def load_settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic ValidationError, bad TOML, missing SHIORI_CONFIG file
        fail(f"invalid configuration: {exc}", ExitStatus.USAGE)


def open_store_or_exit(settings: Settings) -> StoreEngine:
    """The store's client, or exit 3 saying why not (locked by another process, unreachable)."""
    from shiori.index import StoreLockedError, StoreUnavailableError, open_client

    try:
        return open_client(settings)
    except (StoreLockedError, StoreUnavailableError) as exc:
        fail(exc, ExitStatus.UNAVAILABLE)


@contextmanager
def llm_running(
    settings: Settings, start: bool, status: ExitStatus = ExitStatus.UNAVAILABLE
) -> Iterator[None]:
    """vLLM (CPU) for the length of a command, when ``start`` and none answers yet
    (`runtime.llm.supervisor.local_llm`, its log in ./vllm.log); exits with ``status`` saying
    why when it cannot be started."""
    from runtime.llm import vllm_cpu
    from runtime.llm.supervisor import local_llm
    from shiori import models as model_registry

    if not start:
        yield
        return
    with ExitStack() as stack:
        try:
            stack.enter_context(local_llm(settings, Path("vllm.log"), say))
        except (vllm_cpu.LLMServerError, model_registry.ModelError) as exc:
            fail(exc, status)
        yield


def progress_bar(*, transient: bool = False, disable: bool = False) -> Progress:
    """The progress bar of long work (ingest, migration, evaluation), on stderr: description,
    bar, done/total, time left."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=transient,
        disable=disable,
    )
