"""After generation: the model's text, checked against its evidence, becomes the answer a
user sees — or an abstention that says why.

Kept apart from retrieval and generation so that the same decision can be replayed on stored
model outputs (`shiori eval replay`): changing a check or a threshold is measured on a whole
golden set in seconds, without asking the model again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from rag.abstain import AbstentionPolicy, abstention_text, model_refused
from rag.markers import parse_answer
from rag.retrieve import Passage
from rag.terms import (
    asks_for_name,
    asks_for_number,
    content_terms,
    new_numbers,
    script_of,
)
from rag.verify import (
    SentenceCheck,
    Similarity,
    SubjectCheck,
    Thresholds,
    check,
    check_subject,
)
from shiori.config import Settings
from shiori.embedding import Embedder
from shiori.grounding import Claim, GroundingVerifier


@dataclass
class Verdict:
    """What the checks made of one model output.

    ``reason``: answered | model_refused | unsupported | off_subject | no_answer (the
    question asks for a number or a date and the supported sentences give none); ``answer``: the
    supported sentences with their markers, or the abstention text; ``cited``: the passages
    ([n]) the shown answer rests on."""

    reason: str
    answer: str
    checks: list[SentenceCheck] = field(default_factory=list)
    subject: SubjectCheck | None = None
    cited: list[int] = field(default_factory=list)
    invalid_markers: list[int] = field(default_factory=list)

    @property
    def abstained(self) -> bool:
        return self.reason != "answered"


def embedding_similarity(embedder: Embedder) -> Similarity:
    """Cosine of the model's sentence-similarity vectors of two lists of texts.

    The symmetric STS prompt, not the retrieval prompts: on this project's notes it puts an
    English sentence and the Japanese one it restates at 0.67–0.73 and unrelated pairs at
    0.36–0.48, where query-vs-document vectors gave 0.36–0.59 against 0.09–0.25."""

    def similarity(a: Sequence[str], b: Sequence[str]) -> np.ndarray:
        vectors = embedder.embed_for_similarity([*a, *b])
        return np.asarray(vectors[: len(a)] @ vectors[len(a) :].T, dtype=np.float32)

    return similarity


# (claims) -> P(supported) of each: `shiori.grounding.GroundingVerifier.score`
Scorer = Callable[[Sequence[Claim]], np.ndarray]


def claim_of(question: str, c: SentenceCheck, passages: Sequence[Passage]) -> Claim:
    """What the grounding verifier reads of one checked answer sentence: its evidence
    sentences with the sentences leading up to them, under their heading path and title; where
    nothing was aligned, the start of the first passage it cites (so it scores low, not never)."""
    if c.evidence:
        first = c.evidence[0]
        heading = " > ".join(x for x in (first.title, first.heading) if x)
        evidence = " ".join(dict.fromkeys(t for e in c.evidence for t in (e.lead, e.text) if t))
    else:
        cited = passages[c.markers[0] - 1].chunk if c.markers else None
        heading = cited.heading if cited else ""
        evidence = cited.text[:400] if cited else ""
    return Claim(question=question, heading=heading, evidence=evidence, claim=c.text)


class Verifier:
    """The checks and the abstention policy, shared across requests.

    ``scorer`` (the grounding verifier) scores every answer sentence in one batched call.
    With ``decide`` it decides together with the rules (not across languages or on table
    rows, which it was not trained on): a sentence the rules accept is
    withdrawn when its score is below ``threshold``; one they refuse is shown when its score is
    at least ``accept`` and the exact checks hold (its numbers and names occur in its evidence,
    which is about what it names). Evidence from text flagged as instructions never counts
    (`rag.evidence.source_sentences`). The two thresholds come from the dev split of the
    verifier's data (recall 0.958 at 0.3, precision 0.968 at 0.9: shiori/verifier/manifest.json
    and docs/benchmarks.md)."""

    def __init__(
        self,
        thresholds: Thresholds,
        policy: AbstentionPolicy,
        similarity: Similarity | None = None,
        scorer: Scorer | None = None,
        decide: bool = False,
        threshold: float = 0.3,
        accept: float = 0.9,
    ) -> None:
        self.thresholds = thresholds
        self.policy = policy
        self.similarity = similarity
        self.scorer = scorer
        self.decide = decide and scorer is not None
        self.threshold = threshold
        self.accept = accept

    @classmethod
    def from_settings(
        cls, settings: Settings, embedder: Embedder, grounding: GroundingVerifier | None = None
    ) -> Verifier:
        use = grounding is not None and settings.verifier != "off" and grounding.available
        return cls(
            Thresholds(
                support=settings.support_threshold,
                semantic=settings.semantic_support_threshold,
                subject=settings.subject_threshold,
                subject_semantic=settings.subject_semantic_threshold,
            ),
            AbstentionPolicy.from_settings(settings),
            embedding_similarity(embedder),
            scorer=grounding.score if use and grounding is not None else None,
            decide=settings.verifier == "decide",
            threshold=settings.verifier_threshold,
            accept=settings.verifier_accept,
        )

    def scored(
        self, question: str, checks: list[SentenceCheck], passages: Sequence[Passage]
    ) -> list[SentenceCheck]:
        """``checks`` with the verifier's score, and its decision where it decides."""
        if self.scorer is None or not checks:
            return checks
        scores = self.scorer([claim_of(question, c, passages) for c in checks])
        out = []
        for c, p in zip(checks, scores.tolist(), strict=True):
            c = replace(c, verifier=round(float(p), 4))
            if self.decide and not _outside_training(c):
                # the rules' yes stands unless the verifier finds it unlikely; their no is
                # overturned only where the verifier is sure and the exact checks hold
                sure = p >= self.accept and bool(c.evidence)
                sure = sure and not c.content_missing and not c.unanchored
                c = replace(c, supported=(c.supported and p >= self.threshold) or sure)
            out.append(c)
        return out

    def judge(self, question: str, raw: str, passages: Sequence[Passage], language: str) -> Verdict:
        """Check ``raw`` (the model's text, with [n] markers into ``passages``)."""
        parsed = parse_answer(raw, len(passages))
        invalid = parsed.invalid_markers
        refusal = abstention_text(language)
        if model_refused(raw):
            return Verdict("model_refused", refusal, invalid_markers=invalid)
        checks = check(parsed, passages, question, self.thresholds, self.similarity)
        checks = self.scored(question, checks, passages)
        subject = check_subject(question, checks, passages, self.thresholds, self.similarity)
        verdict = Verdict("answered", "", checks, subject, invalid_markers=invalid)
        shown = [c for c in checks if c.supported]
        if not checks or len(shown) / len(checks) < self.policy.min_supported_share:
            verdict.reason, verdict.answer = "unsupported", refusal
        elif not subject.passed:
            verdict.reason, verdict.answer = "off_subject", refusal
        elif not any(c.informative for c in shown) or not answers_kind(question, shown):
            # the question restated ("Google検索の読みは「Google検索」"), or "何トークン？"
            # answered with a supported sentence that gives no number at all
            verdict.reason, verdict.answer = "no_answer", refusal
        else:
            # only what the evidence backs reaches the user; the rest is listed as unsupported
            verdict.answer = with_markers(shown)
            verdict.cited = sorted({m for c in shown for m in c.markers})
        return verdict


