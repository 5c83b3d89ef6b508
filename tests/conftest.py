"""Shared fixtures. Real parts only: the real embedding model and qdrant-client's embedded mode."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from shiori.config import Settings, default_models_dir
from shiori.models import is_installed

REPO = Path(__file__).resolve().parent.parent
NOTES = REPO / "notes"
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def embedder() -> object:
    """The real EmbeddingGemma, loaded once per test session (`make test` pulls it first)."""
    from shiori.embedding import Embedder

    settings = Settings(models_dir=default_models_dir())
    if not is_installed(settings.models_dir, settings.embed_model):
        pytest.fail(
            f"{settings.embed_model} is not installed in {settings.models_dir}: "
            "run `make models` (or `shiori models pull embeddinggemma-300m`)"
        )
    emb = Embedder(settings)
    emb.model  # noqa: B018 - load now, once
    return emb


@pytest.fixture
def notes_copy(tmp_path: Path) -> Path:
    """A private copy of the bundled notes that a test may change."""
    target = tmp_path / "notes"
    shutil.copytree(NOTES, target)
    return target


@pytest.fixture
def store_settings(tmp_path: Path) -> Iterator[Settings]:
    yield Settings(qdrant=str(tmp_path / "qdrant"), collection="test_notes")
