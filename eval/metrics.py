"""Deterministic evaluation metrics for Shiori: answers, retrieval, abstention, citations.

Pure functions, no I/O. Scores are fractions in [0, 1]; a ratio whose denominator is zero is
``float("nan")`` (not 0), so "not measurable on this set" never reads as "always wrong". Use
`mean` (which skips NaN) to aggregate and `percent` (which prints NaN as "—") to report.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

__all__ = [
    "AnswerCheck",
    "ItemOutcome",
    "Outcome",
    "abstention_scores",
    "check_answer",
    "citation_scores",
    "contains_reference",
    "exact_match",
    "fold",
    "hallucination",
    "hit_rate_at",
    "markers_in",
    "mean",
    "mrr_at",
    "ndcg_at",
    "normalise",
    "percent",
    "recall_at",
    "risk_coverage",
    "selective_scores",
    "strip_markers",
    "token_f1",
    "tokens",
]

NAN = float("nan")

# Japanese script: hiragana, katakana (incl. ー and phonetic extensions), kanji (unified, ext. A,
# compatibility, ext. B+) and the iteration / closing marks 々 〆 〇 〻. Half-width katakana is not
# listed: NFKC turns it into full-width first.
_CJK = (
    "\u3005-\u3007\u303b"
    "\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\U00020000-\U0003134f"
)
_CJK_CHAR = re.compile(f"[{_CJK}]")
# one CJK character, or a run of anything else that is not a space ("python3", "café")
_TOKEN = re.compile(f"[{_CJK}]|[^\\s{_CJK}]+")
# a space with a CJK character on at least one side carries no meaning in Japanese
_SPACE_BY_CJK = re.compile(f"(?<=[{_CJK}]) | (?=[{_CJK}])")
# an English article used as one: a whole word followed by a non-CJK word ("the cat"), so that
# "ビタミン A を" keeps its "a" just as "ビタミンAを" does
_ARTICLE = re.compile(f"(?<!\\S)(?:a|an|the) (?=[^\\s{_CJK}])")
# citation markers as the model writes them, "[1]" or full-width "［１］", with any space before
_MARKER = re.compile(r"\s*[\[［]\s*([0-9０-９]+)\s*[\]］]")


# ---------------------------------------------------------------- answers


def strip_markers(text: str) -> str:
    """Remove citation markers ("[1]", "[2][3]") so they do not count as answer tokens."""
    return _MARKER.sub("", text)


def markers_in(text: str) -> list[int]:
    """Every citation marker number in `text`, in order, repeats kept (validity counts each)."""
    return [int(unicodedata.normalize("NFKC", n)) for n in _MARKER.findall(text)]


def _clean_char(ch: str) -> str:
    """Punctuation and symbols become a space (a word boundary); invisible format chars vanish."""
    cat = unicodedata.category(ch)
    if cat[0] in "PS" or (cat == "Cc" and not ch.isspace()):
        return " "
    if cat[0] == "C" and not ch.isspace():  # Cf (zero-width space, BOM), Co, Cn, Cs
        return ""
    return ch


def normalise(text: str) -> str:
    """Canonical form for comparing answers written by different people and models.

    NFKC folds full-width / half-width variants ("２０２４" = "2024", "ｶﾀｶﾅ" = "カタカナ"),
    then lowercase; punctuation and symbols (Unicode P* and S*: 、。「」！？ . , etc.) become
    spaces, while the long vowel mark ー (a letter, category Lm) stays; English articles go;
    whitespace collapses, and whitespace next to a CJK character is dropped, because Japanese is
    written without spaces ("Python の リスト" = "Pythonのリスト").
    """
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(_clean_char(ch) for ch in text)
    text = " ".join(text.split())
    text = " ".join(_ARTICLE.sub("", text).split())
    return _SPACE_BY_CJK.sub("", text)


def tokens(text: str) -> list[str]:
    """Tokens of the normalised text: each CJK character alone, other text by words.

    Japanese has no word spaces and a tokenizer would make scores depend on its dictionary, so
    CJK is scored per character; Latin words and numbers stay whole ("python3の" → python3, の).
    """
    return _TOKEN.findall(normalise(text))


def _prepare(text: str) -> str:
    return normalise(strip_markers(text))


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when both are equal after marker stripping and `normalise`, else 0.0."""
    return float(_prepare(prediction) == _prepare(reference))


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style bag-of-tokens F1: partial credit for partly right answers.

    Both empty → 1.0 (nothing was expected and nothing given); one empty → 0.0.
    """
    pred = tokens(strip_markers(prediction))
    ref = tokens(strip_markers(reference))
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision = common / len(pred)
    recall = common / len(ref)
    return 2 * precision * recall / (precision + recall)


def contains_reference(prediction: str, reference: str) -> float:
    """1.0 when the normalised reference occurs inside the normalised prediction.

    Generative answers are whole sentences ("首都は東京です。"), so exact match alone is too harsh.
    The match is on the token sequence, so "cat" is not found in "concatenate" nor "2024" in
    "12024", while CJK still matches anywhere. Both empty → 1.0; one empty → 0.0.
    """
    pred = tokens(strip_markers(prediction))
    ref = tokens(strip_markers(reference))
    if not pred or not ref:
        return float(pred == ref)
    n = len(ref)
    return float(any(pred[i : i + n] == ref for i in range(len(pred) - n + 1)))


_SPACES = re.compile(r"\s+")


def fold(text: str) -> str:
    """NFKC, case folding, all whitespace removed: the comparison form of the golden sets'
    answer checks ("２０２４ 年" ~ "2024年", "Facebook" ~ "facebook")."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", text).casefold())


