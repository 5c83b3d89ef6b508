"""A study item: a question, its answer, and the one evidence sentence of the notes it comes
from (note, heading path, lines), with how it was checked."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Kind = Literal["definition", "number", "date", "name", "contrast", "table"]
Language = Literal["ja", "en"]
KINDS: tuple[Kind, ...] = ("definition", "number", "date", "name", "contrast", "table")

_SPACES = re.compile(r"\s+")


def fold(text: str) -> str:
    """NFKC, case folding, all whitespace removed: the comparison form of answers
    ("２０２４ 年" ~ "2024年", "Facebook" ~ "facebook"). The same form as `eval.metrics.fold`
    (kept here because `study` sits below `eval` in the layers)."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", text).casefold())


def item_id(source: str, evidence: str, question: str) -> str:
    """A stable id: the first 16 hex digits of SHA-256 over the note's path as shown, the
    evidence sentence and the question. The same sentence of the same note (as ingest showed
    its path) gives the same id on every run, so re-exporting updates that card (its GUID);
    an edited sentence, or the note ingested under another path, gives a new one."""
    data = "\x00".join((source, evidence, question)).encode("utf-8")
    return hashlib.sha256(data).hexdigest()[:16]


@dataclass(frozen=True)
class Check:
    """How an item was checked by the round trip (`study.roundtrip`).

    ``kept``: all of the conditions below held. ``answer``: Shiori's answer text (markers
    left in); ``abstained``/``reason``: the answer path's outcome; ``contains_answer``: the
    folded expected answer occurs in the folded answer text; ``cites_evidence``: a citation
    names the evidence's note with lines overlapping the evidence's lines; ``citations``: each
    citation as ``{"source", "lines": [first, last]}``; ``verifier``: the lowest grounding
    verifier score over the answer's sentences (None: not scored); ``seconds``: wall time of
    the round trip."""

    method: str
    kept: bool
    answer: str
    abstained: bool
    reason: str
    contains_answer: bool
    cites_evidence: bool
    citations: tuple[dict[str, Any], ...] = ()
    verifier: float | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class StudyItem:
    """One question with its answer and evidence.

    ``evidence``: the sentence (or table row) the answer comes from, as written in the note;
    ``source``: the note as shown to people; ``heading``: its heading path (title first);
    ``lines``: first and last line of the evidence in the note (1-based, inclusive); ``page``:
    the PDF page, else None; ``language``: the note's language, which the question is asked
    in; ``check``: None until checked (`study.roundtrip`), or when checking was skipped."""

    id: str
    question: str
    answer: str
    evidence: str
    source: str
    heading: tuple[str, ...]
    lines: tuple[int, int]
    page: int | None
    language: Language
    kind: Kind
    check: Check | None = field(default=None, compare=False)

    @classmethod
    def make(
        cls,
        *,
        question: str,
        answer: str,
        evidence: str,
        source: str,
        heading: tuple[str, ...],
        lines: tuple[int, int],
        page: int | None,
        language: Language,
        kind: Kind,
    ) -> StudyItem:
        """An item whose id is `item_id` of its source, evidence and question."""
        return cls(
            id=item_id(source, evidence, question),
            question=question,
            answer=answer,
            evidence=evidence,
            source=source,
            heading=heading,
            lines=lines,
            page=page,
            language=language,
            kind=kind,
        )

    @property
    def citation(self) -> str:
        """``note:first-last — heading > path`` (the heading path without the note's title
        when it is its first entry is kept: it names the note)."""
        first, last = self.lines
        where = f"{first}" if first == last else f"{first}-{last}"
        page = f" (p. {self.page})" if self.page else ""
        heading = f" — {' > '.join(self.heading)}" if self.heading else ""
        return f"{self.source}:{where}{page}{heading}"

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data: every field, ``heading`` and ``lines`` as lists, ``check`` as an
        object or null."""
        data = asdict(self)
        data["heading"] = list(self.heading)
        data["lines"] = list(self.lines)
        if self.check is not None:
            data["check"]["citations"] = list(self.check.citations)
        return data
