"""Notes → chunks: headings first, then whole sentences, sized in the embedding model's tokens.

The note's structure comes from a CommonMark parser (`ingest.structure`): a chunk never spans two
sections, so its heading path is exact, and never spans a part that is not indexed (front matter,
HTML comments, hidden HTML). Inside a section the units are sentences of prose (sentence ends:
``。．｡！？`` anywhere, ``. ! ?`` before a space, the end or a Japanese character), lines of code,
and table rows; chunks are packed from whole units up to the token budget with some overlap.

A sentence longer than the budget is cut at its line breaks, then at clause marks (``、，､；：``
and ``, ; :`` before a space), then at spaces, as far as needed to fit; a run that is still over
the budget (no space or punctuation in it) is cut between characters, so no chunk is over the
budget but one table row, which is never cut.

Encoded data is not text (``Layout.non_text``: images pasted as ``data:`` URIs, bare base64/hex
runs): no chunk holds it (`Visible`). Inside a block it is skipped over, not cut at, so an image
in the middle of a sentence, a code line or a table row leaves that unit whole, the image
reduced to its alt text (``![alt]``); between blocks it ends a chunk. PDF pages: no chunk spans
a page break, so a chunk's ``page`` is the page of all its text.

Citations: a chunk's text is the document text (see `ingest.readers`: decoded, line breaks as
LF) from ``char_start`` to ``char_end``, and ``line_start``–``line_end`` are the lines that span
covers. Two documented exceptions: encoded data inside the span is left out, leaving only its
line breaks (so line *k* of the chunk's text is still line ``line_start + k`` of the note); and
a chunk that holds rows of a table but not its header starts with the table's header row and
delimiter row (``lead_chars`` characters plus a line break), so each passage of a long table
says what its columns mean; its span and lines are those of the rows.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from llama_index.core.node_parser import NodeParser
from llama_index.core.schema import BaseNode, TextNode
from pydantic import Field, PrivateAttr

from ingest.structure import (
    CODE,
    HEADING,
    IMAGE,
    SKIP,
    TABLE_HEAD,
    TABLE_ROW,
    TEXT,
    Layout,
    NonText,
    line_layout,
    markdown_layout,
    paragraph_layout,
)

TokenCounter = Callable[[Sequence[str]], list[int]]

# Sentence ends. Full-width and half-width CJK terminals end a sentence anywhere; ASCII . ! ?
# only before whitespace, the end, or a non-ASCII character (Japanese written with ASCII
# punctuation). Closing brackets and quotes stay with the sentence they close.
_CLOSERS = "」』）)\\]\"'’”】〉》"
_SENTENCE_END = re.compile(
    rf"[。．｡！？‼⁇⁈⁉]+[{_CLOSERS}]*|[.!?]+[{_CLOSERS}]*(?=\s|$|[^\x00-\x7f])"
)
# Clause ends, for sentences longer than the budget.
_CLAUSE_END = re.compile(r"[、，､；：]+|[,;:]+(?=\s|[^\x00-\x7f])")
_DIGITS = "0123456789０１２３４５６７８９"
# Words after which a period does not end a sentence.
_ABBREVIATIONS = frozenset(
    "e.g i.e etc vs cf fig figs no nos eq eqs dr mr mrs ms prof st al approx ca sec ch vol".split()
)
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)\.$")

SENTENCE, LINE, CLAUSE, SPACE, CHARS = range(5)  # how finely a unit was cut


def _is_sentence_end(region: str, end: int, match: re.Match[str]) -> bool:
    text = match.group(0)
    start = match.start()
    between_digits = start > 0 and end < len(region) and region[start - 1] + region[end]
    if text == "．" and between_digits and set(between_digits) <= set(_DIGITS):
        return False  # ３．１４: a full-width decimal point
    if text.startswith("."):
        line_start = region.rfind("\n", 0, start) + 1
        if region[line_start:start].strip().isdigit():
            return False  # "1. " starts a numbered list item
        word = _WORD_BEFORE.search(region[: start + 1])
        if word and (len(word.group(1)) == 1 or word.group(1).lower() in _ABBREVIATIONS):
            return False  # "e.g.", "Fig.", an initial like "J."
    # 「…。」と言った。 — a quotation followed by a particle continues the sentence
    return not (text[-1] in _CLOSERS and end < len(region) and region[end] in "とっ")


@dataclass(frozen=True)
class Span:
    start: int
    end: int


@dataclass(frozen=True)
class Unit:
    """The smallest piece a chunk is built from: a sentence, a code line, a table row."""

    start: int
    end: int
    table: int = -1  # the table a row or header belongs to
    head: bool = False  # a table's header and delimiter rows
    level: int = SENTENCE  # how finely it has been cut (SENTENCE … CHARS)
    whole: bool = False  # never cut further (table rows)


@dataclass(frozen=True)
class Segment:
    """Consecutive units under one heading path, with nothing unindexed between them."""

    headings: tuple[str, ...]
    units: tuple[Unit, ...]


def line_starts(text: str) -> list[int]:
    """Offsets where each line begins (line breaks are LF in the document text)."""
    starts = [0]
    starts.extend(m.end() for m in re.finditer("\n", text))
    return starts


def _trimmed(text: str, start: int, end: int) -> Span | None:
    piece = text[start:end]
    if not piece.strip():
        return None
    lead = len(piece) - len(piece.lstrip())
    trail = len(piece) - len(piece.rstrip())
    return Span(start + lead, end - trail)


def _cut(text: str, start: int, end: int, cuts: Sequence[int]) -> list[Span]:
    spans: list[Span] = []
    prev = start
    for cut in [*sorted(cuts), end]:
        if cut <= prev:
            continue
        span = _trimmed(text, prev, cut)
        if span:
            spans.append(span)
        prev = cut
    return spans


# A line starting with a Japanese bullet starts a new item (no Markdown list marker, so
# CommonMark sees one paragraph; Japanese notes write lists this way).
_JA_BULLET = re.compile(r"\n[ \t\u3000]*[・•●◦○■□▪※]")
# For text without its Markdown context (sentence_spans): a line that starts a new block.
_BLOCK_START = re.compile(r"^\s*([-*+]\s|\d{1,9}[.)]\s|[・•●◦○■□▪※>|]|```|~~~)")
_FENCE_LINE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def _sentence_cuts(text: str, start: int, end: int) -> list[int]:
    region = text[start:end]
    cuts = [
        start + m.end()
        for m in _SENTENCE_END.finditer(region)
        if _is_sentence_end(region, m.end(), m)
    ]
    cuts.extend(start + m.start() for m in _JA_BULLET.finditer(region))
    return cuts


def _paragraph_sentences(text: str, start: int, end: int) -> list[Span]:
    """Sentences of one block of prose (its lines are soft-wrapped: no cut at line ends)."""
    return _cut(text, start, end, _sentence_cuts(text, start, end))


def sentence_spans(text: str, start: int, end: int) -> list[Span]:
    """Sentence-like units of a piece of text without its Markdown context (a chunk's text, as
    the answer checks cut it): sentence ends, plus the ends of blank lines, of lines before a
    list item, quote, table row or fence, of table rows and of fence lines. Trimmed, in order,
    never overlapping. The chunker itself cuts by the note's parsed structure instead."""
    cuts = _sentence_cuts(text, start, end)
    lines = text[start:end].split("\n")
    offset = start
    in_fence = False
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if _FENCE_LINE.match(line):
            in_fence = not in_fence
        if (
            in_fence
            or _FENCE_LINE.match(line)
            or not line.strip()
            or not nxt.strip()
            or _BLOCK_START.match(nxt)
            or line.lstrip().startswith("|")
        ):
            cuts.append(offset + len(line))
        offset += len(line) + 1
    return _cut(text, start, end, cuts)


