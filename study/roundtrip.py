"""The round trip: an item is kept only if Shiori's own answer path gives it back.

Each candidate's question is asked through `rag.answer.Answerer.ask` over the whole store (no
filter: a question that another note answers differently is caught here), and the item is kept
when the answer

- is not an abstention (so every check of the answer path, the grounding verifier included,
  accepted its sentences),
- contains the expected answer (both in `study.items.fold` form: width, case and spaces aside),
- and cites the evidence's note with lines that overlap the evidence's lines.

What was checked and the answer given are recorded in the item's `study.items.Check`. The model
is asked once per candidate, one at a time (a CPU vLLM serves one request well at a time).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from study.items import Check, StudyItem, fold

if TYPE_CHECKING:
    from rag.answer import Answerer

_MARKER = re.compile(r"\[\d+\]")
METHOD = "roundtrip: Answerer.ask over the whole store; not abstained, answer contained, cites "
METHOD += "the evidence's note and lines"


def _overlaps(a: Sequence[int], b: Sequence[int]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def judge(item: StudyItem, body: dict[str, Any], seconds: float = 0.0) -> Check:
    """The check of ``item`` against an answer body (`rag.answer.Answer.to_json`'s shape:
    ``answer``, ``abstained``, ``reason``, ``citations`` with ``source`` and ``lines``,
    ``sentences`` with ``verifier``)."""
    text = _MARKER.sub("", body.get("answer", ""))
    abstained = bool(body.get("abstained", True))
    citations = tuple(
        {"source": c["source"], "lines": list(c["lines"])} for c in body.get("citations", [])
    )
    contains = not abstained and fold(item.answer) in fold(text)
    cites = not abstained and any(
        c["source"] == item.source and _overlaps(c["lines"], item.lines) for c in citations
    )
    scores = [s["verifier"] for s in body.get("sentences", []) if s.get("verifier") is not None]
    return Check(
        method=METHOD,
        kept=not abstained and contains and cites,
        answer=body.get("answer", ""),
        abstained=abstained,
        reason=str(body.get("reason", "")),
        contains_answer=contains,
        cites_evidence=cites,
        citations=citations,
        verifier=round(min(scores), 4) if scores else None,
        seconds=round(seconds, 3),
    )


async def check(answerer: Answerer, item: StudyItem) -> StudyItem:
    """``item`` with its `Check`: its question asked through ``answerer`` over the whole store.
    Raises `rag.answer.LLMUnavailableError` when the model does not answer."""
    began = time.perf_counter()
    answer = await answerer.ask(item.question)
    return replace(item, check=judge(item, answer.to_json(), time.perf_counter() - began))


@dataclass
class Quiz:
    """What a quiz run made: ``items`` (kept, in drawing order), ``checked`` (every candidate
    asked, kept or not, with its check), ``candidates`` (how many were drawn), ``drawn``
    (candidates per note), ``seconds`` (wall time of the checks)."""

    items: list[StudyItem] = field(default_factory=list)
    checked: list[StudyItem] = field(default_factory=list)
    candidates: int = 0
    drawn: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def per_note(self) -> dict[str, dict[str, int]]:
        """{source: {"candidates", "checked", "kept"}} of every note drawn from."""
        checked = Counter(i.source for i in self.checked)
        kept = Counter(i.source for i in self.items)
        return {
            s: {"candidates": self.drawn.get(s, 0), "checked": checked[s], "kept": kept[s]}
            for s in sorted(set(self.drawn) | set(checked) | set(kept))
        }

    def to_json(self) -> dict[str, Any]:
        """``items`` (kept), counts, ``seconds`` and ``notes`` (`per_note`)."""
        return {
            "items": [i.to_json() for i in self.items],
            "candidates": self.candidates,
            "checked": len(self.checked),
            "kept": len(self.items),
            "seconds": round(self.seconds, 2),
            "notes": self.per_note(),
        }


async def quiz(
    answerer: Answerer | None,
    candidates: Sequence[StudyItem],
    n: int | None = None,
    on_checked: Callable[[StudyItem], None] | None = None,
) -> Quiz:
    """Check ``candidates`` in order until ``n`` are kept (all of them when None). With
    ``answerer`` None nothing is asked: the first ``n`` candidates are returned unchecked
    (``check`` None). ``on_checked`` is called after each candidate is asked (progress).
    Raises `rag.answer.LLMUnavailableError` when the model does not answer."""
    result = Quiz(candidates=len(candidates), drawn=dict(Counter(i.source for i in candidates)))
    if answerer is None:
        result.items = list(candidates[:n] if n is not None else candidates)
        return result
    began = time.perf_counter()
    for item in candidates:
        if n is not None and len(result.items) >= n:
            break
        done = await check(answerer, item)
        result.checked.append(done)
        if done.check is not None and done.check.kept:
            result.items.append(done)
        if on_checked is not None:
            on_checked(done)
    result.seconds = time.perf_counter() - began
    return result