@dataclass(frozen=True)
class AnswerCheck:
    """The verdict of a golden item's deterministic checks on one answer text.

    ``missing``: ``must_contain`` entries (an alternatives entry shown joined by " | ") and, if
    none of ``must_contain_any`` occurs, that list joined the same way; ``forbidden``: the
    ``must_not_contain`` strings that occur."""

    passed: bool
    missing: tuple[str, ...] = ()
    forbidden: tuple[str, ...] = ()


def check_answer(
    answer: str,
    must_contain: Sequence[str | Sequence[str]] = (),
    must_contain_any: Sequence[str] = (),
    must_not_contain: Sequence[str] = (),
) -> AnswerCheck:
    """Does ``answer`` (markers stripped) hold every required form and no forbidden one?

    Substring tests after `fold`: the semantics of ``../shared/cases/grounding/questions.jsonl``
    (``must_contain`` all of, ``must_contain_any`` one of, ``must_not_contain`` none of), plus
    alternatives inside ``must_contain`` (a list entry is satisfied by any one of its strings).
    """
    text = fold(strip_markers(answer))
    missing = []
    for entry in must_contain:
        options = [entry] if isinstance(entry, str) else list(entry)
        if not any(fold(o) in text for o in options):
            missing.append(" | ".join(options))
    if must_contain_any and not any(fold(o) in text for o in must_contain_any):
        missing.append(" | ".join(must_contain_any))
    forbidden = [s for s in must_not_contain if fold(s) in text]
    return AnswerCheck(not missing and not forbidden, tuple(missing), tuple(forbidden))


# ---------------------------------------------------------------- retrieval


def _ranked(retrieved: Sequence[str], k: int) -> list[str]:
    """Top `k` distinct sources: several chunks of one note are one source, found once."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return list(dict.fromkeys(retrieved))[:k]


def hit_rate_at(retrieved: Sequence[str], relevant: Collection[str], k: int) -> float:
    """1.0 when any relevant source is among the top `k` distinct sources; 0.0 if none relevant."""
    wanted = set(relevant)
    return float(any(s in wanted for s in _ranked(retrieved, k)))


def recall_at(retrieved: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Share of relevant sources found in the top `k` distinct sources (0.0 if none relevant)."""
    wanted = set(relevant)
    if not wanted:
        return 0.0
    return len(wanted.intersection(_ranked(retrieved, k))) / len(wanted)


def mrr_at(retrieved: Sequence[str], relevant: Collection[str], k: int = 10) -> float:
    """1 / rank of the first relevant distinct source within the top `k`, else 0.0."""
    wanted = set(relevant)
    for rank, source in enumerate(_ranked(retrieved, k), start=1):
        if source in wanted:
            return 1.0 / rank
    return 0.0


def ndcg_at(retrieved: Sequence[str], relevant: Collection[str], k: int = 10) -> float:
    """Binary-relevance nDCG@k with a log2 discount; rewards relevant sources ranked early.

    DCG = Σ 1/log2(rank + 1) over relevant distinct sources in the top `k`; the ideal DCG puts
    min(len(relevant), k) relevant sources first. 0.0 when nothing is relevant.
    """
    wanted = set(relevant)
    if not wanted:
        return 0.0
    ranked = _ranked(retrieved, k)
    dcg = sum(1.0 / math.log2(rank + 1) for rank, s in enumerate(ranked, 1) if s in wanted)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(wanted), k) + 1))
    return dcg / ideal


# ---------------------------------------------------------------- abstention and hallucination


def _ratio(numerator: int, denominator: int) -> float:
    """numerator / denominator, NaN when the denominator is 0 (undefined, not "zero")."""
    return numerator / denominator if denominator else NAN


