"""`shiori llm setup` serves a quantized checkpoint made once and checked afterwards: the
quantizer runs only when no stamped checkpoint exists, its weights' sha256 is recorded, and a
checkpoint whose weights changed is refused. The quantizer and its environment are doubles
here; the real ones run in `make test` through the session's vLLM (tests/integration)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from runtime.llm import vllm_cpu
from shiori.config import Settings
from shiori.models import sha256_of


@pytest.fixture
def bf16(tmp_path: Path) -> Path:
    model = tmp_path / "models" / "qwen"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    return model


def fake_quantizer(monkeypatch: pytest.MonkeyPatch, calls: list[list[str]]) -> None:
    monkeypatch.setattr(vllm_cpu, "ensure_quantize_venv", lambda settings, report: Path("py"))

    def run(cmd: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        out = Path(cmd[3])
        out.mkdir()
        (out / "model.safetensors").write_bytes(b"int8 weights")
        (out / vllm_cpu.QUANT_STAMP).write_text(json.dumps({"scheme": cmd[-1]}))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(vllm_cpu.subprocess, "run", run)


def test_quantized_once_recorded_and_checked(
    bf16: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []
    fake_quantizer(monkeypatch, calls)
    settings = Settings(llm_quantization="w8a8", quantize_venv=tmp_path / "venv")
    out = vllm_cpu.ensure_quantized(settings, bf16, report=lambda m: None)
    assert out == bf16.with_name("qwen-w8a8") and calls[0][-2:] == ["--scheme", "w8a8"]
    stamp = json.loads((out / vllm_cpu.QUANT_STAMP).read_text())
    assert stamp["sha256"]["model.safetensors"] == sha256_of(out / "model.safetensors")
    assert vllm_cpu.ensure_quantized(settings, bf16, report=lambda m: None) == out
    assert len(calls) == 1  # made once
    (out / "model.safetensors").write_bytes(b"something else")
    with pytest.raises(vllm_cpu.LLMServerError, match="does not match the sha256"):
        vllm_cpu.ensure_quantized(settings, bf16, report=lambda m: None)


def test_a_failed_quantization_says_why(
    bf16: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vllm_cpu, "ensure_quantize_venv", lambda settings, report: Path("py"))
    monkeypatch.setattr(
        vllm_cpu.subprocess,
        "run",
        lambda cmd, **_: subprocess.CompletedProcess(cmd, 1, "", "MemoryError"),
    )
    settings = Settings(llm_quantization="w4a16", quantize_venv=tmp_path / "venv")
    with pytest.raises(vllm_cpu.LLMServerError, match="quantization failed:\nMemoryError"):
        vllm_cpu.ensure_quantized(settings, bf16, report=lambda m: None)
