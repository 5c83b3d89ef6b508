"""Retrieval does each step once (issue 23, item 5) and finds what it found before.

The reference below is retrieval as it was before that change, copied: the question tokenised
twice, every hit's dense vector kept in the passage, every filter checked again on the hits,
copies dropped by the store and again by packing. On one real store (EmbeddingGemma over a
few bundled notes, a note with a title, tags and aliases, and a copy of one note), on both engines
(Qdrant Edge matches path prefixes; qdrant-client's local mode, like a server, does not), the
same questions under the same filters must give the same passages in the same order with the
same scores, similarities and term shares, and the same packed prompt.

Both sides run on one store in one process, with one embedding of each question (`Memo`: the
model on CPU need not give the same bits twice, and fused scores show the difference). A copied
note's passages score exactly alike, and which copy a store returns first is not fixed, so a
copy is named as its original (`row`).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from ingest.pipeline import Ingestor
from rag.packing import merge_adjacent, pack
from rag.passage import Filters, Passage
from rag.retrieve import Retriever
from rag.terms import mentions
from shiori.chunk import Chunk
from shiori.config import Settings
from shiori.embedding import Embedder
from shiori.index import NoteIndex, open_client
from shiori.query import Hit
from shiori.sparse import SparseEncoder, SparseVector, term_id, tokens
from tests.conftest import NOTES

pytestmark = pytest.mark.slow

QUESTIONS = [
    "Gemma が公開されたのはいつですか？",
    "QLoRA quantises the frozen base model to how many bits?",
    "拡散モデルで潜在空間を使う利点は？",
    "LoRA の r とは何ですか？",
    "What is RAG?",
    "ランクとアダプタ",
    "日本の首都はどこですか",
]
TERMS = ["Gemma", "LoRA", "アダプタ", "RAG", "rank"]  # for the rescue (`Retriever.mentioning`)
ADAPTERS = """---
title: Adapters
tags: [peft, lora]
aliases: [アダプタ]
---
# Adapters

アダプタは小さな層を追加して学習する。LoRA はランク r の行列を足す。

## Rank