def finer_spans(text: str, span: Span, level: int) -> list[Span]:
    """``span`` cut at line breaks (LINE), clause marks (CLAUSE) or spaces (SPACE)."""
    region = text[span.start : span.end]
    if level == LINE:
        cuts = [span.start + m.end() for m in re.finditer("\n", region)]
    elif level == CLAUSE:
        cuts = [span.start + m.end() for m in _CLAUSE_END.finditer(region)]
    else:
        cuts = [span.start + m.end() for m in re.finditer(r"\s+", region)]
    return _cut(text, span.start, span.end, cuts)


def layout_of(text: str, metadata: dict[str, Any]) -> Layout:
    """The structure the reader asked for: Markdown (default), lines (HTML), paragraphs (PDF)."""
    kind = metadata.get("layout", "markdown")
    if kind == "lines":
        levels = {int(line): int(level) for line, level in metadata.get("heading_levels", [])}
        return line_layout(text.split("\n"), levels, frozenset(metadata.get("breaks", [])))
    if kind == "paragraphs":
        # each page's first line starts a block of its own: no chunk spans two pages
        pages = frozenset(text.count("\n", 0, offset) for offset in metadata.get("page_starts", []))
        return paragraph_layout(text, pages)
    return markdown_layout(text, kind == "text")


