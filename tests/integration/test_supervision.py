"""`shiori up` as a user runs it, with the real vLLM CPU server: kill vLLM's API server and it
comes back (log line, /readyz showing it), its EngineCore gone with it; kill `shiori up`
itself (SIGKILL: no cleanup code runs) and nothing of vLLM is left either."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.llm.guard import session_members
from tests.conftest import REPO
from tests.integration.conftest import LLM_KEY, free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.own_llm,  # runs before the session's vLLM starts (conftest)
    pytest.mark.skipif(sys.platform != "linux", reason="sessions are read from /proc"),
]


def proc_info(pid: int) -> tuple[int, str]:
    """(parent pid, command line) of a live process."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    comm = Path(f"/proc/{pid}/comm").read_text().strip()
    return int(stat[stat.rfind(")") + 2 :].split()[1]), f"{comm} {cmdline}"


def readyz(url: str) -> dict[str, Any] | None:
    try:
        body: dict[str, Any] = httpx.get(f"{url}/readyz", timeout=5).json()
        return body
    except (httpx.TransportError, ValueError):
        return None


def wait_for(condition, timeout: float, every: float = 0.5) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return False


def test_vllm_is_restarted_and_nothing_outlives_shiori_up(tmp_path: Path) -> None:
    llm_port, api_port = free_port(), free_port()
    url = f"http://127.0.0.1:{api_port}"
    env = {
        **os.environ,
        "SHIORI_QDRANT": str(tmp_path / "store"),
        "SHIORI_LLM_URL": f"http://127.0.0.1:{llm_port}/v1",
        "SHIORI_LLM_API_KEY": LLM_KEY,
        "SHIORI_PORT": str(api_port),
        "SHIORI_LLM_RESTART_BACKOFF_S": "1",
        "PYTHONPATH": str(REPO),
    }
    log = tmp_path / "up.log"
    with log.open("wb") as sink:
        up = subprocess.Popen(
            [sys.executable, "-m", "shiori.cli", "up", "--llm-log", str(tmp_path / "vllm.log")],
            env=env, cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    guards: list[int] = []
    try:
        assert wait_for(lambda: (readyz(url) or {}).get("ready") is True, 900), log.read_text()
        status = readyz(url)["llm"]["supervisor"]  # type: ignore[index]
        assert status["state"] == "running" and status["restarts"] == 0
        guard = status["pid"]
        guards.append(guard)
        first = {pid: proc_info(pid) for pid in session_members(guard)}
        (api_server,) = [p for p, (ppid, _) in first.items() if ppid == guard]
        assert "vllm.entrypoints.openai.api_server" in first[api_server][1]
        assert any("EngineCore" in cmd for _, cmd in first.values()), first  # its engine

        os.kill(api_server, signal.SIGKILL)  # vLLM's API server dies

        def restarting() -> bool:
            body = readyz(url) or {}
            sup = body.get("llm", {}).get("supervisor", {})
            return body.get("ready") is False and sup.get("state") in ("restarting", "starting")

        assert wait_for(restarting, 60, every=0.2), readyz(url)
        assert (readyz(url) or {})["llm"]["supervisor"]["last_exit"] == 128 + signal.SIGKILL
        assert wait_for(lambda: session_members(guard) == [], 60), "the old engine lives on"
        assert wait_for(lambda: (readyz(url) or {}).get("ready") is True, 900), log.read_text()
        status = readyz(url)["llm"]["supervisor"]  # type: ignore[index]
        assert status["restarts"] == 1 and status["pid"] != guard
        guards.append(status["pid"])
        assert f"vLLM (pid {guard}) exited with status 137" in log.read_text()
        # said once the supervisor's own check passes (up to a second after /readyz's)
        assert wait_for(lambda: "vLLM is serving again (restart 1)" in log.read_text(), 10)
        reply = httpx.post(
            f"{env['SHIORI_LLM_URL']}/chat/completions",
            headers={"Authorization": f"Bearer {LLM_KEY}"},
            json={"model": "qwen2.5-coder-1.5b-instruct", "max_tokens": 4,
                  "messages": [{"role": "user", "content": "Say OK."}]},
            timeout=120,
        )  # fmt: skip
        assert reply.status_code == 200  # the restarted server generates
        assert len(session_members(status["pid"])) >= 3  # guard, API server, EngineCore

        up.kill()  # a crash: no `finally`, no atexit in `shiori up`
        up.wait(timeout=30)
        assert wait_for(lambda: session_members(guards[-1]) == [], 60), [
            proc_info(p) for p in session_members(guards[-1])
        ]
    finally:
        if up.poll() is None:
            up.kill()
        for guard in guards:  # whatever the assertions say, leave no vLLM behind
            for pid in session_members(guard):
                os.kill(pid, signal.SIGKILL)
