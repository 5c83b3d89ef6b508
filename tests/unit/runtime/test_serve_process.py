"""The one starter of `shiori serve` as a process (`runtime.serve_process`), against a small
stand-in server: it waits for the readiness URL, reports a process that exits first, and stops
the process (SIGTERM, then SIGKILL for one that ignores it)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pytest

from runtime.serve_process import ServeError, serving

# answers /readyz after a short start; IGNORE_TERM: ignores SIGTERM; EXIT: exits at once
STAND_IN = r"""
import http.server, os, signal, sys, time
if os.environ.get("EXIT"):
    print("cannot start: no store", flush=True)
    sys.exit(3)
if os.environ.get("IGNORE_TERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
time.sleep(0.3)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/readyz" else 404)
        self.end_headers()
    def log_message(self, *a):
        pass
print("listening", flush=True)
http.server.HTTPServer(("127.0.0.1", int(os.environ["SHIORI_PORT"])), H).serve_forever()
"""
COMMAND = [sys.executable, "-c", STAND_IN]


def test_ready_then_stopped(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with serving({}, log=log, command=COMMAND, timeout_s=20) as server:
        assert httpx.get(f"{server.url}/readyz").status_code == 200
        proc = server.proc
    assert proc.returncode is not None and proc.returncode < 0  # ended by SIGTERM
    assert "listening" in log.read_text()


def test_one_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    began = time.monotonic()
    env = {"IGNORE_TERM": "1"}
    with serving(env, log=tmp_path / "log", command=COMMAND, grace_s=0.5) as server:
        proc = server.proc
    assert proc.returncode == -9 and time.monotonic() - began < 15


def test_an_exit_before_ready_is_an_error_with_the_log(tmp_path: Path) -> None:
    with (
        pytest.raises(ServeError, match="no store"),
        serving({"EXIT": "1"}, log=tmp_path / "log", command=COMMAND, timeout_s=20),
    ):
        pytest.fail("not ready: the block does not run")


def test_not_ready_in_time_is_an_error(tmp_path: Path) -> None:
    with (
        pytest.raises(ServeError, match="did not answer"),
        serving({}, log=tmp_path / "log", command=COMMAND, ready="/nowhere", timeout_s=1.5),
    ):
        pytest.fail("not ready: the block does not run")
