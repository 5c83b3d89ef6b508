"""Shorter prompts: the model reads the sentences that bear on the question, not whole chunks.

Opt-in (`SHIORI_PROMPT_FOCUS`), not the default: measured on the bundled golden set in one
session (`shiori eval run --ingest notes/ --start-llm`, bf16, 2026-12-07) it cut the prompt from
1,386 to 1,084 tokens on average and left p50 where it was (8.18 against 8.25 s; generation,
not the prompt, is most of an answer on this CPU), while answering 2 questions more wrongly
from what was left around the cut (hallucination 0.012 → 0.036; docs/benchmarks.md).

A chunk is a section of a note (up to ~320 embedding tokens) and the prompt carries up to six of
them, so most of what the model reads before it writes is unrelated to the question; on this CPU
the prompt's prefill is a large part of the time to the first token (`make bench-answer`).

Every sentence of the prompt's passages (`ingest.chunking.sentence_spans`: sentences, list
items, table rows) is scored by the question's terms it holds (`terms.question_terms`, found as
`terms.occurs` finds them), together with the terms of its passage's heading path and note
title (a sentence under "BERT > Masked LM" is about BERT without saying so). A term counts by
its inverse sentence frequency among the prompt's sentences, log(1 + N / n) (the BM25 family's
IDF, Robertson & Zaragoza 2009): "BERT" in 3 of 60 sentences outweighs "トークン" in 25. A
sentence is shown when it holds a question term itself and scores at least `KEEP_SHARE` of
the best sentence's score, with `WINDOW` sentence on either side (the one before often names the
subject, the one after completes a list) and a table's header rows with any of its rows; what
is left out is marked "…", and a passage none of whose sentences is shown keeps its label and
first sentence (what it is about).

Nothing is cut when no sentence holds a question term (a paraphrase: the lexical cue is
missing, not the answer), nor from a passage in another language than the question (a name
matches across languages, the words around it do not: "At which conference was LoRA
accepted?" holds no term of "ICLR 2022 で採択"), nor from a passage of at most `MIN_UNITS`
sentences whose own text holds a question term. The passages themselves — what is
cited, aligned to and checked — are unchanged, and the second reading after a refusal shows
them whole (`rag.answer.Answerer.prepare`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ingest.chunking import Span, sentence_spans
from rag.terms import Haystack, Term, occurs, question_terms, script_of

MIN_UNITS = 2  # a passage of at most this many sentences that holds a term is shown whole
WINDOW = 1  # sentences shown on either side of one that is kept
KEEP_SHARE = 0.5  # of the best sentence's score, for a sentence to be kept
ELIDED = "…"


@dataclass(frozen=True)
class Shown:
    """One passage of the prompt: its text as it will be shown, and its label's text (heading
    path and note title) that says what its sentences are about."""

    text: str
    label: str


def _table_heads(text: str, units: Sequence[Span]) -> dict[int, list[int]]:
    """For each unit that is a table row: its table's first two rows (header, delimiter)."""
    heads: dict[int, list[int]] = {}
    run: list[int] = []
    for i, unit in enumerate(units):
        if text.startswith("|", unit.start):
            run.append(i)
            heads[i] = run[:2]
        else:
            run = []
    return heads


def _render(text: str, units: Sequence[Span], keep: set[int]) -> str:
    if len(keep) == len(units):
        return text
    out: list[str] = []
    last = -1
    for i in sorted(keep):
        unit = units[i]
        if last < 0:
            if i > 0:
                out.append(ELIDED + "\n")
        elif i == last + 1:
            out.append(text[units[last].end : unit.start])  # what is between, as written
        else:
            gap = text[units[last].end : unit.start]
            out.append(f"\n{ELIDED}\n" if "\n" in gap else f" {ELIDED} ")
        out.append(text[unit.start : unit.end])
        last = i
    if last < len(units) - 1:
        out.append("\n" + ELIDED)
    return "".join(out)


def focus_all(passages: Sequence[Shown], question: str) -> list[str]:
    """The text to show of each passage (same order; see the module's docstring). Returns the
    texts unchanged when the question has no terms or no sentence holds one."""
    wanted: list[Term] = question_terms(question)
    texts = [p.text for p in passages]
    if not wanted:
        return texts
    units = [sentence_spans(t, 0, len(t)) for t in texts]
    labels = [{t.key for t in wanted if occurs(t, Haystack.of(p.label))} for p in passages]
    held: list[list[set[str]]] = [
        [{t.key for t in wanted if occurs(t, Haystack.of(text[u.start : u.end]))} for u in us]
        for text, us in zip(texts, units, strict=True)
    ]
    total = sum(len(us) for us in units)
    if not any(h for hs in held for h in hs) or total == 0:
        return texts
    frequency = {
        t.key: sum(t.key in (h | label) for hs, label in zip(held, labels, strict=True) for h in hs)
        for t in wanted
    }
    weight = {k: math.log(1 + total / n) if n else 0.0 for k, n in frequency.items()}
    scores = [
        [sum(weight[k] for k in h | label) if h else 0.0 for h in hs]
        for hs, label in zip(held, labels, strict=True)
    ]
    best = max(s for ss in scores for s in ss)
    shown = []
    asked_in = script_of(question)
    for text, us, ss in zip(texts, units, scores, strict=True):
        hits = [i for i, s in enumerate(ss) if s > 0 and s >= KEEP_SHARE * best]
        if (any(ss) and len(us) <= MIN_UNITS) or script_of(text) != asked_in:
            shown.append(text)
            continue
        keep: set[int] = set()
        for i in hits:
            keep.update(range(max(0, i - WINDOW), min(len(us), i + WINDOW + 1)))
        heads = _table_heads(text, us)
        keep.update(h for i in list(keep) for h in heads.get(i, ()))
        if not keep and us:
            keep = {0}
        shown.append(_render(text, us, keep) if us else text)
    return shown


def focus(text: str, question: str) -> str:
    """One passage's text focused on ``question`` on its own (`focus_all` of one)."""
    return focus_all([Shown(text, "")], question)[0]