# What is left of link or attribute syntax next to a data: URI that was left out: the image's
# alt text is kept as ``![alt]``, without the dangling ``(``, ``src="`` or ``)``; of an HTML
# ``<img src="…">`` no ``<img`` is left (an ``alt`` attribute written after the URI stays).
_BEFORE_DATA = re.compile(
    r"(?:\(\s*<?|(?:<img\s+)?\bsrc\s*=\s*[\"']?|\burl\(\s*[\"']?)\Z", re.IGNORECASE
)
_AFTER_DATA = re.compile(r"(?:>?\s*\)|[\"'](?:\s*/?>)?)")
_MEANINGFUL = re.compile(r"\w")


@dataclass(frozen=True)
class Visible:
    """What chunks show of a document text: its non-text runs left out.

    ``cuts`` are the ranges left out: each run (`ingest.structure.NonText`), for an image's
    ``data:`` URI with the link or attribute syntax around it (``(…)``, ``src="…"``, a whole
    ``<img src="…">``), so an image is reduced to its alt text (``![alt]``). A range left out
    leaves only its line breaks, so each line of a chunk's text is still a line of the note."""

    text: str
    cuts: tuple[tuple[int, int], ...] = ()  # sorted, never overlapping, end exclusive

    @classmethod
    def of(cls, text: str, non_text: Sequence[NonText]) -> Visible:
        cuts: list[tuple[int, int]] = []
        for i, run in enumerate(non_text):
            lo, hi = run.start, run.end
            if run.kind == IMAGE:
                floor = max(cuts[-1][1] if cuts else 0, run.start - 200)
                before = _BEFORE_DATA.search(text, floor, run.start)
                lo = before.start() if before else lo
                ceiling = non_text[i + 1].start if i + 1 < len(non_text) else len(text)
                after = _AFTER_DATA.match(text, run.end, ceiling)
                hi = after.end() if after else hi
            cuts.append((lo, hi))
        return cls(text, tuple(cuts))

    def _near(self, start: int, end: int) -> list[tuple[int, int]]:
        """The cuts that overlap ``[start, end)``."""
        if not self.cuts:
            return []
        i = max(bisect.bisect_right(self.cuts, (start, len(self.text) + 1)) - 1, 0)
        found = []
        for lo, hi in self.cuts[i:]:
            if lo >= end:
                break
            if hi > start:
                found.append((lo, hi))
        return found

    def inside(self, offset: int) -> bool:
        """Whether ``offset`` falls strictly inside a range left out."""
        return any(lo < offset < hi for lo, hi in self._near(offset, offset + 1))

    def show(self, start: int, end: int) -> str:
        """``text[start:end]`` as chunks show it: each range left out replaced by its line
        breaks."""
        near = self._near(start, end)
        if not near:
            return self.text[start:end]
        parts: list[str] = []
        at = start
        for lo, hi in near:
            lo, hi = max(lo, start), min(hi, end)
            parts.append(self.text[at:lo])
            parts.append("\n" * self.text.count("\n", lo, hi))
            at = hi
        parts.append(self.text[at:end])
        return "".join(parts)

    def trim(self, start: int, end: int) -> Span | None:
        """``[start, end)`` without white space or ranges left out at either end; None when
        nothing is left (or, next to a range left out, nothing but markup: the ``)`` after an
        image)."""
        touched = bool(self._near(start, end))
        while start < end:
            span = _trimmed(self.text, start, end)
            if span is None:
                return None
            start, end = span.start, span.end
            head = next((hi for lo, hi in self._near(start, start + 1) if lo <= start), None)
            tail = next((lo for lo, hi in self._near(end - 1, end) if hi >= end), None)
            if head is None and tail is None:
                break
            start, end = head if head is not None else start, tail if tail is not None else end
        if start >= end:
            return None
        if touched and not _MEANINGFUL.search(self.show(start, end)):
            return None
        return Span(start, end)

    def spread(self, start: int, end: int, size: int) -> list[int]:
        """Offsets that cut ``[start, end)`` into pieces of ``size`` shown characters."""
        cuts: list[int] = []
        shown = 0
        at = start
        for lo, hi in [*self._near(start, end), (end, end)]:
            lo, hi = max(lo, start), min(hi, end)
            while shown + (lo - at) >= size:
                at += size - shown
                cuts.append(at)
                shown = 0
            shown += lo - at
            at = max(hi, at)
        return [c for c in cuts if start < c < end]


