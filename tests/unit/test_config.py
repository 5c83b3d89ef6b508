"""Unit tests for shiori.config: sources, their priority and validation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from shiori.config import CONFIG_ENV, Settings, config_file


@pytest.fixture(autouse=True)
def clean_env(tmp_path, monkeypatch):
    """No SHIORI_* variable from the outside, and a current directory without shiori.toml."""
    for name in list(os.environ):
        if name.upper().startswith("SHIORI_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def write_toml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults():
    s = Settings()
    assert s.collection == "notes"
    assert s.chunk_tokens == 320 and s.chunk_overlap_tokens == 48
    assert s.embed_model == "embeddinggemma-300m"
    assert s.embed_dtype == "bfloat16"
    assert s.embed_dim is None and s.threads is None
    assert s.qdrant_api_key is None
    assert s.is_remote is False
    assert s.models_dir.name == "models"
    assert Path(s.qdrant).name == "qdrant"
    assert config_file() is None


def test_env_overrides_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("SHIORI_COLLECTION", "envcoll")
    monkeypatch.setenv("SHIORI_CHUNK_TOKENS", "200")
    monkeypatch.setenv("SHIORI_MODELS_DIR", str(tmp_path / "m"))
    monkeypatch.setenv("SHIORI_QDRANT_API_KEY", "s3cret")
    monkeypatch.setenv("shiori_embed_batch_size", "7")  # env names are case-insensitive
    s = Settings()
    assert s.collection == "envcoll"
    assert s.chunk_tokens == 200
    assert s.models_dir == tmp_path / "m"
    assert s.qdrant_api_key is not None and s.qdrant_api_key.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s)
    assert s.embed_batch_size == 7


def test_unprefixed_env_is_ignored(monkeypatch):
    monkeypatch.setenv("COLLECTION", "nope")
    monkeypatch.setenv("CHUNK_TOKENS", "100")
    s = Settings()
    assert s.collection == "notes" and s.chunk_tokens == 320


def test_toml_in_current_dir_is_read(tmp_path):
    write_toml(tmp_path / "shiori.toml", 'collection = "fromtoml"\nchunk_tokens = 100\n')
    assert config_file() == Path("shiori.toml")
    s = Settings()
    assert s.collection == "fromtoml"
    assert s.chunk_tokens == 100
    assert s.chunk_overlap_tokens == 48


def test_env_beats_toml_and_init_beats_env(monkeypatch, tmp_path):
    write_toml(tmp_path / "shiori.toml", 'collection = "fromtoml"\nembed_batch_size = 5\n')
    monkeypatch.setenv("SHIORI_COLLECTION", "fromenv")
    s = Settings()
    assert s.collection == "fromenv"
    assert s.embed_batch_size == 5  # still from the TOML
    assert Settings(collection="fromkwargs").collection == "fromkwargs"


def test_shiori_config_env_names_the_toml(monkeypatch, tmp_path):
    write_toml(tmp_path / "shiori.toml", 'collection = "local"\n')
    other = write_toml(tmp_path / "elsewhere.toml", 'collection = "explicit"\nthreads = 3\n')
    monkeypatch.setenv(CONFIG_ENV, str(other))
    assert config_file() == other
    s = Settings()
    assert s.collection == "explicit" and s.threads == 3


def test_shiori_config_missing_file_raises(monkeypatch, tmp_path):
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "missing.toml"))
    with pytest.raises(FileNotFoundError, match=r"missing\.toml"):
        config_file()
    with pytest.raises(FileNotFoundError, match="SHIORI_CONFIG"):
        Settings()


def test_shiori_config_pointing_at_a_directory_raises(monkeypatch, tmp_path):
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError):
        Settings()


def test_invalid_toml_value_rejected(tmp_path):
    write_toml(tmp_path / "shiori.toml", "chunk_tokens = 5\n")
    with pytest.raises(ValidationError, match="chunk_tokens"):
        Settings()


@pytest.mark.parametrize(("chunk", "overlap"), [(64, 64), (64, 100), (320, 320), (32, 1000)])
def test_overlap_must_be_below_chunk_size(chunk, overlap):
    with pytest.raises(ValidationError, match="chunk_overlap_tokens"):
        Settings(chunk_tokens=chunk, chunk_overlap_tokens=overlap)


def test_default_overlap_checked_against_small_chunk_size(monkeypatch, tmp_path):
    # the default overlap (48) is validated too
    with pytest.raises(ValidationError, match=r"must be below chunk_tokens \(40\)"):
        Settings(chunk_tokens=40)
    write_toml(tmp_path / "shiori.toml", "chunk_overlap_tokens = 100\nchunk_tokens = 64\n")
    with pytest.raises(ValidationError, match="chunk_overlap_tokens"):
        Settings()


def test_valid_overlap_accepted():
    s = Settings(chunk_tokens=64, chunk_overlap_tokens=63)
    assert (s.chunk_tokens, s.chunk_overlap_tokens) == (64, 63)
    assert Settings(chunk_overlap_tokens=0).chunk_overlap_tokens == 0


@pytest.mark.parametrize(
    ("location", "remote"),
    [
        ("http://localhost:6333", True),
        ("https://qdrant.example.com", True),
        (":memory:", False),
        ("/var/lib/qdrant", False),
        ("httpdir", False),
    ],
)
def test_is_remote(location, remote):
    assert Settings(qdrant=location).is_remote is remote


@pytest.mark.parametrize("name", ["notes", "my-notes_2", "A" * 64, "0"])
def test_collection_name_accepted(name):
    assert Settings(collection=name).collection == name


@pytest.mark.parametrize("name", ["", "has space", "a/b", "dot.name", "A" * 65, "日本語"])
def test_collection_name_rejected(name):
    with pytest.raises(ValidationError, match="collection"):
        Settings(collection=name)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("embed_dtype", "float16"),
        ("embed_batch_size", 0),
        ("embed_batch_size", 2000),
        ("threads", 0),
        ("shard_number", 0),
        ("chunk_tokens", 4096),
    ],
)
def test_field_constraints(field, value):
    with pytest.raises(ValidationError, match=field):
        Settings(**{field: value})


def test_settings_are_frozen():
    s = Settings()
    with pytest.raises(ValidationError):
        s.collection = "other"  # type: ignore[misc]


def test_cluster_layout_holds_only_what_is_set():
    assert Settings().cluster_layout() == {}
    s = Settings(shard_number=6, replication_factor=2, write_consistency_factor=2)
    assert s.cluster_layout() == {
        "shard_number": 6,
        "replication_factor": 2,
        "write_consistency_factor": 2,
    }
    assert Settings(replication_factor=2).cluster_layout() == {"replication_factor": 2}


def test_write_consistency_cannot_exceed_replicas(monkeypatch):
    with pytest.raises(ValidationError, match="cannot exceed replication_factor"):
        Settings(replication_factor=2, write_consistency_factor=3)
    monkeypatch.setenv("SHIORI_WRITE_CONSISTENCY_FACTOR", "2")  # no replication_factor: 1
    with pytest.raises(ValidationError, match="write_consistency_factor"):
        Settings()
