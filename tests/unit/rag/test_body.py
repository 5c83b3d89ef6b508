"""Reading an answer body the same way in the CLI, the OpenAI facade, MCP and the eval report."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from rag.body import line_span, shown_passages, supported_evidence


def passage(n: int) -> dict[str, Any]:
    return {"n": n, "source": f"notes/{n}.md", "heading": "", "lines": [n, n + 2], "text": "…"}


def evidence(n: int, text: str) -> dict[str, Any]:
    return {"n": n, "source": f"notes/{n}.md", "lines": [n, n], "text": text}


def body(abstained: bool) -> dict[str, Any]:
    return {
        "abstained": abstained,
        "citations": [] if abstained else [passage(2)],
        "contexts": [passage(1), passage(2), passage(3)],
        "sentences": [
            {"supported": True, "evidence": [evidence(2, "kept")]},
            {"supported": False, "evidence": [evidence(1, "not shown: unsupported")]},
            {"supported": True, "evidence": [evidence(2, "kept too"), evidence(3, "and this")]},
        ],
    }


def test_an_answer_shows_what_it_cites_and_an_abstention_the_closest_passages() -> None:
    assert [p["n"] for p in shown_passages(body(abstained=False))] == [2]
    assert [p["n"] for p in shown_passages(body(abstained=True))] == [1, 2, 3]


def test_evidence_comes_from_supported_sentences_only_in_answer_order() -> None:
    texts = [e["text"] for e in supported_evidence(body(abstained=False))]
    assert texts == ["kept", "kept too", "and this"]
    assert supported_evidence(body(abstained=True)) == []
    assert supported_evidence({"abstained": False, "citations": []}) == []  # retrieval-only


@given(st.integers(1, 10_000), st.integers(0, 50))
def test_line_spans_read_back_to_their_lines(start: int, extra: int) -> None:
    span = line_span(start, start + extra)
    first, _, last = span.partition("-")
    assert (int(first), int(last or first)) == (start, start + extra)
    assert ("-" in span) == (extra > 0)
