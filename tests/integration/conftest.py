"""Real parts for the service tests: the bundled notes in embedded Qdrant, a real vLLM server."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest.pipeline import Ingestor
from runtime.llm import vllm_cpu
from runtime.llm.guard import session_members
from runtime.serve_process import free_port, serving
from shiori.config import Settings
from shiori.embedding import Embedder
from shiori.index import NoteIndex, open_client
from tests.conftest import NOTES, REPO

LLM_KEY = "test-llm-key"
SERVED_KEY = "served-key"


def settings_for(index: NoteIndex, llm: Settings, **extra: Any) -> Settings:
    """Service settings over a test index and a test LLM."""
    return Settings(
        qdrant=index.settings.qdrant,
        collection=index.settings.collection,
        llm_url=llm.llm_url,
        llm_api_key=llm.llm_api_key,
        **extra,
    )


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.Runner]:
    """One event loop per module, as in a server: the shared LLM client's pooled connections
    belong to the loop that opened them ("Event loop is closed" otherwise)."""
    with asyncio.Runner() as runner:
        yield runner


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
    assert session_members(proc.pid) == []  # its EngineCore and workers went with it


# --- `shiori serve` as a real process (the contract and limits tests share it) ---------


@dataclass
class Served:
    url: str
    notes: Path
    uploads: Path
    log: Path

    def client(self, key: str | None = SERVED_KEY) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=300)


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory, llm_settings: Settings) -> Iterator[Served]:
    """`shiori serve` over three of the bundled notes, ingested through its API."""
    root = tmp_path_factory.mktemp("contract")
    notes = root / "notes"
    notes.mkdir()
    for name in ("05-gemma.md", "09-lora.md", "10-qlora-en.md"):
        shutil.copy(NOTES / name, notes / name)
    env = {
        "SHIORI_QDRANT": str(root / "store"),
        "SHIORI_NOTES_DIR": str(notes),
        "SHIORI_UPLOADS_DIR": str(root / "uploads"),
        # schemathesis posts feedback: into this run's folder, not the user's own regression set
        "SHIORI_FEEDBACK_PATH": str(root / "feedback.jsonl"),
        "SHIORI_LLM_URL": llm_settings.llm_url,
        "SHIORI_LLM_API_KEY": LLM_KEY,
        "SHIORI_LLM_MAX_TOKENS": "24",
        "SHIORI_API_KEYS": SERVED_KEY,
        "SHIORI_MAX_UPLOAD_MB": "1",
        "PYTHONPATH": str(REPO),  # this checkout's code, run from another working directory
    }
    log = root / "serve.log"
    with serving(env, log=log, cwd=root, ready="/healthz", timeout_s=240, grace_s=60) as server:
        svc = Served(server.url, notes, root / "uploads", log)
        with svc.client() as http:
            r = http.post("/v1/ingest", json={"all": True})
            assert r.status_code == 200 and r.json()["files_new"] == 3, r.text
        yield svc


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that start a vLLM of their own (`shiori up`: tests/integration/test_supervision.py)
    run first, before the session's vLLM starts: two vLLM servers at once do not fit in this
    machine's memory beside the embedding models."""
    own_llm = [i for i in items if i.get_closest_marker("own_llm")]
    items[:] = own_llm + [i for i in items if not i.get_closest_marker("own_llm")]
