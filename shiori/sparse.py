"""BM25-style sparse vectors that work for Japanese and English alike.

Japanese has no spaces, so words are not split on whitespace: runs of kanji, hiragana and
katakana become overlapping character bigrams (plus the single characters, so that one-character
words such as 「株」 still match), while runs of Latin letters and digits become lower-cased
words. Text is NFKC-normalised first, so full-width ``ＡＢＣ１２３`` and half-width katakana match
their usual forms. The choice was measured on JSQuAD (see docs/benchmarks.md).

Documents carry the BM25 term-frequency part; queries carry 1 per term. Qdrant's IDF modifier
supplies the IDF part at query time, so the collection needs no global statistics here.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections import Counter
from dataclasses import dataclass

# Kanji (incl. extension A and compatibility), hiragana, katakana, the prolonged sound mark.
_CJK = r"\u3041-\u309f\u30a0-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u30fc々〆ヵヶ"
_TOKEN = re.compile(rf"[{_CJK}]+|[a-z0-9]+(?:[._+-][a-z0-9]+)*")
_CJK_RUN = re.compile(rf"^[{_CJK}]+$")

# A few grammatical words that are everywhere and carry nothing (IDF would shrink them anyway).
_EN_STOP = frozenset(
    "a an and are as at be by for from in is it of on or that the this to was were with".split()
)


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def tokens(text: str, unigrams: bool = True) -> list[str]:
    """Terms of ``text``: CJK character bigrams (and unigrams), Latin words."""
    out: list[str] = []
    for match in _TOKEN.finditer(normalise(text)):
        run = match.group(0)
        if _CJK_RUN.match(run):
            if unigrams or len(run) == 1:
                out.extend(run)
            out.extend(run[i : i + 2] for i in range(len(run) - 1))
        elif run not in _EN_STOP:
            out.append(run)
    return out


def term_id(term: str) -> int:
    """A stable 32-bit id for a term (the same on every machine and run)."""
    return zlib.crc32(term.encode("utf-8"))


@dataclass(frozen=True)
class SparseVector:
    indices: list[int]
    values: list[float]


@dataclass(frozen=True)
class SparseEncoder:
    """BM25 with Qdrant doing the IDF. ``avg_len`` is a fixed typical chunk length in terms."""

    k1: float = 1.2
    b: float = 0.75
    avg_len: float = 300.0
    unigrams: bool = True

    def encode_document(self, text: str) -> SparseVector:
        terms = tokens(text, self.unigrams)
        counts = Counter(term_id(t) for t in terms)
        norm = self.k1 * (1 - self.b + self.b * len(terms) / self.avg_len)
        ids = sorted(counts)
        return SparseVector(ids, [counts[i] * (self.k1 + 1) / (counts[i] + norm) for i in ids])

    def encode_query(self, text: str) -> SparseVector:
        ids = sorted({term_id(t) for t in tokens(text, self.unigrams)})
        return SparseVector(ids, [1.0] * len(ids))
