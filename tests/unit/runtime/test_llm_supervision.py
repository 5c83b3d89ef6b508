"""The guard and the supervisor of the local LLM server, with real processes: a stand-in server
that answers /v1/models like vLLM and, like vLLM's API server, starts a child (its "engine")
that ignores its parent's death. (tests/integration/test_supervision.py does the same with the
real vLLM through `shiori up`.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from runtime.llm import vllm_cpu
from runtime.llm.guard import session_members
from runtime.llm.supervisor import LLMSupervisor, local_llm
from shiori.config import Settings
from tests.integration.conftest import free_port

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="sessions are read from /proc")

SERVER = textwrap.dedent(
    """
    import http.server, json, signal, subprocess, sys
    # the "engine": survives its parent, as vLLM's EngineCore does
    subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
    class Models(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"data": [{"id": sys.argv[2]}]}).encode()
            self.send_response(200); self.end_headers(); self.wfile.write(body)
        def log_message(self, *args): pass
    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Models).serve_forever()
    """
)


def wait_for(condition, timeout: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    return pid in session_members(os.getsid(pid)) if Path(f"/proc/{pid}").exists() else False


@pytest.fixture
def fake(tmp_path: Path) -> tuple[Settings, list[str]]:
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    settings = Settings(
        llm_url=f"http://127.0.0.1:{free_port()}/v1",
        llm_start_timeout_s=30,
        llm_restart_backoff_s=0.5,
        llm_restart_backoff_max_s=2,
    )
    port = settings.llm_url.split(":")[2].split("/")[0]
    return settings, [sys.executable, str(script), port, settings.llm_model]


def test_guard_ends_the_session_when_the_server_dies(fake: tuple[Settings, list[str]]) -> None:
    settings, cmd = fake
    guard = vllm_cpu.spawn(cmd, grace=1)
    assert wait_for(lambda: vllm_cpu.models_endpoint_ready(settings))
    (server,) = children(guard.pid)
    assert wait_for(lambda: len(session_members(guard.pid)) == 3)  # guard, server, engine
    os.kill(server, signal.SIGKILL)
    assert guard.wait(timeout=30) == 128 + signal.SIGKILL  # the server's status, passed on
    assert session_members(guard.pid) == []  # the engine that outlived its server is gone


def test_stop_leaves_nothing(fake: tuple[Settings, list[str]]) -> None:
    settings, cmd = fake
    guard = vllm_cpu.spawn(cmd, grace=1)
    assert wait_for(lambda: len(session_members(guard.pid)) == 3)
    vllm_cpu.stop(guard, grace=2)
    assert guard.returncode is not None and session_members(guard.pid) == []
    assert not vllm_cpu.models_endpoint_ready(settings)


def test_the_server_goes_when_its_starter_is_killed(
    fake: tuple[Settings, list[str]], tmp_path: Path
) -> None:
    """SIGKILL leaves the starter no chance to clean up: the kernel tells the guard."""
    settings, cmd = fake
    starter = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from runtime.llm import vllm_cpu; "
         f"g = vllm_cpu.spawn({cmd!r}, grace=1); print(g.pid, flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[3],
    )  # fmt: skip
    assert starter.stdout is not None
    guard = int(starter.stdout.readline())
    assert wait_for(lambda: len(session_members(guard)) == 3)
    starter.kill()
    starter.wait()
    assert wait_for(lambda: session_members(guard) == [], timeout=40)
    assert not vllm_cpu.models_endpoint_ready(settings)


def test_supervisor_restarts_a_dead_server_with_backoff(
    fake: tuple[Settings, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    settings, cmd = fake
    supervisor = LLMSupervisor(settings, report=lambda m: None, command=cmd, grace=1)
    supervisor.start()
    try:
        first = supervisor.pid
        assert first is not None and supervisor.status()["state"] == "running"
        old_session = session_members(first)
        assert len(old_session) == 3
        (server,) = children(first)
        with caplog.at_level("WARNING", logger="shiori.llm"):
            os.kill(server, signal.SIGKILL)
            assert wait_for(lambda: supervisor.status()["state"] == "restarting", timeout=10)
            status = supervisor.status()
            assert status["last_exit"] == 128 + signal.SIGKILL and status["next_start_in_s"] >= 0
            assert wait_for(lambda: supervisor.status()["state"] == "running", timeout=30)
        assert supervisor.status()["restarts"] == 1 and supervisor.pid != first
        assert vllm_cpu.models_endpoint_ready(settings)
        assert not any(alive(p) for p in old_session), "an old process outlived the restart"
        assert "exited with status 137" in caplog.text and "serving again" in caplog.text
        second = supervisor.pid
    finally:
        supervisor.stop()
    assert second is not None and session_members(second) == []
    assert supervisor.status()["state"] == "stopped"


def test_a_first_start_that_fails_is_reported_and_leaves_nothing(tmp_path: Path) -> None:
    settings = Settings(llm_url=f"http://127.0.0.1:{free_port()}/v1", llm_start_timeout_s=20)
    broken = [sys.executable, "-c", "import sys; print('no model here'); sys.exit(3)"]
    log = tmp_path / "llm.log"
    supervisor = LLMSupervisor(settings, log, report=lambda m: None, command=broken)
    with pytest.raises(vllm_cpu.LLMServerError, match="status 3"):
        supervisor.start()
    assert "no model here" in log.read_text()
    supervisor.stop()
    assert supervisor.status()["state"] == "stopped"


def test_local_llm_starts_one_only_when_none_answers(fake: tuple[Settings, list[str]]) -> None:
    """`shiori up` and `shiori eval --start-llm` share this: start (supervised) when nothing
    answers and stop it after the block; use the one that answers and leave it running."""
    settings, cmd = fake
    said: list[str] = []
    with local_llm(settings, None, said.append, command=cmd, grace=1) as started:
        assert started is not None and started.status()["state"] == "running"
        assert vllm_cpu.models_endpoint_ready(settings)
        pid = started.pid
        assert pid is not None and len(session_members(pid)) == 3
        with local_llm(settings, None, said.append, command=cmd, grace=1) as reused:
            assert reused is None  # the one above answers: not started twice
    assert session_members(pid) == [] and not vllm_cpu.models_endpoint_ready(settings)
    assert said[0].startswith("starting vLLM") and said[-1] == "stopping vLLM…"
    assert f"using the LLM already at {settings.llm_url}" in said


def test_local_llm_stops_it_when_the_block_is_interrupted(
    fake: tuple[Settings, list[str]],
) -> None:
    settings, cmd = fake
    with (
        pytest.raises(KeyboardInterrupt),
        local_llm(settings, None, lambda m: None, command=cmd, grace=1) as started,
    ):
        assert started is not None
        pid = started.pid
        raise KeyboardInterrupt
    assert pid is not None and session_members(pid) == []
    assert started.status()["state"] == "stopped"


def test_local_llm_raises_when_the_server_cannot_start(tmp_path: Path) -> None:
    settings = Settings(llm_url=f"http://127.0.0.1:{free_port()}/v1", llm_start_timeout_s=20)
    broken = [sys.executable, "-c", "import sys; print('no model here'); sys.exit(3)"]
    said: list[str] = []
    with (
        pytest.raises(vllm_cpu.LLMServerError, match="status 3"),
        local_llm(settings, tmp_path / "llm.log", said.append, command=broken),
    ):
        pytest.fail("the block runs only once an LLM answers")
    assert said[-1] == "stopping vLLM…"
    assert not vllm_cpu.models_endpoint_ready(settings)
