"""`shiori llm …`: the local vLLM server (CPU build) that generates answers."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Annotated

import typer

from runtime.llm import vllm_cpu
from shiori.cli.common import ExitStatus, err, fail, load_settings, say

app = typer.Typer(help="The local vLLM server (CPU) that generates answers.")


@app.command("serve")
def llm_serve(
    log: Annotated[Path | None, typer.Option(help="Write vLLM's own output to this file.")] = None,
) -> None:
    """Set up vLLM's CPU build (once, in its own environment), convert the model (once), serve
    it at SHIORI_LLM_URL as SHIORI_LLM_MODEL, and wait. Ctrl-C stops it.

    Production serves Gemma or Llama with the CUDA vLLM image instead (see deploy/)."""
    settings = load_settings()
    try:
        proc = vllm_cpu.start(settings, say, log)
    except vllm_cpu.LLMServerError as exc:
        fail(exc)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        proc.wait()
        err.print(f"[red]vLLM exited with status {proc.returncode}[/red]")
        raise typer.Exit(ExitStatus.FAILED)
    except KeyboardInterrupt:
        err.print("stopping vLLM…")
        vllm_cpu.stop(proc)


@app.command("setup")
def llm_setup() -> None:
    """Only prepare: create vLLM's CPU environment and convert the model (both once)."""
    settings = load_settings()
    try:
        python = vllm_cpu.ensure_venv(settings, say)
        model = vllm_cpu.ensure_model(settings, python, say)
    except vllm_cpu.LLMServerError as exc:
        fail(exc)
    err.print(f"ready: {settings.vllm_venv} serves {model}")


@app.command("status")
def llm_status() -> None:
    """Say whether an LLM answers at SHIORI_LLM_URL with SHIORI_LLM_MODEL."""
    settings = load_settings()
    ready = vllm_cpu.models_endpoint_ready(settings)
    print(json.dumps({"url": settings.llm_url, "model": settings.llm_model, "ready": ready}))
    if not ready:
        raise typer.Exit(ExitStatus.FAILED)
