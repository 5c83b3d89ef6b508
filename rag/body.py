"""Reading an answer's JSON body (`rag.answer.Answer.to_json`: the body of `/v1/ask`, of
`shiori ask --json` and of an evaluation record) the same way everywhere it is shown. Light on
purpose: clients of the HTTP API import it without loading the answer engine."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def shown_passages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The passages to show with an answer body (`Answer.to_json`): its citations, or for an
    abstention the closest passages (``contexts``)."""
    shown: list[dict[str, Any]] = body["contexts"] if body["abstained"] else body["citations"]
    return shown


def supported_evidence(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The evidence sentences (``n``, ``source``, ``lines``, ``text``) of an answer body's
    supported sentences, in answer order; none for an abstention."""
    if body["abstained"]:
        return []
    return [
        e for s in body.get("sentences", []) if s.get("supported") for e in s.get("evidence", [])
    ]


def line_span(start: int, end: int) -> str:
    """Lines as an editor shows them: ``12`` for one line, ``12-15`` for a range."""
    return f"{start}" if start == end else f"{start}-{end}"
