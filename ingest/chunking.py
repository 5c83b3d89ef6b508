"""Notes → chunks: headings first, then whole sentences, sized in the embedding model's tokens.

A chunk never spans two sections, so its heading path is exact, and never ends inside a
sentence: Japanese (。！？) and English (. ! ?) sentence ends, list items, table rows and blank
lines are the only places it may end. A single sentence longer than the budget becomes a chunk
of its own rather than being cut. Each chunk is a contiguous slice of the document text, so its
character offsets and line range point at the exact place in the note.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from llama_index.core.node_parser import NodeParser
from llama_index.core.schema import BaseNode, TextNode
from pydantic import Field, PrivateAttr

TokenCounter = Callable[[Sequence[str]], list[int]]

_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
# A line that starts a new block: list item, quote, table row, fence, Japanese bullet.
_BLOCK_START = re.compile(r"^\s*([-*+]\s|\d{1,3}[.)]\s|[・•●◦○■□▪︎※>|]|```|~~~)")
# Sentence ends: Japanese full stops anywhere; . ! ? only before whitespace or the end. Closing
# brackets and quotes stay with the sentence they close.
_CLOSERS = "」』）)\\]\"'’”"
_SENTENCE_END = re.compile(rf"[。！？]+[{_CLOSERS}]*|[.!?]+[{_CLOSERS}]*(?=\s|$)")
# Words after which a period does not end a sentence.
_ABBREVIATIONS = frozenset(
    "e.g i.e etc vs cf fig figs no nos eq eqs dr mr mrs ms prof st al approx ca sec ch vol".split()
)
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)\.$")


def _is_sentence_end(region: str, end: int, match: re.Match[str]) -> bool:
    text = match.group(0)
    if text.startswith("."):
        line_start = region.rfind("\n", 0, match.start()) + 1
        if region[line_start : match.start()].strip().isdigit():
            return False  # "1. " starts a numbered list item
        word = _WORD_BEFORE.search(region[: match.start() + 1])
        if word and (len(word.group(1)) == 1 or word.group(1).lower() in _ABBREVIATIONS):
            return False  # "e.g.", "Fig.", an initial like "J."
    # 「…。」と言った。 — a quotation followed by a particle continues the sentence
    return not (text[-1] in _CLOSERS and end < len(region) and region[end] in "とっ")


@dataclass(frozen=True)
class Section:
    headings: tuple[str, ...]
    start: int  # char offset of the first body character
    end: int


@dataclass(frozen=True)
class Span:
    start: int
    end: int


def line_starts(text: str) -> list[int]:
    starts = [0]
    starts.extend(m.end() for m in re.finditer("\n", text))
    return starts


def sections(text: str) -> list[Section]:
    """Split at ATX headings outside code fences; each section knows its heading path."""
    found: list[Section] = []
    path: list[tuple[int, str]] = []
    body_start = 0
    in_fence = False
    offset = 0
    for line in text.splitlines(keepends=True):
        if _FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line.rstrip("\r\n"))
        if match:
            found.append(Section(tuple(h for _, h in path), body_start, offset))
            level = len(match.group(1))
            path = [(lv, h) for lv, h in path if lv < level] + [(level, match.group(2).strip())]
            body_start = offset + len(line)
        offset += len(line)
    found.append(Section(tuple(h for _, h in path), body_start, len(text)))
    return [s for s in found if text[s.start : s.end].strip()]


def sentence_spans(text: str, start: int, end: int) -> list[Span]:
    """Sentence-like units of text[start:end], trimmed, in order, never overlapping."""
    cuts: set[int] = set()
    region = text[start:end]
    for m in _SENTENCE_END.finditer(region):
        if _is_sentence_end(region, m.end(), m):
            cuts.add(start + m.end())
    lines = region.splitlines(keepends=True)
    offset = start
    in_fence = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if _FENCE.match(line):
            in_fence = not in_fence
        line_end = offset + len(line.rstrip("\r\n"))
        if (
            in_fence
            or not stripped
            or not nxt.strip()
            or _BLOCK_START.match(nxt)
            or stripped.startswith("|")
        ):
            cuts.add(line_end)
        offset += len(line)
    cuts.add(end)
    spans: list[Span] = []
    prev = start
    for cut in sorted(cuts):
        if cut <= prev:
            continue
        piece = text[prev:cut]
        lead = len(piece) - len(piece.lstrip())
        trail = len(piece) - len(piece.rstrip())
        if piece.strip():
            spans.append(Span(prev + lead, cut - trail))
        prev = cut
    return spans


def pack(token_counts: Sequence[int], budget: int, overlap: int) -> list[tuple[int, int]]:
    """Group consecutive units into [i, j) ranges of at most ``budget`` tokens, each new range
    repeating up to ``overlap`` tokens of the previous one's tail."""
    ranges: list[tuple[int, int]] = []
    i = 0
    n = len(token_counts)
    while i < n:
        j, total = i, 0
        while j < n and (j == i or total + token_counts[j] <= budget):
            total += token_counts[j]
            j += 1
        ranges.append((i, j))
        if j >= n:
            break
        # repeat the previous chunk's tail, but only as much as still leaves room for the
        # next unit: a chunk must always add something new
        k, tail = j, 0
        while (
            k - 1 > i
            and tail + token_counts[k - 1] <= overlap
            and tail + token_counts[k - 1] + token_counts[j] <= budget
        ):
            k -= 1
            tail += token_counts[k]
        i = k
    return ranges


def content_hash(title: str, headings: Sequence[str], text: str) -> str:
    digest = hashlib.sha256("\x1f".join([title, *headings, text]).encode("utf-8"))
    return digest.hexdigest()[:32]


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

    def split(self, text: str, metadata: dict[str, Any]) -> list[TextNode]:
        starts = line_starts(text)
        line_map: list[int] | None = metadata.get("line_map")
        page_starts: list[int] | None = metadata.get("page_starts")
        title = str(metadata.get("title", ""))
        units: list[tuple[Section, Span]] = []
        for section in sections(text):
            units.extend((section, s) for s in sentence_spans(text, section.start, section.end))
        counts = self._count([text[s.start : s.end] for _, s in units])
        nodes: list[TextNode] = []
        # pack each section on its own so that no chunk crosses a heading
        i = 0
        while i < len(units):
            section = units[i][0]
            j = i
            while j < len(units) and units[j][0] is section:
                j += 1
            for a, b in pack(counts[i:j], self.chunk_tokens, self.overlap_tokens):
                first, last = units[i + a][1], units[i + b - 1][1]
                body = text[first.start : last.end]
                line_a = bisect.bisect_right(starts, first.start)
                line_b = bisect.bisect_right(starts, max(first.start, last.end - 1))
                if line_map:
                    line_a, line_b = line_map[line_a - 1], line_map[line_b - 1]
                meta = {k: v for k, v in metadata.items() if k not in ("line_map", "page_starts")}
                meta.update(
                    headings=list(section.headings),
                    line_start=line_a,
                    line_end=line_b,
                    char_start=first.start,
                    char_end=last.end,
                    chunk_index=len(nodes),
                    content_hash=content_hash(title, section.headings, body),
                    page=bisect.bisect_right(page_starts, first.start) if page_starts else None,
                    tokens=sum(counts[i + a : i + b]),
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
            i = j
        return nodes