r は 8 や 16 がよく使われる。See [[09-lora|LoRA note]].
"""


# --- retrieval before issue 23, item 5 (copied; only the names changed) ---------------------


@dataclass(frozen=True)
class OldPassage:
    chunk: Chunk
    score: float
    similarity: float
    term_overlap: float
    vector: tuple[float, ...] = ()


def old_hybrid_query(
    index: NoteIndex,
    dense: list[float],
    sparse: SparseVector,
    limit: int,
    prefetch: int,
    flt: Filters | None,
) -> list[Hit]:
    want = limit * 4  # distinct=True
    hits = index.qdrant_query(
        dense, sparse, want, prefetch=max(prefetch, want), fusion="dbsf", flt=flt
    )
    kept: list[Hit] = []
    seen: set[str] = set()
    for hit in hits:
        if (flt is not None and not flt.accepts(hit[0])) or hit[0].text in seen:
            continue
        seen.add(hit[0].text)
        kept.append(hit)
    return kept[:limit]


def old_search(
    index: NoteIndex, embedder: Embedder, question: str, top_k: int, flt: Filters | None
) -> list[OldPassage]:
    query_vec = embedder.embed_queries([question])[0]
    query_terms = {term_id(t) for t in tokens(question)}
    hits = old_hybrid_query(
        index,
        query_vec.tolist(),
        SparseEncoder().encode_query(question),
        top_k,
        max(40, top_k),
        flt,
    )
    passages = []
    for chunk, score, vector in hits:
        similarity = float(np.dot(query_vec, np.asarray(vector))) if vector else 0.0
        chunk_terms = {term_id(t) for t in tokens(f"{chunk.heading}\n{chunk.text}")}
        overlap = len(query_terms & chunk_terms) / len(query_terms) if query_terms else 0.0
        passages.append(OldPassage(chunk, score, similarity, overlap, tuple(vector)))
    return passages


def old_mentioning(
    index: NoteIndex,
    embedder: Embedder,
    terms: Sequence[str],
    have: Sequence[OldPassage],
    flt: Filters | None,
) -> list[OldPassage]:
    if not have:
        return []
    seen = {(p.chunk.path, p.chunk.chunk_index) for p in have}
    found: list[OldPassage] = []
    for term in terms:
        for hit in old_search(index, embedder, term, 3, flt):
            key = (hit.chunk.path, hit.chunk.chunk_index)
            if key not in seen and mentions(hit, term):  # type: ignore[arg-type]
                seen.add(key)
                found.append(replace(hit, score=have[0].score))
                break
    return found


def old_distinct(passages: Sequence[Passage]) -> list[Passage]:
    seen: set[str] = set()
    kept = []
    for passage in passages:
        key = passage.chunk.text.strip()
        if key not in seen:
            seen.add(key)
            kept.append(passage)
    return kept


def old_pack(
    passages: Sequence[Passage],
    budget_tokens: int,
    count_tokens: Callable[[Sequence[str]], list[int]],
    min_relative_score: float,
) -> list[Passage]:
    if passages and min_relative_score > 0:
        floor = min_relative_score * max(p.score for p in passages)
        passages = [p for p in passages if p.score >= floor]
    merged = merge_adjacent(old_distinct(passages))
    costs = count_tokens([p.chunk.text for p in merged])
    packed: list[Passage] = []
    used = 0
    for passage, cost in zip(merged, costs, strict=True):
        if packed and used + cost > budget_tokens:
            continue
        packed.append(passage)
        used += cost
    return packed


class Memo:
    """The embedder, with each query embedded once: both sides search with the same vector."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.queries: dict[str, np.ndarray] = {}

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        for text in texts:
            if text not in self.queries:
                self.queries[text] = self.embedder.embed_queries([text])[0]
        return np.stack([self.queries[t] for t in texts])

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.embedder.count_tokens(texts)


# --- the comparison -----------------------------------------------------------------------


def row(p: Passage | OldPassage) -> tuple[str, int, object, object, object]:
    """A passage's place and evidence. A copy's passage is named as its original's: the two
    score exactly alike, and which one a store returns first is not fixed, not even between
    two runs of one query on one store. Scores agree to 1e-9: qdrant-client's local mode gave
    one fused score 3e-12 apart for the same request (same vector, terms, filter, limits)."""
    path = p.chunk.path.replace("/dup/", "/main/")
    close = [pytest.approx(x, rel=1e-9, abs=1e-12) for x in (p.score, p.similarity)]
    return (path, p.chunk.chunk_index, *close, p.term_overlap)


def ranked(passages: Sequence[Passage] | Sequence[OldPassage]) -> list[tuple[object, ...]]:
    """`row`s in rank order, passages of exactly equal score by path and number: Qdrant Edge
    returned two passages of one fused score (0.9999998807907104) in either order for the same
    request."""
    ties = sorted(passages, key=lambda p: (-p.score, row(p)[0], p.chunk.chunk_index))
    assert [p.score for p in ties] == [p.score for p in passages]  # ranked by score
    return [row(p) for p in ties]


def shown(p: Passage) -> tuple[object, ...]:
    """All a packed passage hands on: its chunk (text, lines, spans), evidence and parts."""
    return (p.chunk, *row(p)[2:], p.parts)


def as_passage(p: OldPassage) -> Passage:
    return Passage(p.chunk, p.score, p.similarity, p.term_overlap)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """main/: four bundled notes and one with a title, tags and aliases; dup/: a copy of one."""
    root = tmp_path_factory.mktemp("once") / "n"
    (root / "main").mkdir(parents=True)
    (root / "dup").mkdir()
    for name in ["05-gemma.md", "09-lora.md", "10-qlora-en.md", "07-diffusion-latent.md"]:
        shutil.copy(NOTES / name, root / "main" / name)
    shutil.copy(NOTES / "05-gemma.md", root / "dup" / "05-gemma.md")  # every passage twice
    (root / "main" / "adapters.md").write_text(ADAPTERS, encoding="utf-8")
    return root


