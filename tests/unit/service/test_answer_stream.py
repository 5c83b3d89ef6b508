"""The answering core against a small fake OpenAI-compatible server (deterministic replies):
streaming equals the plain answer, refusals are held back, LLM faults become one error type,
and the SSE framing round-trips. Retrieval is a stand-in here; tests/integration runs it real."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import numpy as np
import pytest
from openai import AsyncOpenAI

from rag.answer import Answer, Answerer, LLMUnavailableError, citation_json
from rag.evidence import source_sentences
from rag.packing import merge_adjacent, pack
from rag.prompt import NOT_FOUND
from rag.retrieve import Passage, Retriever
from service.api.sse import event
from shiori.client import parse_sse
from shiori.config import Settings
from shiori.index import Chunk

NOTE = "Gemma は2024年2月21日に公開された。サイズは 2B と 7B である。"
COT = "Chain-of-thought prompting was shown by Wei and colleagues at Google in 2022."


def passage(text: str, index: int = 0, lines: tuple[int, int] = (3, 4)) -> Passage:
    chunk = Chunk(
        path="/n/gemma.md", source="n/gemma.md", title="Gemma", headings=["Gemma", "公開"],
        line_start=lines[0], line_end=lines[1], char_start=0, char_end=len(text), text=text,
        chunk_index=index, content_hash=str(index), generation="g",
    )  # fmt: skip
    return Passage(chunk, 1.0, 0.8, 0.9)


class FakeEmbedder:
    """Token counts by characters; 'embeddings' as normalised character histograms."""

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(t) for t in texts]

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), 64), dtype=np.float32)
        for i, text in enumerate(texts):
            for ch in text:
                vectors[i, ord(ch) % 64] += 1
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)

    def embed_documents(self, texts: Sequence[str], titles: Sequence[str]) -> np.ndarray:
        return self.embed_queries(texts)

    def embed_for_similarity(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_queries(texts)


class FakeRetriever:
    """Finds the Gemma note for any question; the CoT passage only when asked for the term."""

    embedder = FakeEmbedder()
    term_probe = 3
    mentioning = Retriever.mentioning  # the real rescue, over this search

    def search(self, question: str, top_k: int, filters: Any = None) -> list[Passage]:
        if question == "Chain-of-thought":
            return [passage(NOTE), passage(COT, index=7, lines=(26, 27))]
        return [passage(NOTE)]


def fake_llm(reply: str, status: int = 200, shy: bool = False) -> AsyncOpenAI:
    """An OpenAI-compatible endpoint that always says ``reply`` (streamed in 3-char pieces);
    ``shy``: it says NOT_FOUND whenever its rules offer that."""

    def handle(request: httpx.Request) -> httpx.Response:
        if status != 200:
            return httpx.Response(status, json={"error": {"message": "boom"}})
        body = json.loads(request.content)
        offered = NOT_FOUND in body["messages"][0]["content"]
        reply_now = NOT_FOUND if shy and offered else reply
        usage = {"prompt_tokens": 50, "completion_tokens": 9, "total_tokens": 59}
        if not body.get("stream"):
            return httpx.Response(200, json={
                "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": reply_now}}],
                "usage": usage,
            })  # fmt: skip
        pieces = [reply_now[i : i + 3] for i in range(0, len(reply_now), 3)]
        chunks = [
            {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": body["model"],
             "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]}
            for p in pieces
        ] + [{"id": "x", "object": "chat.completion.chunk", "created": 0, "model": body["model"],
              "choices": [], "usage": usage}]  # fmt: skip
        text = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})

    transport = httpx.MockTransport(handle)
    return AsyncOpenAI(
        base_url="http://fake/v1", api_key="k", http_client=httpx.AsyncClient(transport=transport)
    )


def answerer(reply: str, status: int = 200, shy: bool = False, **settings: Any) -> Answerer:
    llm = fake_llm(reply, status, shy)
    return Answerer(Settings(**settings), FakeRetriever(), llm)  # type: ignore[arg-type]


async def collect(a: Answerer, question: str) -> tuple[list[str], Answer]:
    deltas: list[str] = []
    async for item in a.stream(question):
        if isinstance(item, str):
            deltas.append(item)
        elif isinstance(item, Answer):
            return deltas, item
    raise AssertionError("no final answer")


def test_stream_equals_plain_answer() -> None:
    reply = "Gemma は2024年2月21日に公開された。[1]"
    plain = asyncio.run(answerer(reply).ask("Gemma はいつ公開された？"))
    deltas, final = asyncio.run(collect(answerer(reply), "Gemma はいつ公開された？"))
    assert "".join(deltas) == reply and len(deltas) > 3
    assert final.answer == plain.answer and not final.abstained and final.cited == [1]
    assert (final.prompt_tokens, final.completion_tokens) == (50, 9)
    assert {"retrieve_ms", "generate_ms", "verify_ms", "total_ms", "first_token_ms"} <= set(
        final.timings
    )


def test_a_refusal_is_never_streamed_as_is() -> None:
    deltas, final = asyncio.run(collect(answerer("NOT_FOUND"), "Gemma のライセンスは？"))
    assert final.abstained and final.reason == "model_refused"
    assert deltas == [final.answer] and "NOT_FOUND" not in "".join(deltas)


def test_a_refusal_is_read_again_without_the_refusal_rule_and_the_checks_decide() -> None:
    reply = "Gemma は2024年2月21日に公開された。[1]"
    question = "Gemma はいつ公開された？"
    plain = asyncio.run(answerer(reply, shy=True).ask(question))
    deltas, streamed = asyncio.run(collect(answerer(reply, shy=True), question))
    for final in (plain, streamed):
        assert not final.abstained and final.answer == reply
        assert final.signals["retried"] == 1.0
        assert (final.prompt_tokens, final.completion_tokens) == (100, 18)  # both readings
    assert "".join(deltas) == reply  # nothing of the refusal went out
    off = asyncio.run(answerer(reply, shy=True, retry_refusals=False).ask(question))
    assert off.abstained and off.reason == "model_refused" and off.signals["retried"] == 0.0
    # a second reading the checks do not back is withdrawn like any answer
    wrong = asyncio.run(answerer("Gemma は1999年に公開された。[1]", shy=True).ask(question))
    assert wrong.abstained and wrong.reason == "unsupported" and wrong.signals["retried"] == 1.0


def test_a_named_thing_no_source_mentions_is_refused_without_asking_the_model() -> None:
    broken = answerer("x", status=500)  # would raise if it were asked
    deltas, final = asyncio.run(collect(broken, "Gemma 3 はいつ公開された？"))
    assert final.abstained and final.reason == "missing_term" and final.cited == []
    assert deltas == [final.answer] and "「Gemma 3」" in final.answer
    plain = asyncio.run(broken.ask("Gemma 3 はいつ公開された？"))
    assert plain.reason == "missing_term" and plain.passages  # the closest passages stay
    off = Answerer(Settings(abstain_on_missing_terms=False), FakeRetriever(), fake_llm("NOT_FOUND"))  # type: ignore[arg-type]
    assert asyncio.run(off.ask("Gemma 3 はいつ公開された？")).reason == "model_refused"


def test_an_unsupported_answer_is_withdrawn_and_final_says_so() -> None:
    deltas, final = asyncio.run(collect(answerer("Llama 3 は Meta が 2025年に出した。[1]"), "Q?"))
    assert "Meta" in "".join(deltas)  # streamed as it came...
    assert final.abstained and final.reason == "unsupported"  # ...but withdrawn at the end
    assert final.checks and not final.checks[0].supported


@pytest.mark.parametrize("status", [500, 401])
def test_llm_faults_are_one_error_type(status: int) -> None:
    with pytest.raises(LLMUnavailableError, match=f"answered {status}"):
        asyncio.run(answerer("x", status).ask("Gemma?"))
    with pytest.raises(LLMUnavailableError):
        asyncio.run(collect(answerer("x", status), "Gemma?"))


class StallingStream(httpx.AsyncByteStream):
    """A streamed reply that sends one piece, then times out reading the next."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        delta = {"index": 0, "delta": {"content": "Gemma "}, "finish_reason": None}
        piece = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
                 "choices": [delta]}  # fmt: skip
        yield f"data: {json.dumps(piece)}\n\n".encode()
        raise httpx.ReadTimeout("read timed out")


