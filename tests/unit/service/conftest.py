"""Fixtures shared by the service's unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.service.uploads import PostIngest, poster


@pytest.fixture
def post_ingest(tmp_path: Path) -> PostIngest:
    """POST /v1/ingest over a stand-in ingestor, uploads in ``tmp_path``/uploads."""
    return poster(tmp_path / "uploads")