def _sentences(text: str, start: int, end: int, visible: Visible) -> list[Span]:
    """The sentences of a block of prose, as `_paragraph_sentences`, with the ranges left out
    (images, encoded data) inside them: an image in a sentence never cuts it."""
    cuts = [c for c in _sentence_cuts(text, start, end) if not visible.inside(c)]
    spans = _cut(text, start, end, cuts)
    return [t for s in spans if (t := visible.trim(s.start, s.end)) is not None]


def segments(text: str, layout: Layout, visible: Visible | None = None) -> list[Segment]:
    """Units of each stretch of indexed text, with the heading path in force there. Non-text
    runs (``layout.non_text``, as `Visible` leaves them out) inside a block are skipped over,
    so an image never cuts the sentence, code line or table row it is in; one between blocks
    (a link reference definition to a data: URI) ends a segment, as unindexed blocks do."""
    starts = line_starts(text)
    non_text = layout.non_text
    visible = visible or Visible.of(text, non_text)

    def span_of(first: int, last: int) -> tuple[int, int]:
        end = starts[last] - 1 if last < len(starts) else len(text)
        return starts[first], end

    found: list[Segment] = []
    path: list[tuple[int, str]] = []
    units: list[Unit] = []

    def close() -> None:
        if units:
            found.append(Segment(tuple(h for _, h in path), tuple(units)))
            units.clear()

    ends = [r.end for r in non_text]
    after = 0  # where the last block ended
    for block in layout.blocks:
        first = starts[block.start] if block.start < len(starts) else len(text)
        # a run between blocks (a link reference definition to a data: URI): no chunk spans it
        k = bisect.bisect_right(ends, after)
        if k < len(non_text) and non_text[k].start < first:
            close()
        after = max(after, span_of(block.start, block.end)[1] if block.end > block.start else first)
        if block.headings is not None:
            # a footnote definition: a segment of its own under the path of its reference
            close()
            written = path
            path = list(enumerate(block.headings, start=1))
            spans = _sentences(text, *span_of(block.start, block.end), visible)
            units.extend(Unit(s.start, s.end) for s in spans)
            close()
            path = written
        elif block.kind == HEADING:
            close()
            path = [(lv, h) for lv, h in path if lv < block.level] + [(block.level, block.title)]
        elif block.kind == SKIP:
            close()
        elif block.kind == TEXT:
            spans = _sentences(text, *span_of(block.start, block.end), visible)
            units.extend(Unit(s.start, s.end) for s in spans)
        elif block.kind == CODE:
            for line in range(block.start, block.end):
                span = visible.trim(*span_of(line, line + 1))
                if span:
                    units.append(Unit(span.start, span.end, level=LINE))
        elif block.kind in (TABLE_HEAD, TABLE_ROW):
            span = visible.trim(*span_of(block.start, block.end))
            if span:
                head = block.kind == TABLE_HEAD
                units.append(Unit(span.start, span.end, block.table, head, LINE, whole=True))
    close()
    return found


