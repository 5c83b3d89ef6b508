"""`shiori serve` as a child process, for what talks to the service over HTTP from outside: the
benchmarks (bench/) and the tests of the real process (tests/integration/).

`serving` starts it with environment overrides on a port, its output in a log file, waits until
a readiness URL answers 2xx (``/readyz``: the store and the LLM answer; ``/healthz``: the
process is up, for runs without an LLM), and stops it on the way out: SIGTERM (uvicorn shuts
down gracefully), SIGKILL after a grace period. A process that exits before it is ready, or is
not ready in time, is an error (`ServeError`) that quotes the log's end."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

STOP_GRACE_S = 30.0


class ServeError(RuntimeError):
    """The service exited before it was ready, or did not become ready in time."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_command(log_level: str = "warning") -> list[str]:
    """`shiori serve` run by this interpreter (this environment's Shiori)."""
    return [sys.executable, "-m", "shiori.cli", "serve", "--log-level", log_level]


@dataclass
class ServeProcess:
    """A started service: its process, base URL and log file."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def start(
    env: Mapping[str, str],
    *,
    port: int,
    log: Path,
    command: Sequence[str] | None = None,
    cwd: Path | None = None,
) -> ServeProcess:
    """Start the service (``command``, default `serve_command()`) with this environment and
    ``env`` over it, SHIORI_PORT set to ``port``; stdout and stderr go to ``log``
    (overwritten). It is not waited for: see `wait_ready`."""
    full = {**os.environ, **env, "SHIORI_PORT": str(port)}
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            list(command or serve_command()),
            env=full,
            cwd=cwd,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    return ServeProcess(proc, f"http://127.0.0.1:{port}", log)


def wait_ready(server: ServeProcess, ready: str = "/readyz", timeout_s: float = 300) -> None:
    """Poll ``ready`` (a path of the service) until it answers 2xx; `ServeError` when the
    process exits first or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        if not server.running():
            raise ServeError(
                f"shiori serve exited ({server.proc.returncode}) before {ready} answered:\n"
                f"{server.log_tail()}"
            )
        try:
            if httpx.get(server.url + ready, timeout=2).is_success:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise ServeError(
                f"shiori serve: {ready} did not answer within {timeout_s:.0f} s:\n"
                f"{server.log_tail()}"
            )
        time.sleep(0.5)


def stop(server: ServeProcess, grace_s: float = STOP_GRACE_S) -> int:
    """SIGTERM, SIGKILL after ``grace_s`` seconds; the exit status."""
    proc = server.proc
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


@contextmanager
def serving(
    env: Mapping[str, str],
    *,
    port: int | None = None,
    log: Path,
    command: Sequence[str] | None = None,
    cwd: Path | None = None,
    ready: str = "/readyz",
    timeout_s: float = 300,
    grace_s: float = STOP_GRACE_S,
) -> Iterator[ServeProcess]:
    """The service, started (`start`; a free port unless ``port``) and ready (`wait_ready`),
    for the block; stopped after it (`stop`), also when it fails to start."""
    server = start(env, port=port or free_port(), log=log, command=command, cwd=cwd)
    try:
        wait_ready(server, ready, timeout_s)
        yield server
    finally:
        stop(server, grace_s)
