"""Fit the retrieved passages into the prompt's token budget, best first.

Neighbouring chunks of one section overlap by design (the chunker repeats a few sentences), so
when two retrieved chunks are adjacent in the same section they are joined into one passage
with the repeated text once: the model reads the section as written, the prompt is shorter,
and the citation spans both line ranges. Passages far below the best one's fused score are
left out (on JSQuAD a cut at half the best score kept recall at 0.972 with 3.05 passages on
average instead of 4; `python bench/retrieval_jsquad.py`). The rest are kept in rank order while
they fit the budget (the best one always).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from rag.retrieve import Passage
from shiori.chunk import Chunk, InstructionSpan


def _joined(first: str, second: str) -> str:
    """``first`` followed by ``second`` without the text they share (suffix == prefix)."""
    return _join(first, second)[0]


def _join(first: str, second: str) -> tuple[str, int]:
    """(joined text, offset in it where ``second`` begins: negative where they overlap)."""
    for k in range(min(len(first), len(second)), 0, -1):
        if first.endswith(second[:k]):
            return first + second[k:], len(first) - k
    return f"{first}\n{second}", len(first) + 1


def _spans(lo: Chunk, hi: Chunk, hi_text_start: int, shift: int) -> tuple[InstructionSpan, ...]:
    """Both chunks' flagged spans as offsets into the joined text: a flagged piece of the later
    chunk stays flagged in the merged passage (a flagged passage never supports an answer)."""
    moved = [
        InstructionSpan(
            max(s.start, hi_text_start) - hi_text_start + shift,
            s.end - hi_text_start + shift,
            s.reason,
        )
        for s in hi.instruction_spans
        if s.end > hi_text_start
    ]
    return tuple(dict.fromkeys([*lo.instruction_spans, *moved]))


def _lead(chunk: Chunk) -> int:
    return chunk.lead_chars + 1 if chunk.lead_chars else 0


def _adjacent(a: Passage, b: Passage) -> bool:
    x, y = a.chunk, b.chunk
    return (
        x.path == y.path
        and x.generation == y.generation
        and x.headings == y.headings
        and abs(x.chunk_index - y.chunk_index) == 1
    )


def merge_adjacent(passages: Sequence[Passage]) -> list[Passage]:
    """Join adjacent chunks of one section; a merged passage takes the better one's place."""
    merged: list[Passage] = []
    for passage in passages:
        for i, kept in enumerate(merged):
            if _adjacent(kept, passage):
                lo, hi = sorted((kept, passage), key=lambda p: p.chunk.chunk_index)
                # the later chunk's repeated table header is already in the earlier one
                text, shift = _join(lo.chunk.text, hi.chunk.text[_lead(hi.chunk) :])
                chunk = replace(
                    lo.chunk,
                    text=text,
                    instruction_spans=_spans(lo.chunk, hi.chunk, _lead(hi.chunk), shift),
                    line_end=max(lo.chunk.line_end, hi.chunk.line_end),
                    char_end=max(lo.chunk.char_end, hi.chunk.char_end),
                    chunk_index=lo.chunk.chunk_index,
                )
                merged[i] = replace(
                    kept,
                    chunk=chunk,
                    parts=(*(lo.parts or (lo.chunk,)), *(hi.parts or (hi.chunk,))),
                    similarity=max(kept.similarity, passage.similarity),
                    term_overlap=max(kept.term_overlap, passage.term_overlap),
                )
                break
        else:
            merged.append(passage)
    return merged


def pack(
    passages: Sequence[Passage],
    budget_tokens: int,
    count_tokens: Callable[[Sequence[str]], list[int]],
    min_relative_score: float = 0.0,
) -> list[Passage]:
    """Merged passages in rank order while their texts fit ``budget_tokens``, leaving out
    those whose fused score is below ``min_relative_score`` times the best one's. ``passages``
    have distinct texts already (`rag.retrieve`: copies are dropped once, at retrieval)."""
    if passages and min_relative_score > 0:
        floor = min_relative_score * max(p.score for p in passages)
        passages = [p for p in passages if p.score >= floor]
    merged = merge_adjacent(passages)
    costs = count_tokens([p.chunk.text for p in merged])
    packed: list[Passage] = []
    used = 0
    for passage, cost in zip(merged, costs, strict=True):
        if packed and used + cost > budget_tokens:
            continue  # a smaller, lower-ranked one may still fit
        packed.append(passage)
        used += cost
    return packed
