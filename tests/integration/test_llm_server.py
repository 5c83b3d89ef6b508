"""`shiori llm serve`'s launcher with the real vLLM CPU build and the real converted model.

The server itself is the session fixture `llm_settings` (started by `vllm_cpu.start`, stopped
and checked gone by `vllm_cpu.stop`); these tests talk to it the way Shiori does."""

from __future__ import annotations

import json
import urllib.request

import pytest

from runtime.llm import vllm_cpu
from shiori.config import Settings
from tests.integration.conftest import LLM_KEY

pytestmark = pytest.mark.slow


def test_served_model_answers_and_requires_its_key(llm_settings: Settings) -> None:
    assert vllm_cpu.models_endpoint_ready(llm_settings)
    # --api-key guards /v1/*: without it the server refuses
    assert not vllm_cpu.models_endpoint_ready(Settings(llm_url=llm_settings.llm_url))
    body = {
        "model": llm_settings.llm_model,
        "messages": [
            {"role": "system", "content": "Answer with one word, from the source only."},
            {"role": "user", "content": "Source: Gemma は Google のモデルです。\n"
             "Question: Gemma を開発した会社は？"},
        ],
        "max_tokens": 16,
        "temperature": 0,
    }  # fmt: skip
    request = urllib.request.Request(
        f"{llm_settings.llm_url}/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {LLM_KEY}"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        answer = json.load(response)["choices"][0]["message"]["content"]
    assert "google" in answer.lower()


def test_second_server_on_a_busy_url_is_refused(llm_settings: Settings) -> None:
    with pytest.raises(vllm_cpu.LLMServerError, match="already answers"):
        vllm_cpu.start(llm_settings, report=lambda m: None)
