"""Judge a run's stored model outputs again with today's checks, without asking the model.

Every record of a run keeps the model's own text (``draft``) and the passages it was given
(``contexts``), so the post-generation decision (`rag.verdict.Verifier`) can be
replayed on them: a change to a check or a threshold is measured on a whole golden set in
seconds. Questions refused before generation (weak evidence, a missing term) have no draft
and stay as they were; retrieval is not replayed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eval.dataset import GoldenItem
from eval.runner import record_of, score_item
from rag.answer import Answer, signals
from rag.prompt import language_of
from rag.retrieve import Passage
from rag.verdict import Verifier
from shiori.chunk import Chunk

GATES = ("weak_evidence", "missing_term")  # decided before the model was asked
RETRIEVAL_SIGNALS = ("best_similarity", "best_term_overlap", "missing_terms")


def passages_of(record: dict[str, Any]) -> list[Passage]:
    """The passages a record's model output was given, rebuilt from its stored contexts."""
    out = []
    for c in record["contexts"]:
        headings = [h for h in (c.get("heading") or "").split(" > ") if h]
        chunk = Chunk(
            path=c["source"],
            source=c["source"],
            title=c.get("title") or (headings[0] if headings else ""),
            headings=headings,
            line_start=c["lines"][0],
            line_end=c["lines"][1],
            char_start=0,
            char_end=len(c["text"]),
            text=c["text"],
            chunk_index=c["n"],
            content_hash="",
        )
        out.append(
            Passage(
                chunk=chunk,
                score=c.get("score") or 0.0,
                similarity=c.get("similarity") or 0.0,
                term_overlap=0.0,
            )
        )
    return out


def replay(
    records: Sequence[dict[str, Any]], items: dict[str, GoldenItem], verifier: Verifier
) -> list[dict[str, Any]]:
    """``records`` judged again by ``verifier`` and scored against ``items`` (by id; a record
    whose id is not there keeps the item it was asked with)."""
    out = []
    for old in records:
        fields = {k: old[k] for k in GoldenItem.model_fields if k in old}
        item = items.get(old["id"]) or GoldenItem.model_validate(fields)
        if old.get("answer") is None or old.get("draft") is None or old["reason"] in GATES:
            out.append({**old, **item.model_dump(), "metrics": score_item(item, old)})
            continue
        passages = passages_of(old)
        verdict = verifier.judge(item.question, old["draft"], passages, language_of(item.question))
        answer = Answer(
            question=item.question,
            answer=verdict.answer,
            abstained=verdict.abstained,
            reason=verdict.reason,
            passages=passages,
            cited=verdict.cited,
            checks=verdict.checks,
            invalid_markers=verdict.invalid_markers,
            model=old.get("model", "?"),
            timings=old.get("timings", {}),
            draft=old["draft"],
            subject=verdict.subject,
        )
        answer.signals = signals(answer)
        for name in RETRIEVAL_SIGNALS:  # passages rebuilt from JSON lack what these need
            if name in old.get("signals", {}):
                answer.signals[name] = old["signals"][name]
        record = record_of(item, answer.to_json(), old.get("retrieved", []), answer.model)
        record["usage"], record["judge"] = old.get("usage", {}), old.get("judge")
        record["metrics"] = score_item(item, record)
        out.append(record)
    return out
