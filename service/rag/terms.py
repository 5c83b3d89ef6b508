"""Specific terms: the names a question asks about that a passage must mention to answer it.

A model with its version (Gemma 3, GPT-4, Mistral 7B, Claude 3.5), an identifier with two or
more capitals (DDIM, JSQuAD, LoRA) and a hyphenated compound (top-k, tree-of-thoughts). Notes,
Japanese ones included, write these in Latin letters, so a passage either mentions one (spaces,
hyphens, width and case aside) or is about something else: asked about "Gemma 3" with passages
on Gemma and Gemma 2 only, the model answers with their facts.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.rag.retrieve import Passage

_SPECIFIC = (
    re.compile(r"(?<![\w.])[A-Z][A-Za-z]+[ -]?\d+(?:\.\d+)?[BMK]?(?![\w.])"),
    re.compile(r"(?<![\w-])[A-Za-z]*[A-Z][a-z]*[A-Z][A-Za-z0-9]*(?!\w)"),
    re.compile(r"(?<![\w-])[A-Za-z]+(?:-[A-Za-z]+)+(?![\w-])"),
)
_MONTHS = {"January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"}  # fmt: skip
_UNITS = {"KB", "MB", "GB", "TB", "PB", "GHz", "MHz", "FLOPs", "TFLOPs", "PFLOPs"}
_FOLD = re.compile(r"[\s\-_・]+")


def folded(text: str) -> str:
    """Width, case, spaces and hyphens folded: "Gemma 3" ~ "gemma3", "top-k" ~ "Top K"."""
    return _FOLD.sub("", unicodedata.normalize("NFKC", text).lower())


def specific_terms(question: str) -> list[str]:
    text = unicodedata.normalize("NFKC", question)
    found: list[str] = []
    taken: list[range] = []  # "GPT" inside "GPT-4" is not a term of its own
    for pattern in _SPECIFIC:
        for match in pattern.finditer(text):
            term, span = match.group(0), range(*match.span())
            first = re.split(r"[ -]", term)[0]
            if first in _MONTHS or term in _UNITS or term in found:
                continue
            if any(span.start < t.stop and t.start < span.stop for t in taken):
                continue
            found.append(term)
            taken.append(span)
    return found


def missing_terms(question: str, passages: Sequence[Passage]) -> list[str]:
    """The question's specific terms that no passage (text, heading or title) mentions."""
    terms = specific_terms(question)
    if not terms:
        return []
    haystack = " ".join(_searchable(p) for p in passages)
    return [t for t in terms if folded(t) not in haystack]


def mentions(passage: Passage, term: str) -> bool:
    return folded(term) in _searchable(passage)


def _searchable(passage: Passage) -> str:
    c = passage.chunk
    return folded(f"{c.title} {c.heading} {c.text}")
