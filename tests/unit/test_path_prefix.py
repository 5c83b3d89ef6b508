"""A path filter is a folder, not a string (issue 25): ``path_prefix`` ``notes/ml`` takes in
``notes/ml/…`` and the file ``notes/ml`` itself, never ``notes/ml-old/…``; in the embedded
store's filter (before each prefetch) and in the re-check after the query."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shiori.config import Settings
from shiori.index import ChunkFilter, NoteIndex, open_client
from shiori.query import is_under, normal_prefix, prefix_forms
from shiori.sparse import SparseVector
from tests.unit.test_edge import DIM, fill, one

NAME = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="/\\\x00"),
               min_size=1, max_size=8).filter(lambda n: n not in (".", ".."))  # fmt: skip
FOLDER = st.lists(NAME, min_size=1, max_size=3).map("/".join)


@given(folder=FOLDER, tail=NAME, rest=FOLDER, slash=st.booleans())
def test_a_prefix_never_matches_a_sibling_folder(
    folder: str, tail: str, rest: str, slash: bool
) -> None:
    prefix = folder + ("/" if slash else "")
    assert not is_under(f"{folder}{tail}/{rest}", prefix)  # notes/ml-old/x vs notes/ml
    assert is_under(f"{folder}/{rest}", prefix)
    assert is_under(folder, prefix)  # the file itself
    nfc = unicodedata.normalize("NFC", folder)
    assert prefix_forms(prefix) == (nfc, nfc + "/")


@pytest.mark.parametrize(
    "spelling", ["notes/ml", "notes/ml/", "./notes/ml", "notes\\ml", ".\\notes\\ml\\",
                 "notes//ml", "notes/./ml", "notes/x/../ml"],
)  # fmt: skip
def test_a_prefix_is_a_path_however_it_is_spelled(spelling: str) -> None:
    assert normal_prefix(spelling) == "notes/ml"
    assert is_under("notes/ml/a.md", spelling) and not is_under("notes/ml-old/a.md", spelling)
    flt = ChunkFilter(path_prefix=spelling)
    assert flt.accepts(one("notes/ml/a.md", 0, [1])[0])
    assert not flt.accepts(one("notes/ml-old/a.md", 0, [1])[0])


def test_an_absolute_prefix_through_a_link_finds_the_notes_ingest_resolved(
    tmp_path: Path,
) -> None:
    (tmp_path / "data" / "notes" / "ml").mkdir(parents=True)
    os.symlink(tmp_path / "data" / "notes", tmp_path / "link")
    real = (tmp_path / "data" / "notes" / "ml" / "a.md").resolve().as_posix()
    settings_ = Settings(qdrant=str(tmp_path / "q"), collection="c")
    index = NoteIndex(open_client(settings_), settings_, DIM)
    fill(index, [one(real, 0, [1]), one(real.replace("/ml/", "/ml-old/"), 0, [1])])
    for prefix in (f"{tmp_path}/link/ml", f"{tmp_path}/link/ml/", f"{tmp_path}/link/./ml"):
        assert ChunkFilter(path_prefix=prefix).accepts(one(real, 0, [1])[0]), prefix
        flt = ChunkFilter(path_prefix=prefix)
        raw = index.qdrant_query([1.0] * DIM, SparseVector([1], [1.0]), 10, flt=flt)
        assert [c.path for c, _, _ in raw] == [real], prefix
    index.client.close()


@pytest.mark.parametrize(
    ("prefix", "want"),
    [
        ("notes/ml", ["/w/notes/ml/a.md"]),  # not ml-old/, not ml.md
        ("notes/ml/", ["/w/notes/ml/a.md"]),
        ("./notes/ml", ["/w/notes/ml/a.md"]),  # spelled as a path: the same folder
        ("notes\\ml", ["/w/notes/ml/a.md"]),
        ("notes/ml-old/b.md", ["/w/notes/ml-old/b.md"]),
        ("/w/notes/ml", ["/w/notes/ml/a.md"]),
        ("notes", ["/w/notes/ml-old/b.md", "/w/notes/ml.md", "/w/notes/ml/a.md"]),
    ],
)
def test_the_store_filters_folders_not_strings(
    tmp_path: Path, prefix: str, want: list[str]
) -> None:
    paths = ["/w/notes/ml/a.md", "/w/notes/ml-old/b.md", "/w/notes/ml.md", "/w/notesx/c.md"]
    settings_ = Settings(qdrant=str(tmp_path), collection="c")
    index = NoteIndex(open_client(settings_), settings_, DIM)
    # `one` shows each note as its path without the leading "/": source "w/notes/ml/a.md"
    fill(index, [one(p, 0, [1]) for p in paths])
    flt = ChunkFilter(
        path_prefix=prefix
        if prefix.startswith("/")
        else prefix.replace("./", "./w/", 1)
        if prefix.startswith("./")
        else f"w/{prefix}"
    )
    # the embedded engine's filter alone (before the re-check in hybrid_query)
    raw = index.qdrant_query([1.0] * DIM, SparseVector([1], [1.0]), 10, flt=flt)
    assert sorted(c.path for c, _, _ in raw) == sorted(want)
    hits = index.hybrid_query([1.0] * DIM, SparseVector([1], [1.0]), 10, flt=flt)
    assert sorted(c.path for c, _, _ in hits) == sorted(want)
    index.client.close()