@pytest.fixture(scope="module", params=["edge", "local"])
def index(
    request: pytest.FixtureRequest,
    folder: Path,
    embedder: Embedder,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[NoteIndex]:
    where = str(tmp_path_factory.mktemp("store")) if request.param == "edge" else ":memory:"
    settings = Settings(qdrant=where, collection="once")
    index = NoteIndex(open_client(settings), settings, embedder.dimension)
    index.ensure_collections()
    Ingestor(settings, index, embedder).run([folder])
    assert index.client.matches_prefix == (request.param == "edge")
    yield index
    index.client.close()


def filters(root: Path) -> list[Filters | None]:
    """Every kind of filter, each leaving something to find (the copies included)."""
    return [
        None,
        Filters(sources=(str(root / "main/05-gemma.md"), str(root / "dup/05-gemma.md"))),
        Filters(path_prefix=str(root / "dup")),
        Filters(path_prefix=str(root / "main")),
        Filters(path_prefix=str(root / "main/09-lora.md")),
        Filters(title="Adapters"),
        Filters(tags=("peft",)),
        Filters(path_prefix=str(root), tags=("lora",)),
    ]


def without_copies(root: Path) -> list[Filters | None]:
    """Filters that leave the copy out (`test_the_rescue_and_the_prompt_are_what_they_were`),
    and the title and tags: they leave two passages, which Qdrant Edge scores exactly alike
    and returns in either order (`ranked`)."""
    return [
        Filters(path_prefix=str(root / "main")),
        Filters(sources=(str(root / "main/05-gemma.md"), str(root / "main/09-lora.md"))),
    ]


def test_search_finds_what_it_found_before(
    index: NoteIndex, embedder: Embedder, folder: Path
) -> None:
    embedder = Memo(embedder)  # type: ignore[assignment]
    retriever = Retriever(index, embedder)
    compared = 0
    for flt in filters(folder):
        for question in QUESTIONS:
            for top_k in (3, 5):
                want = ranked(old_search(index, embedder, question, top_k, flt))
                got = ranked(retriever.search(question, top_k, flt))
                assert got == want, (question, top_k, flt)
                compared += len(got)
    assert compared > 200  # the filters leave enough to compare


def test_the_rescue_and_the_prompt_are_what_they_were(
    index: NoteIndex, embedder: Embedder, folder: Path
) -> None:
    """`Answerer.prepare`'s steps after the search: rescued passages for missing terms, then
    packing. Packing no longer drops copies: the store drops them from each search, and the
    rescue now skips a copy of a passage it has (before, it could take one, which packing
    dropped). Where which copy comes first is not fixed, the old rescue was not either, so this
    compares searches that leave the copy out (the new rule: tests/unit/rag/test_retrieve.py)."""
    embedder = Memo(embedder)  # type: ignore[assignment]
    retriever = Retriever(index, embedder)
    for flt in without_copies(folder):
        for question in QUESTIONS:
            old_found = old_search(index, embedder, question, 5, flt)
            old_rescued = old_mentioning(index, embedder, TERMS, old_found, flt)
            found = retriever.search(question, 5, flt)
            rescued = retriever.mentioning(TERMS, found, flt)
            assert [row(p) for p in rescued] == [row(p) for p in old_rescued], (question, flt)
            old = [as_passage(p) for p in [*old_found[:1], *old_rescued, *old_found[1:]]]
            new = [*found[:1], *rescued, *found[1:]]
            for budget, floor in ((300, 0.5), (600, 0.0), (2000, 0.5)):
                want = old_pack(old, budget, embedder.count_tokens, floor)
                got = pack(new, budget, embedder.count_tokens, floor)
                assert [shown(p) for p in got] == [shown(p) for p in want], (question, flt)
