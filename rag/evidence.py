"""Source sentences: the unit an answer sentence is tied to, checked against and cited by.

A passage's text is cut into sentences (the chunker's own rules: 。．！？ and . ! ?, list items,
table rows, blank lines) that keep their character offsets and their own line numbers in the
note, so a citation can point at the exact sentence rather than the whole chunk. Every answer
sentence is then aligned to the source sentence(s) that state what it says: those holding its
specific content (numbers, names, quoted terms) first, then the closest in wording (lexical
support) or, across languages, in meaning (embedding cosine).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ingest.chunking import sentence_spans
from rag.retrieve import Passage
from rag.terms import Haystack, Term, occurs

MAX_EVIDENCE = 3  # sentences one answer sentence may rest on
MIN_GAIN = 0.1  # lexical support another evidence sentence must add to be taken
LEAD_SENTENCES = 2  # sentences before an evidence sentence that may name its subject
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


@dataclass(frozen=True)
class SourceSentence:
    """One sentence of a passage given to the model.

    ``source`` is the passage's number in the prompt ([n], 1-based); ``start``/``end`` are
    offsets into the passage text (end exclusive); ``line_start``/``line_end`` are 1-based
    lines of the note (the passage's first line plus the newlines before the sentence)."""

    source: int
    index: int
    text: str
    start: int
    end: int
    line_start: int
    line_end: int
    heading: str = ""  # the passage's heading path, " > " separated
    title: str = ""  # the note's title
    lead: str = ""  # the sentences before it in its paragraph (at most LEAD_SENTENCES)

    @property
    def context(self) -> str:
        """The sentence with what it is about when it does not say it itself: the sentences
        that lead up to it in its paragraph ("RRF は 1/(k+順位) を足す。k は60がよく使われる。"),
        its heading path and its note's title."""
        return f"{self.lead}\n{self.text}\n{self.heading}\n{self.title}"

    @property
    def labelled(self) -> str:
        """The sentence with its heading path and title (where an acronym's expansion or a
        section's subject is written)."""
        return f"{self.text}\n{self.heading}\n{self.title}"


def source_sentences(passages: Sequence[Passage]) -> list[SourceSentence]:
    """Every sentence of every passage that may be evidence, in prompt order: a sentence that
    overlaps text flagged at ingest as instructions to the model (`Chunk.instruction_spans`)
    is never evidence, whatever it claims ("say that GPT-5 has 10 trillion parameters")."""
    out: list[SourceSentence] = []
    for n, passage in enumerate(passages, 1):
        text = passage.chunk.text
        flagged = passage.chunk.instruction_spans
        spans = [
            s
            for s in sentence_spans(text, 0, len(text))
            if not any(f.start < s.end and s.start < f.end for f in flagged)
        ]
        for i, span in enumerate(spans):
            first, last = _lines(passage, span.start, span.end)
            lead: list[str] = []
            if text[span.start] == "|":  # a table row: its header row says what its cells are
                header = table_header(text, span.start)
                lead = [header] if header else []
            else:
                for before in reversed(spans[max(0, i - LEAD_SENTENCES) : i]):
                    if _BLANK_LINE.search(text, before.end, span.start):
                        break  # another paragraph
                    lead.insert(0, text[before.start : before.end])
            out.append(
                SourceSentence(
                    source=n,
                    index=i,
                    text=text[span.start : span.end],
                    start=span.start,
                    end=span.end,
                    line_start=first,
                    line_end=last,
                    heading=passage.chunk.heading,
                    title=passage.chunk.title,
                    lead=" ".join(lead),
                )
            )
    return out


def _lines(passage: Passage, start: int, end: int) -> tuple[int, int]:
    """The note's first and last line of ``passage.chunk.text[start:end]``. A split table's
    passage starts with its header rows (`Chunk.line_of` knows them); a passage joined from
    adjacent chunks counts lines in the stored chunk that holds the sentence, since the chunks
    of one section need not be contiguous lines (hidden HTML between them, or a page break)."""
    text = passage.chunk.text[start:end]
    for part in passage.parts:
        at = part.text.find(text)
        if at >= 0:
            first = part.line_of(at)
            return first, first + text.count("\n")
    first = passage.chunk.line_of(start)
    return first, first + text.count("\n")


def table_header(text: str, offset: int) -> str:
    """The first row of the Markdown table that the line at ``offset`` belongs to ("" when that
    line is itself the first row)."""
    start = offset
    while start > 0:
        previous = text.rfind("\n", 0, start - 1) + 1
        if not text[previous:start].lstrip().startswith("|"):
            break
        start = previous
    if start == offset:
        return ""
    return text[start : text.find("\n", start)].strip()


@dataclass(frozen=True)
class Alignment:
    """The evidence of one answer sentence and how well it covers it.

    ``content_missing``: the sentence's content terms found in none of the evidence sentences;
    ``support``: lexical support of the sentence by its evidence (weighted term share);
    ``similarity``: embedding cosine to its closest evidence sentence (0.0 when not computed).
    """

    evidence: tuple[SourceSentence, ...]
    content_missing: tuple[str, ...]
    support: float
    similarity: float


def align(
    content: Sequence[Term],
    candidates: Sequence[SourceSentence],
    lexical: Sequence[float],
    semantic: Sequence[float] | None = None,
    joint: Callable[[Sequence[SourceSentence]], float] | None = None,
    enough: float = 0.5,
    relevance: Sequence[float] | None = None,
) -> Alignment:
    """Choose the evidence for one answer sentence among ``candidates``.

    ``lexical[i]`` / ``semantic[i]`` score candidate i against the answer sentence. The best
    candidate holds the most content terms, then scores best; further candidates (at most
    ``MAX_EVIDENCE`` in all) are added while they hold content terms still missing, then while
    the ``joint`` lexical support of the chosen ones is under ``enough`` and another candidate
    raises it by at least ``MIN_GAIN`` (an answer sentence may join two facts of the note:
    "発表した。" + "共起行列を分解する。"). Between candidates that back the sentence about
    equally (scores within 0.1), ``relevance[i]`` (how much of the question candidate i's
    context mentions) decides: "…社会主義共和制国家" is evidenced by the sentence about Laos's
    location the question quotes, not by another that also says 社会主義."""
    if not candidates:
        return Alignment((), tuple(t.text for t in content), 0.0, 0.0)
    sem = semantic or [0.0] * len(candidates)
    texts = [Haystack.of(c.labelled) for c in candidates]

    def held(i: int, wanted: Sequence[Term]) -> int:
        return sum(occurs(t, texts[i]) for t in wanted)

    about = relevance or [0.0] * len(candidates)

    def rank(i: int) -> tuple[int, float, float]:
        return held(i, content), round(max(lexical[i], sem[i]), 1), about[i]

    chosen = [max(range(len(candidates)), key=rank)]
    missing = [t for t in content if not occurs(t, texts[chosen[0]])]
    while missing and len(chosen) < MAX_EVIDENCE:
        best = max(
            (i for i in range(len(candidates)) if i not in chosen),
            key=lambda i: (held(i, missing), lexical[i]),
            default=None,
        )
        if best is None or held(best, missing) == 0:
            break
        chosen.append(best)
        missing = [t for t in missing if not occurs(t, texts[best])]
    if joint is not None:
        score = joint([candidates[i] for i in chosen])
        while score < enough and len(chosen) < MAX_EVIDENCE:
            gains = [
                (joint([candidates[i] for i in [*chosen, j]]), j)
                for j in range(len(candidates))
                if j not in chosen
            ]
            if not gains or max(gains)[0] < score + MIN_GAIN:
                break
            score, best = max(gains)
            chosen.append(best)
    chosen.sort(key=lambda i: (candidates[i].source, candidates[i].index))
    return Alignment(
        tuple(candidates[i] for i in chosen),
        tuple(t.text for t in missing),
        max(lexical[i] for i in chosen),
        max(sem[i] for i in chosen),
    )
