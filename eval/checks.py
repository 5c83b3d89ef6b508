"""Answer checks written from text: the specific content a correct answer must state.

Feedback (`service.feedback`: a thumbs up or a correction) and golden sets drawn from the notes
(`eval.generate`) both turn a text into ``must_contain`` entries (see `eval.dataset`): its
numbers, names, katakana words and quoted phrases (`rag.terms.content_terms`, the same terms
the answer checks verify against the evidence), not the whole text, so that a correct answer
worded otherwise still passes.
"""

from __future__ import annotations

from eval.metrics import fold, strip_markers
from rag.terms import content_terms

MAX_CHECKS = 6  # must_contain / must_not_contain entries taken from one text


def specific_content(text: str, question: str) -> list[str | list[str]]:
    """The numbers, names, katakana words and quoted phrases ``text`` states beyond what the
    question already says: what an answer check should look for. A number of four digits or
    more may be written either way (8192 | 8,192), so it comes as a list of both (a year stays
    as it is)."""
    found: list[str | list[str]] = []
    seen: set[str] = set()
    for term in content_terms(strip_markers(text), question):
        if fold(term.text) in seen:
            continue
        seen.add(fold(term.text))
        # ASCII digits of a number one could group (int() refuses 4300+ digits)
        digits = term.kind == "number" and term.text.isascii() and term.text.isdigit()
        digits = digits and len(term.text) <= 30
        grouped = f"{int(term.text):,}" if digits else term.text
        year = digits and 1000 <= int(term.text) <= 2100 and grouped not in text
        if grouped != term.text and not year:
            found.append([term.text, grouped])
        else:
            found.append(term.text)
    return found[:MAX_CHECKS]