def abstention_scores(
    abstained: Sequence[bool], answerable: Sequence[bool]
) -> dict[str, float | int]:
    """How well the service says "not in your notes" exactly when it should.

    - ``recall_unanswerable``: share of unanswerable items that abstained;
    - ``precision_abstained``: share of abstentions that were on unanswerable items;
    - ``answered_precision``: share of answered items that were answerable;
    - ``false_abstention_rate``: share of answerable items that abstained;
    - counts ``n_answerable``, ``n_unanswerable``, ``n_abstained``.

    A ratio with a zero denominator (e.g. no unanswerable items, or no abstentions) is NaN.
    """
    if len(abstained) != len(answerable):
        raise ValueError(f"{len(abstained)} abstained flags for {len(answerable)} items")
    pairs = list(zip(abstained, answerable, strict=True))
    n_answerable = sum(1 for _, ans in pairs if ans)
    n_unanswerable = len(pairs) - n_answerable
    n_abstained = sum(1 for ab, _ in pairs if ab)
    n_answered = len(pairs) - n_abstained
    abstained_unanswerable = sum(1 for ab, ans in pairs if ab and not ans)
    abstained_answerable = sum(1 for ab, ans in pairs if ab and ans)
    answered_answerable = sum(1 for ab, ans in pairs if not ab and ans)
    return {
        "recall_unanswerable": _ratio(abstained_unanswerable, n_unanswerable),
        "precision_abstained": _ratio(abstained_unanswerable, n_abstained),
        "answered_precision": _ratio(answered_answerable, n_answered),
        "false_abstention_rate": _ratio(abstained_answerable, n_answerable),
        "n_answerable": n_answerable,
        "n_unanswerable": n_unanswerable,
        "n_abstained": n_abstained,
    }


class Outcome(StrEnum):
    """What one evaluated question came to, from the user's side: exactly one per item."""

    CORRECT = "correct"  # answerable, answered, and the answer passes its checks
    WRONG = "wrong"  # answerable, answered, and the answer fails its checks
    FALSE_ABSTENTION = "false_abstention"  # answerable, but Shiori said "not in your notes"
    RIGHT_ABSTENTION = "right_abstention"  # unanswerable, and Shiori said so
    ANSWERED_UNANSWERABLE = "answered_unanswerable"  # unanswerable, yet answered


@dataclass(frozen=True)
class ItemOutcome:
    """One evaluated question: was it answerable, did the service abstain, was the answer right.

    ``correct`` is the verdict of the item's deterministic answer checks (`check_answer`, or
    "contains the reference" for items without checks) on an answered answerable item; None
    when not checked. ``unfaithful`` is the judge's verdict on the answer (None = not judged).
    """

    answerable: bool
    abstained: bool
    unfaithful: bool | None = None
    correct: bool | None = None

    @property
    def outcome(self) -> Outcome:
        if not self.answerable:
            return Outcome.RIGHT_ABSTENTION if self.abstained else Outcome.ANSWERED_UNANSWERABLE
        if self.abstained:
            return Outcome.FALSE_ABSTENTION
        return Outcome.WRONG if self.correct is False else Outcome.CORRECT

    @property
    def hallucinated(self) -> bool:
        """The user was told something false or unsupported, with a citation: a wrong answer,
        an answer to an unanswerable question, or one the judge finds unfaithful."""
        if self.abstained:
            return False
        return self.outcome is not Outcome.CORRECT or self.unfaithful is True


def hallucination(outcomes: Sequence[ItemOutcome]) -> dict[str, float | int]:
    """Share of items where the user was told something false or unsupported.

    Each item counts at most once, in the first part that applies to it:

    - ``wrong_answers``: answerable items answered wrongly (`Outcome.WRONG`);
    - ``answered_when_unanswerable``: unanswerable items answered;
    - ``unfaithful_answers``: answers that pass their checks but the judge finds unfaithful
      (``unfaithful is True``; None counts as not judged, not as proof of faithfulness);
    - ``judged_answers``: answered items with a judge verdict (to read the last part against);
    - ``n_items``, ``n_answered``;
    - ``rate`` = (wrong + answered_when_unanswerable + unfaithful) / n_items — the headline;
    - ``rate_of_answers`` = the same numerator / n_answered.

    Rates are NaN when their denominator is 0.
    """
    answered = [o for o in outcomes if not o.abstained]
    wrong = sum(1 for o in answered if o.outcome is Outcome.WRONG)
    when_unanswerable = sum(1 for o in answered if o.outcome is Outcome.ANSWERED_UNANSWERABLE)
    unfaithful = sum(1 for o in answered if o.outcome is Outcome.CORRECT and o.unfaithful is True)
    judged = sum(1 for o in answered if o.unfaithful is not None)
    bad = wrong + when_unanswerable + unfaithful
    return {
        "rate": _ratio(bad, len(outcomes)),
        "rate_of_answers": _ratio(bad, len(answered)),
        "wrong_answers": wrong,
        "answered_when_unanswerable": when_unanswerable,
        "unfaithful_answers": unfaithful,
        "judged_answers": judged,
        "n_items": len(outcomes),
        "n_answered": len(answered),
    }


