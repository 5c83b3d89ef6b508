"""`shiori up` keeps its local vLLM alive: restarted when it dies, never leaking processes.

A thread watches the server (started by `vllm_cpu.spawn`: its own session, stopped by the kernel
if Shiori dies). When the server exits without being asked to, the supervisor logs it, ends
everything left in its session (vLLM's EngineCore and workers outlive their API server
otherwise), waits (exponential backoff: SHIORI_LLM_RESTART_BACKOFF_S, doubled after each start
that failed or did not last, up to SHIORI_LLM_RESTART_BACKOFF_MAX_S) and starts it again.
`status()` is what /readyz shows under ``llm.supervisor``. Meanwhile /v1/ask answers 503 and
/v1/search keeps working.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from runtime.llm import vllm_cpu
from shiori.config import Settings

log = logging.getLogger("shiori.llm")
# a server that ran this long before dying was healthy: the next restart waits the shortest time
STABLE_AFTER_S = 60.0


class LLMSupervisor:
    """Runs one local vLLM server for the life of `shiori up`. Thread-safe `status()`."""

    def __init__(
        self,
        settings: Settings,
        log_file: Path | None = None,
        report: vllm_cpu.Report = print,
        command: list[str] | None = None,
        grace: float = vllm_cpu.STOP_GRACE_S,
    ) -> None:
        """``command``: what serves the model; default: vLLM's CPU build, set up on start.
        ``grace``: seconds a stopping server gets before SIGKILL."""
        self.settings = settings
        self.grace = grace
        self.log_file = log_file
        self.report = report
        self._cmd: list[str] = command or []
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._state = "stopped"
        self._restarts = 0
        self._last_exit: int | None = None
        self._last_exit_at: float | None = None
        self._next_start_at: float | None = None

    # --- what /readyz shows -----------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        with self._lock:
            now = time.time()
            return {
                "state": self._state,
                "pid": self._proc.pid if self._proc and self._proc.poll() is None else None,
                "restarts": self._restarts,
                "last_exit": self._last_exit,
                "seconds_since_exit": round(now - self._last_exit_at, 1)
                if self._last_exit_at
                else None,
                "next_start_in_s": round(max(0.0, self._next_start_at - now), 1)
                if self._next_start_at
                else None,
            }

    @property
    def pid(self) -> int | None:
        with self._lock:
            return self._proc.pid if self._proc else None

    def _set(self, state: str, **fields: Any) -> None:
        with self._lock:
            self._state = state
            for key, value in fields.items():
                setattr(self, f"_{key}", value)

    # --- life ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Set up (once) and start the server; return once it answers. Raises
        `vllm_cpu.LLMServerError` if the first start fails (then nothing is left running)."""
        if vllm_cpu.models_endpoint_ready(self.settings):
            raise vllm_cpu.LLMServerError(
                f"an LLM server already answers at {self.settings.llm_url}"
            )
        self._cmd = self._cmd or vllm_cpu.prepare(self.settings, self.report)
        # the server is spawned by the supervising thread, which lives as long as it should:
        # the kernel's parent-death signal is tied to the thread that forked
        self._thread = threading.Thread(target=self._supervise, name="llm-supervisor", daemon=True)
        self._thread.start()
        while not self._ready.wait(0.5):
            if not self._thread.is_alive():
                break
        if self._failure is not None:
            self._thread.join()
            raise self._failure

    def stop(self) -> None:
        """Stop the server and everything it started; return when none of it runs."""
        self._stopping.set()
        with self._lock:
            proc = self._proc
        if proc is not None:
            vllm_cpu.stop(proc, self.grace)
        if self._thread is not None:
            self._thread.join(timeout=self.settings.llm_start_timeout_s + 60)
        with self._lock:
            last = self._proc
        if last is not None and last is not proc:  # started while we were stopping
            vllm_cpu.stop(last, self.grace)
        self._set("stopped", next_start_at=None)

    def _launch(self) -> bool:
        """Start one server and wait until it answers; False if it did not (it is stopped)."""
        self._set("starting", next_start_at=None)
        proc = vllm_cpu.spawn(self._cmd, self.log_file, self.grace)
        with self._lock:
            self._proc = proc
        try:
            vllm_cpu.wait_ready(self.settings, proc, self.log_file, self.report)
        except vllm_cpu.LLMServerError as exc:
            if not self._ready.is_set():
                self._failure = exc
            else:
                log.error("vLLM did not come back: %s", str(exc).splitlines()[0])
            return False
        self._set("running")
        return True

    def _supervise(self) -> None:
        failures = 0
        try:
            if not self._launch():
                return
        except BaseException as exc:  # a broken environment: report it to start()
            self._failure = exc
            return
        finally:
            self._ready.set()
        while not self._stopping.is_set():
            with self._lock:
                proc = self._proc
            assert proc is not None
            began = time.monotonic()
            while proc.poll() is None and not self._stopping.wait(0.5):
                pass
            if self._stopping.is_set():
                return
            code, pid = proc.returncode, proc.pid
            vllm_cpu.stop(
                proc, self.grace
            )  # its EngineCore and workers outlive it: end the session
            failures = 0 if time.monotonic() - began >= STABLE_AFTER_S else failures + 1
            while not self._stopping.is_set():
                wait = min(
                    self.settings.llm_restart_backoff_s * 2 ** max(0, failures - 1),
                    self.settings.llm_restart_backoff_max_s,
                )
                self._set(
                    "restarting",
                    last_exit=code,
                    last_exit_at=time.time(),
                    next_start_at=time.time() + wait,
                )
                log.warning(
                    "vLLM (pid %d) exited with status %s; its processes are stopped; "
                    "restart %d in %.0f s",
                    pid,
                    code,
                    self._restarts + 1,
                    wait,
                )
                if self._stopping.wait(wait):
                    return
                with self._lock:
                    self._restarts += 1
                if self._launch():
                    log.warning("vLLM is serving again (restart %d)", self._restarts)
                    break
                failures += 1
                with self._lock:
                    failed = self._proc
                if failed is not None:
                    code, pid = failed.returncode, failed.pid


@contextmanager
def local_llm(
    settings: Settings,
    log_file: Path | None,
    report: vllm_cpu.Report = print,
    command: list[str] | None = None,
    grace: float = vllm_cpu.STOP_GRACE_S,
) -> Iterator[LLMSupervisor | None]:
    """An LLM for the length of the block: the one that already answers at SHIORI_LLM_URL, or
    else vLLM's CPU build started here, supervised, and stopped when the block ends (even by
    Ctrl-C). Yields the supervisor, or None when an LLM already answered. Raises
    `vllm_cpu.LLMServerError` (and `shiori.models.ModelError`) when it cannot be started.
    ``command``, ``grace``: as for `LLMSupervisor` (default: vLLM's CPU build)."""
    if vllm_cpu.models_endpoint_ready(settings):
        report(f"using the LLM already at {settings.llm_url}")
        yield None
        return
    where = f"; log: {log_file}" if log_file else ""
    report(f"starting vLLM (first start takes a few minutes{where})…")
    supervisor = LLMSupervisor(settings, log_file, report, command, grace)
    try:
        supervisor.start()  # inside: a Ctrl-C while it starts stops it too
        yield supervisor
    finally:
        report("stopping vLLM…")
        supervisor.stop()
