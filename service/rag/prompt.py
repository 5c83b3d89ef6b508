"""The grounded prompt: numbered sources, rules, and the question, per model family.

Measured on this project's CPU model (RESEARCH 2b): an English instruction keeps the `[n]`
markers while a Japanese one loses them, so the rules are in English and only the requested
answer language changes. Models whose chat template has no system role (Gemma) get the rules
folded into the first user turn: a per-model option, not a special case elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum

from shiori.index import Chunk

NOT_FOUND = "NOT_FOUND"
_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")

RULES = """You answer questions about the user's study notes using ONLY the numbered sources.
Rules:
1. Use only facts written in the sources. Never add outside knowledge.
2. End every sentence with the number of its source in brackets, like [1] or [2][3].
3. If the sources do not contain the answer, reply with exactly: NOT_FOUND
4. Answer in {language}, briefly (one to three sentences)."""


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
) -> list[dict[str, str]]:
    """``answer_language`` ('ja' | 'en') defaults to the question's: a follow-up rewritten
    with a Japanese name in it is still answered in the language the user wrote in."""
    language = "Japanese" if (answer_language or language_of(question)) == "ja" else "English"
    sources = "\n\n".join(
        f"[{n}] {source_label(c)}\n{c.text.strip()}" for n, c in enumerate(chunks, 1)
    )
    user = f"Sources:\n{sources}\n\nQuestion: {question.strip()}"
    rules = RULES.format(language=language)
    if style is PromptStyle.FOLD:
        return [{"role": "user", "content": f"{rules}\n\n{user}"}]
    return [{"role": "system", "content": rules}, {"role": "user", "content": user}]