def test_a_timeout_in_the_middle_of_a_stream_is_the_llm_s_fault() -> None:
    """The SDK lets httpx's own errors through mid-stream; they must not pass for a store
    fault (the API maps bare transport errors to qdrant_unavailable)."""
    transport = httpx.MockTransport(
        lambda _: httpx.Response(
            200, stream=StallingStream(), headers={"content-type": "text/event-stream"}
        )
    )
    llm = AsyncOpenAI(
        base_url="http://fake/v1", api_key="k", http_client=httpx.AsyncClient(transport=transport)
    )
    stalled = Answerer(Settings(llm_timeout_s=7), FakeRetriever(), llm)  # type: ignore[arg-type]
    with pytest.raises(LLMUnavailableError, match=r"timed out after 7 s \(SHIORI_LLM_TIMEOUT_S\)"):
        asyncio.run(collect(stalled, "Gemma?"))


def test_a_term_the_first_search_missed_is_looked_up_on_its_own() -> None:
    """A Japanese question can bury an English term; a passage that names it is fetched."""
    found = asyncio.run(
        answerer("Chain-of-thought prompting was shown by Wei and colleagues at Google.[2]").ask(
            "Chain-of-thought を2022年に示したのは誰か。"
        )
    )
    assert [p.chunk.text for p in found.passages] == [NOTE, COT]
    assert not found.abstained and found.cited == [2], found


