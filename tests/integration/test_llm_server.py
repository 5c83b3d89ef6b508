"""`shiori llm serve`'s launcher with the real vLLM CPU build and the real converted model."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path

import pytest

from service.llm import vllm_cpu
from shiori.config import Settings

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_vllm_starts_answers_and_stops(tmp_path: Path) -> None:
    port = free_port()
    settings = Settings(llm_url=f"http://127.0.0.1:{port}/v1", llm_api_key="test-key")
    log = tmp_path / "vllm.log"
    proc = vllm_cpu.start(settings, report=lambda m: None, log=log)
    try:
        assert vllm_cpu.models_endpoint_ready(settings)
        # --api-key guards /v1/*: without it the server refuses
        unauthenticated = Settings(llm_url=settings.llm_url)
        assert not vllm_cpu.models_endpoint_ready(unauthenticated)
        body = {
            "model": settings.llm_model,
            "messages": [
                {"role": "system", "content": "Answer with one word, from the source only."},
                {"role": "user", "content": "Source: Gemma は Google のモデルです。\n"
                 "Question: Gemma を開発した会社は？"},
            ],
            "max_tokens": 16,
            "temperature": 0,
        }  # fmt: skip
        request = urllib.request.Request(
            f"{settings.llm_url}/chat/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": "Bearer test-key"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.load(response)["choices"][0]["message"]["content"]
        assert "google" in answer.lower()
    finally:
        vllm_cpu.stop(proc)
    assert proc.returncode is not None
    assert not vllm_cpu.models_endpoint_ready(settings)
