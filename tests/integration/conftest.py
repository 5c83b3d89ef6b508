"""Real parts for the service tests: the bundled notes in embedded Qdrant, a real vLLM server."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.pipeline import Ingestor
from service.llm import vllm_cpu
from shiori.config import Settings
from shiori.embedding import Embedder
from shiori.index import NoteIndex, open_client
from tests.conftest import NOTES

LLM_KEY = "test-llm-key"


def settings_for(index: NoteIndex, llm: Settings, **extra: Any) -> Settings:
    """Service settings over a test index and a test LLM."""
    return Settings(
        qdrant=index.settings.qdrant,
        collection=index.settings.collection,
        llm_url=llm.llm_url,
        llm_api_key=llm.llm_api_key,
        **extra,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def notes_index(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
) -> Iterator[NoteIndex]:
    """The bundled notes ingested once per session into an embedded store."""
    store = tmp_path_factory.mktemp("notes-store")
    settings = Settings(qdrant=str(store), collection="notes")
    index = NoteIndex(open_client(settings), settings, embedder.dimension)
    index.ensure_collections()
    Ingestor(settings, index, embedder).run([NOTES])
    yield index
    index.client.close()


@pytest.fixture(scope="session")
def llm_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A real vLLM (CPU build, default model, API key on) on a free port for the session; its
    shutdown is checked too. To iterate faster, SHIORI_TEST_LLM_URL names one already running
    (`SHIORI_LLM_API_KEY=test-llm-key shiori llm serve`) and it is used as is."""
    running = os.environ.get("SHIORI_TEST_LLM_URL")
    if running:
        yield Settings(llm_url=running, llm_api_key=LLM_KEY)
        return
    settings = Settings(llm_url=f"http://127.0.0.1:{free_port()}/v1", llm_api_key=LLM_KEY)
    log = Path(tmp_path_factory.mktemp("vllm")) / "vllm.log"
    proc = vllm_cpu.start(settings, report=lambda m: None, log=log)
    try:
        yield settings
    finally:
        vllm_cpu.stop(proc)
    assert proc.returncode is not None
    assert not vllm_cpu.models_endpoint_ready(settings)