def pack(
    token_counts: Sequence[int],
    budget: int,
    overlap: int,
    lead: Sequence[int] | None = None,
    glue: Sequence[bool] | None = None,
) -> list[tuple[int, int]]:
    """Group consecutive units into [i, j) ranges of at most ``budget`` tokens, each new range
    repeating up to ``overlap`` tokens of the previous one's tail.

    ``lead[i]``: tokens added when a range starts at unit i (a table's repeated header).
    ``glue[i]``: a range does not end right after unit i unless it is alone or last (a table
    header stays with its first rows). A single unit over the budget is a range of its own."""
    n = len(token_counts)
    lead = lead or [0] * n
    glue = glue or [False] * n
    ranges: list[tuple[int, int]] = []
    i = 0
    while i < n:
        j, total = i, lead[i]
        while j < n and (j == i or total + token_counts[j] <= budget):
            total += token_counts[j]
            j += 1
        while j < n and j - 1 > i and glue[j - 1]:
            j -= 1
        ranges.append((i, j))
        if j >= n:
            break
        # repeat the previous chunk's tail, but only as much as still leaves room for the
        # next unit: a chunk must always add something new
        k, tail = j, 0
        while (
            k - 1 > i
            and tail + token_counts[k - 1] <= overlap
            and lead[k - 1] + tail + token_counts[k - 1] + token_counts[j] <= budget
        ):
            k -= 1
            tail += token_counts[k]
        i = k
    return ranges


def content_hash(title: str, headings: Sequence[str], text: str) -> str:
    digest = hashlib.sha256("\x1f".join([title, *headings, text]).encode("utf-8"))
    return digest.hexdigest()[:32]


# reader metadata that only the splitter needs
_INTERNAL = (
    "line_map",
    "page_starts",
    "heading_levels",
    "breaks",
    "layout",
    "warnings",
    "encoding",
)


