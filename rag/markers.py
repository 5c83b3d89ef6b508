"""Read an answer: its sentences, the `[n]` markers after each, and markers that point nowhere."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MARKER = re.compile(r"\[(\d{1,3})\]")
# "in 2016 [1]." leaves "in 2016 ." once the marker is gone
_SPACE_BEFORE_STOP = re.compile(r"\s+([.,!?。、！？])")
# a sentence ends at 。！？ or . ! ? + space, and keeps the markers that follow it
_SENTENCE = re.compile(r".+?(?:[。！？]|[.!?](?=\s|\[|$)|$)(?:\s*\[\d{1,3}\])*", re.S)


@dataclass
class Sentence:
    text: str  # without markers
    markers: list[int]  # valid source numbers cited by this sentence


@dataclass
class ParsedAnswer:
    sentences: list[Sentence] = field(default_factory=list)
    invalid_markers: list[int] = field(default_factory=list)  # numbers with no such source

    @property
    def cited(self) -> set[int]:
        return {m for s in self.sentences for m in s.markers}


def parse_answer(answer: str, n_sources: int) -> ParsedAnswer:
    parsed = ParsedAnswer()
    for match in _SENTENCE.finditer(answer.strip()):
        piece = match.group(0).strip()
        if not piece:
            continue
        numbers = [int(n) for n in MARKER.findall(piece)]
        text = _SPACE_BEFORE_STOP.sub(r"\1", MARKER.sub("", piece)).strip()
        valid = [n for n in dict.fromkeys(numbers) if 1 <= n <= n_sources]
        parsed.invalid_markers += [n for n in numbers if not 1 <= n <= n_sources]
        if text:
            parsed.sentences.append(Sentence(text, valid))
        elif valid and parsed.sentences:  # markers alone after a sentence belong to it
            parsed.sentences[-1].markers += [
                n for n in valid if n not in parsed.sentences[-1].markers
            ]
    return parsed


def strip_invalid_markers(answer: str, n_sources: int) -> str:
    """Remove markers that point to no retrieved source (the answer keeps its wording)."""
    return MARKER.sub(lambda m: m.group(0) if 1 <= int(m.group(1)) <= n_sources else "", answer)
