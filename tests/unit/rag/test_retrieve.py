"""The rescue's rule for copies (`Retriever.mentioning`): a passage whose text the answer already
has, at another path (a note ingested from two folders), is not taken again; the next hit that
mentions the term is. Packing no longer drops copies, so this is where they are kept out."""

from __future__ import annotations

from typing import Any

from rag.retrieve import Passage, Retriever
from shiori.index import Chunk

GEMMA = "Gemma は2024年2月21日に公開された。"
COT = "Chain-of-thought prompting was shown by Wei and colleagues at Google in 2022."
COT_AGAIN = "Chain-of-thought prompting makes a model write its steps before the answer."


def passage(text: str, path: str, index: int = 0, score: float = 1.0) -> Passage:
    chunk = Chunk(
        path=path, source=path.lstrip("/"), title="t", headings=["t"], line_start=1,
        line_end=2, char_start=0, char_end=len(text), text=text, chunk_index=index,
        content_hash=str(index), generation="g",
    )  # fmt: skip
    return Passage(chunk, score, 0.5, 0.5)


class Search:
    """`Retriever.mentioning` over a fixed list of hits per term."""

    term_probe = 3
    mentioning = Retriever.mentioning

    def __init__(self, hits: dict[str, list[Passage]]) -> None:
        self.hits = hits

    def search(self, question: str, top_k: int, filters: Any = None) -> list[Passage]:
        return self.hits.get(question, [])[:top_k]


def test_the_rescue_skips_a_copy_of_a_passage_it_has() -> None:
    have = [passage(GEMMA, "/a/gemma.md", score=2.0), passage(COT, "/a/cot.md", 3)]
    copy = passage(COT, "/b/cot.md", 3)  # the same note ingested from another folder
    other = passage(COT_AGAIN, "/a/cot.md", 4, score=0.3)
    found = Search({"Chain-of-thought": [copy, other]}).mentioning(["Chain-of-thought"], have)  # type: ignore[attr-defined]
    assert [(p.chunk.path, p.chunk.chunk_index, p.score) for p in found] == [
        ("/a/cot.md", 4, 2.0)  # the next one, ranked just below the best passage found
    ]


def test_the_rescue_takes_one_passage_per_term_and_never_one_twice() -> None:
    have = [passage(GEMMA, "/a/gemma.md")]
    cot = passage(COT, "/a/cot.md", 3)
    found = Search({"Chain-of-thought": [cot], "Google": [cot]}).mentioning(  # type: ignore[attr-defined]
        ["Chain-of-thought", "Google"], have
    )
    assert [p.chunk.chunk_index for p in found] == [3]
