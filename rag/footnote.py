"""What Shiori writes under an answer given as chat text (the OpenAI facade,
`service.routes.chat`), and how that text is taken out again when a chat UI sends the answer
back as history (`rag.conversation`). One format, written and read here.

The text under an answer is made of blocks, each after a blank line and a label: ``Question
answered: …`` (a follow-up that was rewritten), ``Sources:`` (each evidence sentence with its
note and lines) or ``Closest passages:`` (an abstention), and, when a streamed draft was
withdrawn or its citations repaired, ``Checked answer: …`` before the sources.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from rag.body import line_span

if TYPE_CHECKING:  # reading chat text (`rag.conversation`) loads no more of the engine
    from rag.passage import Passage
    from rag.verify import SentenceCheck


class Asked(Protocol):
    """A rewritten follow-up (`rag.conversation.Rewrite`): the message and what it asks."""

    @property
    def message(self) -> str: ...
    @property
    def question(self) -> str: ...


class Shown(Protocol):
    """What the footnote reads of an answer (`rag.answer.Answer`, which imports
    `rag.conversation`, which reads footnotes: hence a protocol, not the class)."""

    @property
    def question(self) -> str: ...
    @property
    def answer(self) -> str: ...
    @property
    def abstained(self) -> bool: ...
    @property
    def rewrite(self) -> Asked | None: ...
    @property
    def checks(self) -> Sequence[SentenceCheck]: ...
    @property
    def passages(self) -> Sequence[Passage]: ...


SOURCES = "Sources"
CLOSEST = "Closest passages"
CHECKED = "Checked answer"
ASKED = "Question answered"
LABELS = (SOURCES, CLOSEST, CHECKED, ASKED)

_BLOCKS = re.compile(rf"\n\n(?:{'|'.join(map(re.escape, LABELS))}):.*", re.S)
_CHECKED = f"\n\n{CHECKED}: "


def footnote(answer: Shown) -> str:
    """The sources under the answer, as a chat UI shows them: for an answer, each evidence
    sentence with its own lines; for an abstention, the closest passages. A follow-up that was
    rewritten also says which question was answered. Empty when there is nothing to add;
    otherwise it starts with a blank line."""
    asked = ""
    if answer.rewrite is not None and answer.rewrite.question != answer.rewrite.message:
        asked = f"\n\n{ASKED}: {answer.question}"
    lines = []
    if not answer.abstained:
        for check in answer.checks:
            for e in check.evidence if check.supported else ():
                chunk = answer.passages[e.source - 1].chunk
                heading = f" — {chunk.heading}" if chunk.heading else ""
                where = line_span(e.line_start, e.line_end)
                lines.append(f"[{e.source}] {chunk.source}:{where}{heading}: “{e.text.strip()}”")
        lines = list(dict.fromkeys(lines))
    else:
        for n, passage in enumerate(answer.passages, 1):
            c = passage.chunk
            heading = f" — {c.heading}" if c.heading else ""
            lines.append(f"[{n}] {c.source}:{c.line_start}-{c.line_end}{heading}")
    if not lines:
        return asked
    label = CLOSEST if answer.abstained else SOURCES
    return asked + f"\n\n{label}:\n" + "\n".join(lines)


def restated(answer: Shown) -> str:
    """The answer again, after a streamed draft that differs from it (withdrawn, or its
    citations repaired): labelled ``Checked answer`` unless it is an abstention."""
    label = "" if answer.abstained else f"{CHECKED}: "
    return f"\n\n{label}{answer.answer}"


def without_footnote(text: str) -> str:
    """A chat answer's text as the model wrote it: the checked answer where a streamed draft
    was corrected, and none of the blocks `footnote` and `restated` add."""
    if _CHECKED in text:  # a streamed draft that was corrected: the checked answer counts
        text = text.split(_CHECKED, 1)[1]
    return _BLOCKS.sub("", text)