class NoteSplitter(NodeParser):
    """LlamaIndex node parser implementing the rules above. Metadata feeds citations."""

    chunk_tokens: int = Field(default=320, gt=0)
    overlap_tokens: int = Field(default=48, ge=0)
    _count: TokenCounter = PrivateAttr()

    def __init__(self, count_tokens: TokenCounter, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._count = count_tokens

    @classmethod
    def class_name(cls) -> str:
        return "NoteSplitter"

    def _parse_nodes(
        self, nodes: Sequence[BaseNode], show_progress: bool = False, **kwargs: Any
    ) -> list[BaseNode]:
        out: list[BaseNode] = []
        for node in nodes:
            out.extend(self.split(node.get_content(), dict(node.metadata)))
        return out

    def _refine(
        self, text: str, unit: Unit, count: int, visible: Visible
    ) -> list[tuple[Unit, int]]:
        """A unit over the budget, cut at the next finer boundaries until its pieces fit; a
        run with no boundary left is cut between characters (the embedder would otherwise
        truncate it silently). Only a table row (``whole``) or a single character may stay
        over the budget."""
        if count <= self.chunk_tokens or unit.whole:
            return [(unit, count)]
        for level in range(unit.level + 1, CHARS + 1):
            if level == CHARS:
                # pieces of about equal length, as many as the count says are needed; one that
                # is still over (tokens are not spread evenly) is cut again
                parts = -(-count // self.chunk_tokens) if unit.level < CHARS else 2
                shown = len(visible.show(unit.start, unit.end))
                size = max(-(-shown // max(parts, 2)), 1)
                cuts = visible.spread(unit.start, unit.end, size)
                pieces = _cut(text, unit.start, unit.end, cuts)
            else:
                pieces = finer_spans(text, Span(unit.start, unit.end), level)
            pieces = [t for p in pieces if (t := visible.trim(p.start, p.end)) is not None]
            if len(pieces) > 1:
                counts = self._count([visible.show(p.start, p.end) for p in pieces])
                out: list[tuple[Unit, int]] = []
                for piece, n in zip(pieces, counts, strict=True):
                    finer = replace(unit, start=piece.start, end=piece.end, level=level)
                    out.extend(self._refine(text, finer, n, visible))
                return out
        return [(unit, count)]  # one character over the budget

    def split(self, text: str, metadata: dict[str, Any]) -> list[TextNode]:
        starts = line_starts(text)
        line_map: list[int] | None = metadata.get("line_map")
        page_starts: list[int] | None = metadata.get("page_starts")
        title = str(metadata.get("title", ""))
        layout = layout_of(text, metadata)
        visible = Visible.of(text, layout.non_text)
        parts = segments(text, layout, visible)
        flat = [u for seg in parts for u in seg.units]
        flat_counts = self._count([visible.show(u.start, u.end) for u in flat])
        base = {k: v for k, v in metadata.items() if k not in _INTERNAL}
        nodes: list[TextNode] = []
        offset = 0
        for seg in parts:
            sized: list[tuple[Unit, int]] = []
            mine = flat_counts[offset : offset + len(seg.units)]
            for unit, n in zip(seg.units, mine, strict=True):
                sized.extend(self._refine(text, unit, n, visible))
            offset += len(seg.units)
            units = [u for u, _ in sized]
            counts = [n for _, n in sized]
            heads = {u.table: (u, n) for u, n in sized if u.head}
            lead = [heads[u.table][1] if u.table in heads and not u.head else 0 for u in units]
            glue = [u.head for u in units]
            for a, b in pack(counts, self.chunk_tokens, self.overlap_tokens, lead, glue):
                first, last = units[a], units[b - 1]
                body = visible.show(first.start, last.end)
                prefix, lead_line = "", 0
                if first.table in heads and not first.head:
                    head = heads[first.table][0]
                    prefix = visible.show(head.start, head.end)
                    body = prefix + "\n" + body
                    lead_line = bisect.bisect_right(starts, head.start)
                    if line_map:
                        lead_line = line_map[lead_line - 1]
                line_a = bisect.bisect_right(starts, first.start)
                line_b = bisect.bisect_right(starts, max(first.start, last.end - 1))
                if line_map:
                    line_a, line_b = line_map[line_a - 1], line_map[line_b - 1]
                meta = dict(base)
                meta.update(
                    headings=list(seg.headings),
                    line_start=line_a,
                    line_end=line_b,
                    char_start=first.start,
                    char_end=last.end,
                    lead_chars=len(prefix),
                    lead_line=lead_line,
                    chunk_index=len(nodes),
                    content_hash=content_hash(title, seg.headings, body),
                    page=bisect.bisect_right(page_starts, first.start) if page_starts else None,
                    tokens=lead[a] + sum(counts[a:b]),
                )
                nodes.append(
                    TextNode(
                        text=body,
                        metadata=meta,
                        start_char_idx=first.start,
                        end_char_idx=last.end,
                        excluded_embed_metadata_keys=list(meta),
                        excluded_llm_metadata_keys=list(meta),
                    )
                )
        return nodes