def _outside_training(c: SentenceCheck) -> bool:
    """Evidence of a kind the verifier was not trained on (shiori/verifier/DATA_CARD.md:
    JSQuAD is Japanese prose): an answer sentence in another script than its evidence, or
    evidence that is a table row. There its score is shown, and the rules decide."""
    return any(
        script_of(e.text) != script_of(c.text) or e.text.lstrip().startswith("|")
        for e in c.evidence
    )


def answers_kind(question: str, shown: Sequence[SentenceCheck]) -> bool:
    """Do the shown sentences give the kind of thing asked for: a number or date for "何年 /
    how many", a name for "誰 / who" (one the question does not already say)?"""
    if asks_for_number(question) and not any(new_numbers(c.text, question) for c in shown):
        return False
    if asks_for_name(question) and script_of(question) == "en":
        # (Japanese names are often kanji, which no pattern tells from other words)
        named = [t for c in shown for t in content_terms(c.text, question)]
        return any(t.kind in ("name", "katakana", "quoted") for t in named)
    return True


def with_markers(checks: Sequence[SentenceCheck]) -> str:
    """Rebuild the answer from its checked sentences, each followed by its markers."""
    joiner = "" if any("\u3040" <= ch <= "\u9fff" for c in checks for ch in c.text) else " "
    return joiner.join(c.text + "".join(f"[{m}]" for m in c.markers) for c in checks)
