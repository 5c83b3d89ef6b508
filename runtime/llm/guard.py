"""The guard of a local vLLM server: ``python guard.py PARENT_PID GRACE_S COMMAND...``.

Started by `vllm_cpu.spawn` as the leader of a new session, it runs COMMAND (vLLM's API server)
in that session and makes sure nothing of it outlives either of them:

- when the server exits, for any reason, the guard ends whatever is left in the session (vLLM's
  EngineCore and CPU workers keep running at full CPU when their API server dies) and exits
  with the server's status (128 + signal when it was killed by one);
- when the guard is asked to stop (SIGTERM or SIGINT), it passes SIGTERM to the server, which
  shuts its engine down, and ends the session after GRACE_S seconds;
- when the Shiori process that started it dies, even by SIGKILL, the kernel sends the guard
  SIGTERM (Linux ``prctl(PR_SET_PDEATHSIG)``), so the same happens.

Standard library only: it runs with whichever Python started it, before anything is imported.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

PR_SET_PDEATHSIG = 1


def session_members(sid: int) -> list[int]:
    """Live processes of session ``sid`` (from /proc; zombies excluded; none without /proc)."""
    members: list[int] = []
    if not Path("/proc/self/stat").exists():
        return members
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ...; comm may hold spaces and parentheses
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[3]) == sid:
            members.append(int(entry.name))
    return members


def end_session(grace: float) -> None:
    """SIGTERM to the rest of this session, SIGKILL to what is left after ``grace`` s."""
    me = os.getpid()
    sid = os.getsid(0)
    others = [p for p in session_members(sid) if p != me]
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        for pid in others:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while others and time.monotonic() < deadline:
            time.sleep(0.1)
            with contextlib.suppress(ChildProcessError):
                while os.waitpid(-1, os.WNOHANG)[0] > 0:  # reap our own children
                    pass
            others = [p for p in session_members(sid) if p != me]
        if not others:
            return


def main(argv: list[str]) -> int:
    parent, grace, command = int(argv[1]), float(argv[2]), argv[3:]
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the line above took effect
        return 143
    server = subprocess.Popen(command)
    stop_at: float | None = None

    def stop(signum: int, _: FrameType | None) -> None:
        nonlocal stop_at
        if stop_at is None:
            stop_at = time.monotonic() + grace
            with contextlib.suppress(ProcessLookupError):
                server.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while server.poll() is None:
        if stop_at is not None and time.monotonic() > stop_at:
            server.kill()
        time.sleep(0.2)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    end_session(grace if stop_at is None else max(1.0, stop_at - time.monotonic()))
    code = server.returncode
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
