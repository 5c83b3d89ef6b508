"""When to say "not in your notes": retrieval evidence first, the model's own refusal second,
and the verification of what it wrote last.

The CPU model invents answers when the sources lack them (RESEARCH 2b), so its word alone is
not enough: a question whose best passage is neither semantically close nor shares its key
terms is refused before generation, and so is one that names a specific thing (a model and its
version, an acronym, a hyphenated technical term) that no retrieved passage mentions: asked
about "Gemma 3" with passages on Gemma and Gemma 2 only, the model answers with their facts.
An answer none of whose sentences is supported by the sources is withdrawn after generation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from service.rag.prompt import NOT_FOUND
from service.rag.retrieve import Passage
from service.rag.terms import missing_terms as missing_terms
from service.rag.verify import SentenceCheck
from shiori.config import Settings

# Loose on purpose: the model's refusal wording drifts ("資料には…", "データには…").
_REFUSAL = re.compile(
    "|".join(
        [
            re.escape(NOT_FOUND),
            r"(見つかり|含まれて(い)?|記載(が|は)|書かれて(い)?|情報(が|は))(ません|ない|ありません)",
            r"(明記|明示|記載|記述|言及|示)されて(い)?(ません|ない)",
            r"(分|わ)かりません|不明です",
            r"(資料|ソース|情報源|データ|ノート)(には|に|では).{0,20}(ありません|ない|できません)",
            r"(答え|回答)(られ|でき)ません",
            r"\b(cannot|can't|could not|unable to) (find|answer|determine)",
            r"\b(do|does) not (contain|mention|say|provide|include)",
            r"\bno (information|mention)\b",
            # the second reading (no NOT_FOUND offered) refuses in words: "… is not disclosed
            # in the sources"
            r"\bnot (mentioned|provided|stated|specified|disclosed|given|listed|included|known)\b",
            r"\bnot (found|available|present) in the (sources?|notes?|text|context|passages?)\b",
        ]
    ),
    re.I,
)


@dataclass(frozen=True)
class AbstentionPolicy:
    min_similarity: float = 0.45  # best passage's cosine similarity to the question
    min_term_overlap: float = 0.5  # or: share of the question's terms in the best passage
    min_supported_share: float = 0.5  # of the answer's sentences
    require_specific_terms: bool = True  # abstain when a passage-less specific term is asked

    @classmethod
    def from_settings(cls, settings: Settings) -> AbstentionPolicy:
        return cls(
            min_similarity=settings.abstain_min_similarity,
            min_term_overlap=settings.abstain_min_term_overlap,
            require_specific_terms=settings.abstain_on_missing_terms,
        )


def weak_evidence(passages: Sequence[Passage], policy: AbstentionPolicy) -> bool:
    if not passages:
        return True
    best_similarity = max(p.similarity for p in passages)
    best_overlap = max(p.term_overlap for p in passages)
    return best_similarity < policy.min_similarity and best_overlap < policy.min_term_overlap


def model_refused(answer: str) -> bool:
    return not answer.strip() or bool(_REFUSAL.search(answer))


def unsupported_answer(checks: Sequence[SentenceCheck], policy: AbstentionPolicy) -> bool:
    if not checks:
        return True
    supported = sum(c.supported for c in checks)
    return supported / len(checks) < policy.min_supported_share


def abstention_text(language: str, missing: Sequence[str] = ()) -> str:
    if language == "ja":
        if missing:
            named = "、".join(f"「{t}」" for t in missing)
            return (
                f"ノートには{named}についての記述が見つかりませんでした。"
                "関連しそうな箇所を下に示します。"
            )
        return "ノートにはこの質問の答えが見つかりませんでした。関連しそうな箇所を下に示します。"
    if missing:
        named = ", ".join(f"“{t}”" for t in missing)
        return f"Your notes do not mention {named}. The closest passages are listed below."
    return "Your notes do not answer this question. The closest passages are listed below."