def selective_scores(outcomes: Sequence[ItemOutcome]) -> dict[str, Any]:
    """Coverage and selective accuracy: how much is answered, and how much of it is right.

    - ``coverage`` = answered answerable items / answerable items (the share of questions the
      notes can answer that get an answer; 1 - the false-abstention rate);
    - ``selective_accuracy`` = correct answers / all answered items (answers to unanswerable
      questions count as errors): the accuracy a user sees when Shiori does answer
      (Geifman & El-Yaniv 2017, "Selective classification for deep neural networks");
    - ``risk`` = 1 - selective_accuracy;
    - ``counts``: items per `Outcome`, every outcome listed (0 when absent).

    Ratios are NaN when their denominator is 0.
    """
    counts = {o.value: 0 for o in Outcome}
    for item in outcomes:
        counts[item.outcome.value] += 1
    answerable = sum(1 for o in outcomes if o.answerable)
    answered = counts[Outcome.CORRECT] + counts[Outcome.WRONG]
    answered_all = answered + counts[Outcome.ANSWERED_UNANSWERABLE]
    accuracy = _ratio(counts[Outcome.CORRECT], answered_all)
    return {
        "coverage": _ratio(answered, answerable),
        "selective_accuracy": accuracy,
        "risk": 1 - accuracy if not math.isnan(accuracy) else NAN,
        "counts": counts,
    }


def risk_coverage(
    confidences: Sequence[float], errors: Sequence[bool], n_items: int
) -> dict[str, Any]:
    """The risk–coverage curve of one confidence score, and its area (AURC).

    ``confidences[i]`` and ``errors[i]`` describe the items that *could* be answered (an answer
    exists for them, given or withdrawn); the other ``n_items - len(confidences)`` items are
    never answered. Answering the top-j items by confidence (ties broken towards errors, the
    pessimistic order) gives coverage j / ``n_items`` and risk = errors among them / j.
    Returns ``points`` [(coverage, risk, threshold)] for j = 1..n, ``aurc`` = the mean risk
    over those points (the empirical AURC of Geifman et al. 2019, "Bias-reduced uncertainty
    estimation for deep neural classifiers", over the reachable coverages), and
    ``max_coverage``. An empty input gives no points and NaN.
    """
    if len(confidences) != len(errors):
        raise ValueError(f"{len(confidences)} confidences for {len(errors)} error flags")
    order = sorted(range(len(confidences)), key=lambda i: (-confidences[i], not errors[i]))
    points = []
    wrong = 0
    for j, i in enumerate(order, 1):
        wrong += errors[i]
        points.append((j / n_items, wrong / j, confidences[i]))
    return {
        "points": points,
        "aurc": math.fsum(r for _, r, _ in points) / len(points) if points else NAN,
        "max_coverage": len(points) / n_items if n_items else NAN,
    }


def auroc(scores: Sequence[float], labels: Sequence[int | bool]) -> float:
    """Area under the ROC curve of ``scores`` for ``labels`` (1 = positive): the probability
    that a random positive scores above a random negative, ties counting half (the
    Mann–Whitney U statistic over n_pos · n_neg). NaN without both classes."""
    from scipy.stats import rankdata

    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return NAN
    ranks = rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


# ---------------------------------------------------------------- citations


def citation_scores(
    items: Sequence[tuple[Sequence[int], int, Sequence[bool]]],
) -> dict[str, float | int]:
    """Whether citations point somewhere real and back what they are attached to.

    Each item is (markers in the raw answer text, number of sources given to the model,
    supported flag of each cited sentence). ``marker_validity`` = markers with
    1 <= n <= n_sources / all markers; ``cited_sentence_support`` = supported / cited
    sentences; plus ``n_markers`` and ``n_cited_sentences``. NaN when a denominator is 0.
    """
    n_markers = valid = n_cited = supported = 0
    for markers, n_sources, flags in items:
        n_markers += len(markers)
        valid += sum(1 for m in markers if 1 <= m <= n_sources)
        n_cited += len(flags)
        supported += sum(1 for f in flags if f)
    return {
        "marker_validity": _ratio(valid, n_markers),
        "cited_sentence_support": _ratio(supported, n_cited),
        "n_markers": n_markers,
        "n_cited_sentences": n_cited,
    }


# ---------------------------------------------------------------- aggregation and reporting


def mean(values: Iterable[float]) -> float:
    """Mean of the values that are not NaN (undefined items do not drag it down); NaN if none."""
    kept = [v for v in values if not math.isnan(v)]
    return math.fsum(kept) / len(kept) if kept else NAN


def percent(x: float, digits: int = 1) -> str:
    """A fraction as a percentage for reports ("93.8%"); NaN prints as "—" (not measurable)."""
    if math.isnan(x):
        return "—"
    return f"{x * 100:.{digits}f}%"
