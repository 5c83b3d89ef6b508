"""Long tables in the prompt: the header and the rows the question names.

Measured on the CPU model (Qwen2.5-Coder-1.5B, `../shared/cases/ingest/05`: a 40-row study log
whose numeric columns all hold values between 55 and 98): given the header and 25 rows it read
"第37週の学習時間" as 75 (another row's cell) and refused "小テスト"; given the header and
the one row that names 第37週 it answered all six week/column questions tried right (6 of 6,
against 2 of 5 with whole tables, and 1 of 5 with rows written as "column: value" pairs). So a
table with many rows is shown to the model as its header rows plus the rows holding one of the
question's terms, and a line saying how many rows were left out. The passage itself (what is
cited, aligned to and checked) is unchanged.
"""

from __future__ import annotations

import re
from functools import cache

from markdown_it import MarkdownIt

from rag.terms import Haystack, Term, occurs, question_terms

MIN_ROWS = 8  # a table with fewer data rows is shown whole
MAX_SHARE = 0.5  # rows named by the question: at most this share of the table, else all


@cache
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table")


def _bodies(text: str) -> list[tuple[int, int]]:
    """(first data line, end line) of each table, 0-based, end exclusive."""
    found = []
    tokens = _parser().parse(text)
    for i, token in enumerate(tokens):
        if token.type != "table_open" or token.map is None:
            continue
        end = token.map[1]
        body = next(
            (t.map[0] for t in tokens[i:] if t.type == "tbody_open" and t.map is not None), end
        )
        found.append((body, end))
    return found


def _names(term: Term, row: str) -> bool:
    if term.kind == "number":  # a whole number: week 8 is not in 58, 89 nor 8.5
        return re.search(rf"(?<![\d.,]){re.escape(term.text)}(?![\d]|[.,]\d)", row) is not None
    return occurs(term, Haystack.of(row))


def focus_tables(text: str, question: str) -> str:
    """``text`` with each table of at least `MIN_ROWS` data rows cut to its header rows and the
    rows that hold one of ``question``'s terms (`terms.question_terms`), when those are at most
    `MAX_SHARE` of its rows; a line "… (N other rows)" marks the cut. Any other text, and a table
    no row of which is named, is returned as it is."""
    wanted = question_terms(question)
    if not wanted or "|" not in text:
        return text
    lines = text.split("\n")
    cuts: list[tuple[int, int, list[str]]] = []
    for body, end in _bodies(text):
        rows = lines[body:end]
        if len(rows) < MIN_ROWS:
            continue
        named = [row for row in rows if any(_names(t, row) for t in wanted)]
        if not named or len(named) > MAX_SHARE * len(rows):
            continue
        left_out = len(rows) - len(named)
        cuts.append((body, end, [*named, f"… ({left_out} other rows of this table)"]))
    for body, end, kept in reversed(cuts):
        lines[body:end] = kept
    return "\n".join(lines)
