"""Does each cited sentence stand on its sources? A lexical support score, reported, not hidden.

No NLI model or cross-encoder is obtainable offline here, so support is measured as the share of
a sentence's content terms (CJK character bigrams, Latin words: the sparse tokenizer's terms,
without unigrams) that occur in the sources it cites. Paraphrase lowers it; invented numbers,
names and dates — the hallucinations that matter in study notes — lower it sharply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from service.rag.markers import ParsedAnswer
from shiori.sparse import tokens

# Numbers and Latin words (names, model sizes, years) weigh more than kana/kanji bigrams: an
# invented "2023" or "Meta" matters more than a changed particle.
ENTITY_WEIGHT = 3.0


def terms(text: str) -> set[str]:
    return set(tokens(text, unigrams=False)) or set(tokens(text, unigrams=True))


def _weight(term: str) -> float:
    return ENTITY_WEIGHT if term.isascii() else 1.0


def support(sentence: str, sources: Sequence[str]) -> float:
    """Weighted share of the sentence's terms found in the sources (1.0 when it has none)."""
    wanted = terms(sentence)
    if not wanted:
        return 1.0
    have: set[str] = set()
    for source in sources:
        have |= terms(source)
    total = sum(_weight(t) for t in wanted)
    return sum(_weight(t) for t in wanted & have) / total


@dataclass(frozen=True)
class SentenceCheck:
    text: str
    markers: list[int]
    support: float  # lexical, against the cited sources
    supported: bool
    similarity: float = 0.0  # semantic, cosine to the best cited source (cross-language)
    attributed: bool = False  # the model gave no marker; Shiori attached the best source


def check(
    parsed: ParsedAnswer,
    sources: Sequence[str],
    threshold: float,
    similarities: Sequence[Sequence[float]] | None = None,
    semantic_threshold: float = 0.7,
) -> list[SentenceCheck]:
    """Score every sentence against the sources it cites.

    A sentence is supported when enough of its terms are in its sources (lexical) or, when
    ``similarities[i][j]`` (sentence i, source j) is given, when it is semantically close to one
    of them: a Japanese answer drawn from an English note shares few terms with it. A sentence
    without a marker (the small model often drops them in Japanese), or whose marker points at
    a source that does not back it while another retrieved source does, is attributed to the
    source that supports it best, and says so (`attributed`)."""

    def judge(i: int, text: str, markers: list[int]) -> tuple[float, float, bool]:
        lexical = support(text, [sources[n - 1] for n in markers])
        semantic = 0.0
        if similarities is not None:
            semantic = max((similarities[i][n - 1] for n in markers), default=0.0)
        return lexical, semantic, lexical >= threshold or semantic >= semantic_threshold

    results = []
    for i, sentence in enumerate(parsed.sentences):
        markers = list(sentence.markers)
        lexical, semantic, ok = judge(i, sentence.text, markers) if markers else (0.0, 0.0, False)
        attributed = False
        if not ok and sources:
            scored = [(judge(i, sentence.text, [j + 1]), j + 1) for j in range(len(sources))]
            (best_lex, best_sem, best_ok), best = max(scored, key=lambda x: x[0][0] + x[0][1])
            if best_ok or not markers:
                markers, lexical, semantic, ok, attributed = (
                    [best],
                    best_lex,
                    best_sem,
                    best_ok,
                    True,
                )
        results.append(
            SentenceCheck(
                sentence.text, markers, round(lexical, 3), ok, round(semantic, 3), attributed
            )
        )
    return results