def test_sse_framing_round_trips() -> None:
    events = event({"text": "一行目\n二行目"}, "delta") + event({"answer": "a"}, "final")
    parsed = list(parse_sse(iter(events.splitlines())))
    assert parsed == [("delta", {"text": "一行目\n二行目"}), ("final", {"answer": "a"})]
    assert event("[DONE]") == "data: [DONE]\n\n"


def test_adjacent_chunks_of_a_section_merge_without_repeating_the_overlap() -> None:
    first = passage("A は B である。C は D である。", 0, (1, 2))
    second = passage("C は D である。E は F である。", 1, (2, 3))
    other = passage("別の節。", 5, (9, 9))
    merged = merge_adjacent([second, other, first])
    assert [p.chunk.text for p in merged] == [
        "A は B である。C は D である。E は F である。",
        "別の節。",
    ]
    assert (merged[0].chunk.line_start, merged[0].chunk.line_end) == (1, 3)
    packed = pack(
        [first, other],
        budget_tokens=len(first.chunk.text),
        count_tokens=FakeEmbedder().count_tokens,
    )
    assert [p.chunk.text for p in packed] == [first.chunk.text]  # the best always; then what fits


# Copies of a note (one passage at two paths) are dropped once, at retrieval: by the store
# within a search (`NoteIndex.hybrid_query`, ``distinct``) and by the rescue across
# searches (tests/unit/rag/test_retrieve.py); packing takes distinct passages and no longer
# checks again (tests/integration/test_retrieval_once.py: the same prompts as before).


def test_a_joined_passage_is_cited_by_the_chunk_that_holds_the_evidence() -> None:
    # two chunks of one section with lines between them that are not in the index (hidden HTML)
    first = passage("GELU は滑らかな関数である。", 0, (9, 9))
    second = passage("GELU は BERT で使われている。", 1, (13, 13))
    (joined,) = merge_adjacent([first, second])
    assert [c.line_start for c in joined.parts] == [9, 13]
    smooth, bert = first.chunk.text, second.chunk.text
    lines = {s.text: (s.line_start, s.line_end) for s in source_sentences([joined])}
    assert lines == {smooth: (9, 9), bert: (13, 13)}
    shown = citation_json(1, joined, [bert])
    assert shown["lines"] == [13, 13] and shown["text"] == bert
    both = citation_json(1, joined, [smooth, bert])
    assert both["lines"] == [9, 13] and both["text"] == joined.chunk.text
