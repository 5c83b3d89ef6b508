"""../shared/cases/grounding as slow tests with the real parts: two small notes whose sections
describe neighbouring things (three word-embedding methods, two tokenizers). A question about a
figure the notes give only for the neighbour must be refused; the others answered right, in
the question's language, across languages too. Each question is its own test, with the
golden set's own checks (`eval.runner.answer_check`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from eval.dataset import GoldenItem, load
from eval.runner import answer_check
from ingest.pipeline import Ingestor
from service.components import Components
from shiori.config import Settings
from shiori.embedding import Embedder
from shiori.index import NoteIndex, open_client
from tests.conftest import SHARED
from tests.integration.conftest import settings_for

pytestmark = pytest.mark.slow
CASES = SHARED / "cases" / "grounding"


def items() -> list[GoldenItem]:
    if not (CASES / "questions.jsonl").is_file():
        return []
    return load(CASES / "questions.jsonl")


@pytest.fixture(scope="module")
def parts(
    tmp_path_factory: pytest.TempPathFactory,
    embedder: Embedder,
    llm_settings: Settings,
    loop: asyncio.Runner,
) -> Iterator[Components]:
    store = Settings(qdrant=str(tmp_path_factory.mktemp("grounding")), collection="notes")
    index = NoteIndex(open_client(store), store, embedder.dimension)
    index.ensure_collections()
    Ingestor(store, index, embedder).run([CASES / "notes"])
    parts = Components.assemble(settings_for(index, llm_settings), embedder, index)
    yield parts
    loop.run(parts.aclose())


@pytest.mark.skipif(not CASES.is_dir(), reason=f"{CASES} is not on this machine")
@pytest.mark.parametrize("item", items(), ids=lambda i: f"{i.id}-{i.category}")
def test_grounding_case(parts: Components, loop: asyncio.Runner, item: GoldenItem) -> None:
    answer = loop.run(parts.answerer.ask(item.question))
    shown = answer.to_json()
    if not item.answerable:
        assert answer.abstained, f"answered a question the notes cannot answer: {shown}"
        return
    assert not answer.abstained, f"refused an answerable question ({answer.reason}): {shown}"
    verdict = answer_check(item, answer.answer)
    assert verdict.passed, f"{verdict}: {answer.answer}"
    # every citation points at the exact sentence it rests on, inside its passage's lines
    for sentence in shown["sentences"]:
        for e in sentence["evidence"]:
            source = shown["contexts"][e["n"] - 1]
            assert e["text"] in source["text"]
            assert source["lines"][0] <= e["lines"][0] <= e["lines"][1] <= source["lines"][1]
            note = Path(CASES / "notes" / Path(e["source"]).name).read_text(encoding="utf-8")
            lines = note.splitlines()[e["lines"][0] - 1 : e["lines"][1]]
            assert e["text"].splitlines()[0].strip() in "\n".join(lines)
