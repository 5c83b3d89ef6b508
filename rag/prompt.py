"""The grounded prompt: numbered sources, rules, and the question, per model family.

Measured on this project's CPU models (Qwen2.5 1.5B and 0.5B Instruct on vLLM's CPU build, when
choosing the default): an English instruction keeps the `[n]` markers while a Japanese one
loses them, so the rules are in English and only the requested answer language changes. Models
whose chat template has no system role (Gemma) get the rules folded into the first user turn:
a per-model option, not a special case elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum

from rag.focus import Shown, focus_all
from rag.tables import focus_tables
from shiori.index import Chunk

NOT_FOUND = "NOT_FOUND"
_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")

RULES = """You answer questions about the user's study notes using ONLY the numbered sources.
Rules:
1. Use only facts written in the sources. Never add outside knowledge.
2. End every sentence with the number of its source in brackets, like [1] or [2][3].
3. If the sources do not contain the answer, reply with exactly: NOT_FOUND
4. Answer in {language}, briefly (one to three sentences)."""


# The second reading, after a refusal: the same sources, no way to refuse; the checks decide.
# Measured on the stored drafts of the bundled set and the JSQuAD near-miss set
# (bench/prompt_variants.py --variants answer, judged with the checks of issue 12): asked again
# only where the model said NOT_FOUND, coverage rose 0.583 → 0.683 (bundled, no new wrong answer)
# and 0.750 → 0.867 (near-miss, hallucination 0.100 → 0.125). docs/benchmarks.md has the table.
RETRY_RULES = """You answer questions about the user's study notes using ONLY the numbered sources.
Rules:
1. Find the sentence in the sources that answers the question and answer from it.
2. Use only facts written in the sources. Copy numbers, names and dates exactly as written.
3. End every sentence with the number of its source in brackets, like [1] or [2][3].
4. Answer in {language}, briefly (one or two sentences)."""


class PromptStyle(StrEnum):
    SYSTEM = "system"  # rules in a system message (Qwen, Llama)
    FOLD = "fold"  # no system role: rules open the first user message (Gemma)


def language_of(text: str) -> str:
    """'ja' when the text has any kana or kanji, else 'en'."""
    return "ja" if _JAPANESE.search(text) else "en"


def source_label(chunk: Chunk) -> str:
    where = f"{chunk.source}, lines {chunk.line_start}-{chunk.line_end}"
    heading = chunk.heading or chunk.title
    return f"{heading} ({where})"


def build_messages(
    question: str,
    chunks: Sequence[Chunk],
    style: PromptStyle = PromptStyle.SYSTEM,
    answer_language: str | None = None,
    may_refuse: bool = True,
    focused: bool = False,
) -> list[dict[str, str]]:
    """The chat messages for ``question`` over ``chunks`` ([n] = position + 1).
    ``answer_language`` ('ja' | 'en') defaults to the question's: a follow-up rewritten with a
    Japanese name in it is still answered in the language the user wrote in. With
    ``may_refuse`` the rules let the model reply NOT_FOUND; without, they are `RETRY_RULES`.
    With ``focused`` a long passage is shown as the sentences that bear on the question
    (`rag.focus`); long tables are always cut to the rows it names (`rag.tables`)."""
    language = "Japanese" if (answer_language or language_of(question)) == "ja" else "English"
    texts = [focus_tables(without_instructions(c), question) for c in chunks]
    if focused:
        texts = focus_all(
            [Shown(t, f"{c.heading}\n{c.title}") for t, c in zip(texts, chunks, strict=True)],
            question,
        )
    sources = "\n\n".join(
        f"[{n}] {source_label(c)}\n{t.strip()}"
        for n, (c, t) in enumerate(zip(chunks, texts, strict=True), 1)
    )
    user = f"Sources:\n{sources}\n\nQuestion: {question.strip()}"
    rules = (RULES if may_refuse else RETRY_RULES).format(language=language)
    if style is PromptStyle.FOLD:
        return [{"role": "user", "content": f"{rules}\n\n{user}"}]
    return [{"role": "system", "content": rules}, {"role": "user", "content": user}]


WITHHELD = "[…]"


def without_instructions(chunk: Chunk) -> str:
    """The chunk's text with each piece flagged at ingest as an instruction to the model
    (`Chunk.instruction_spans`) replaced by WITHHELD: notes are data, and a note that tells
    the assistant what to say must not reach the model as a source."""
    merged: list[list[int]] = []
    for span in sorted(chunk.instruction_spans, key=lambda s: s.start):
        if merged and span.start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], span.end)
        else:
            merged.append([span.start, span.end])
    text = chunk.text
    for start, end in reversed(merged):
        text = text[:start] + WITHHELD + text[end:]
    return text
