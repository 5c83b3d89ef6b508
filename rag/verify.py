"""Does each answer sentence stand on its evidence, and is that evidence about what was asked?

No NLI model or cross-encoder is obtainable offline here, so the checks are explicit and each
one's score is kept in the result (the evaluation draws risk–coverage curves from them):

1. **Evidence.** Every answer sentence is aligned to the source sentence(s) that state it
   (`rag.evidence`): within the passages it cites, or — when it cites none, or they do
   not back it while another passage does — in the passage that does (``attributed``).
2. **Content.** Its specific content (numbers, dates, names, quoted terms; `content_terms`)
   must occur in those evidence sentences, not merely somewhere in the chunk: a passage that
   says "Word2Vec: 300 dimensions … GloVe: co-occurrences" does not back "GloVe has 300".
3. **Support.** The sentence's terms are mostly in its evidence (lexical support: CJK
   character bigrams and Latin words, numbers and names weighted up) or, across languages, its
   embedding is close to the evidence sentence's (cosine).
4. **Subject.** The question's own terms (`question_terms`) occur in the evidence sentences or,
   where a sentence leaves its subject implicit, in their heading path or note title. Names and
   numbers asked about must all be there; other terms count towards a share.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from rag.evidence import Alignment, SourceSentence, align, source_sentences
from rag.markers import ParsedAnswer
from rag.retrieve import Passage
from rag.terms import (
    Haystack,
    Term,
    content_terms,
    folded,
    is_name,
    multiword_names,
    occurs,
    proper_nouns,
    question_terms,
    script_of,
)
from shiori.sparse import tokens

# Numbers and Latin words (names, model sizes, years) weigh more than kana/kanji bigrams: an
# invented "2023" or "Meta" matters more than a changed particle.
ENTITY_WEIGHT = 3.0
_HIRAGANA = re.compile(r"[\u3040-\u309f]")
# in the subject share: a name or number asked about counts this many times a plain term
NAME_WEIGHT = 3.0

# (texts a, texts b) -> cosine matrix, a row per text of a: closeness in meaning, any language
Similarity = Callable[[Sequence[str], Sequence[str]], np.ndarray]
# a name written in the other script ("Stanford" / "スタンフォード") is the same name above this
# cosine (measured with EmbeddingGemma's sentence-similarity prompt: Stanford/スタンフォード
# 0.87, Google/グーグル 0.93; Stanford/ケンブリッジ 0.71, Google/フェイスブック 0.64)
SAME_NAME = 0.8
_KATAKANA_RUN = re.compile(r"[\u30a1-\u30fa\u30fc]{2,}")
_LATIN_RUN = re.compile(
    r"[A-Za-z][A-Za-z0-9'’+#.-]*[A-Za-z0-9]|(?<![A-Za-z0-9])[A-Z](?![A-Za-z0-9])"
)
_SIZE = re.compile(r"\d+(?:\.\d+)?[KMBT]", re.I)
# clause boundaries inside a sentence: Japanese and Latin commas, semicolons, "while"/"whereas"
_KANJI_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々〆ヶ]{3,}")
_CLAUSE = re.compile(r"[、，,;；]|\s(?:while|whereas|but)\s", re.I)


def terms(text: str) -> set[str]:
    return set(tokens(text, unigrams=False)) or set(tokens(text, unigrams=True))


def _weight(term: str) -> float:
    return ENTITY_WEIGHT if term.isascii() else 1.0


def novel_terms(sentence: str, question: str = "") -> set[str]:
    """The sentence's terms that the question does not already say, bigrams with hiragana
    aside (particles and endings: "です", "家で"): what an answer sentence adds."""
    asked = terms(question) if question else set()
    return {t for t in terms(sentence) - asked if not _HIRAGANA.search(t)}


def support(sentence: str, sources: Sequence[str], question: str = "") -> float:
    """Weighted share of what the sentence adds to the question (`novel_terms`) found in the
    sources; 1.0 when it adds nothing (see `SentenceCheck.informative`)."""
    wanted = novel_terms(sentence, question)
    if not wanted:
        return 1.0
    have: set[str] = set()
    for source in sources:
        have |= terms(source)
    total = sum(_weight(t) for t in wanted)
    return sum(_weight(t) for t in wanted & have) / total


@dataclass(frozen=True)
class Thresholds:
    support: float = 0.5  # lexical support an answer sentence needs from its evidence
    semantic: float = 0.7  # or: cosine to its evidence (a sentence in another language)
    subject: float = 0.5  # share of the question's terms in the evidence's context
    subject_semantic: float = 0.6  # or: cosine of the question and the evidence's context


@dataclass(frozen=True)
class SentenceCheck:
    """One answer sentence, its evidence and the checks on it.

    ``markers``: the passages ([n]) its evidence comes from; ``attributed``: Shiori chose
    them (the model cited none, or cited a passage that does not back the sentence)."""

    text: str
    markers: list[int]
    support: float
    supported: bool
    similarity: float = 0.0
    attributed: bool = False
    evidence: tuple[SourceSentence, ...] = ()
    content: tuple[str, ...] = ()  # the sentence's specific content terms
    content_missing: tuple[str, ...] = ()  # …found in none of its evidence sentences
    informative: bool = True  # it says something the question does not (`novel_terms`)
    # evidence sentences that supply its content but name nothing the question or the answer
    # is about ("2022年11月30日に ChatGPT が公開" as the date of LLaMA)
    unanchored: tuple[str, ...] = ()
    # P(supported) from the grounding verifier (`shiori.grounding`); None: not scored
    verifier: float | None = None


@dataclass(frozen=True)
class SubjectCheck:
    """Whether the evidence is about what the question asks.

    ``coverage``: weighted share of the question's terms found in the evidence sentences,
    their heading paths and note titles (1.0 when the question has no terms to check);
    ``names_missing``: names and numbers of the question found nowhere there; ``missing``:
    every question term not found."""

    coverage: float
    missing: tuple[str, ...]
    names_missing: tuple[str, ...]
    passed: bool
    similarity: float = 0.0  # cosine of the question and the context (0.0: not computed)


def check(
    parsed: ParsedAnswer,
    passages: Sequence[Passage],
    question: str = "",
    thresholds: Thresholds | None = None,
    similarity: Similarity | None = None,
) -> list[SentenceCheck]:
    """Align every answer sentence to its evidence and check content and support.

    ``similarity`` scores answer sentences against source sentences in meaning; it is called
    once, and only when some answer sentence is in another script than some source sentence
    (the only case where lexical support cannot work)."""
    limits = thresholds or Thresholds()
    sentences = source_sentences(passages)
    proper = proper_nouns([p.chunk.text for p in passages] + [question])
    answer_texts = [s.text for s in parsed.sentences]
    semantic: np.ndarray | None = None
    scripts = {script_of(s.text) for s in sentences}
    if (
        similarity is not None
        and sentences
        and any({script_of(t)} != scripts for t in answer_texts)
    ):
        semantic = similarity(answer_texts, [s.text for s in sentences])
    # what the question is about, by name: its Latin names, and its katakana words that the
    # notes file a section under (a generic loanword like エンジン anchors nothing)
    topics = folded(" ".join(f"{p.chunk.heading} {p.chunk.title}" for p in passages))
    asked = [
        t
        for t in question_terms(question)
        if t.kind == "name" or (t.kind == "katakana" and t.key in topics)
    ]
    relevance = _relevance(question, sentences)
    position = {id(s): j for j, s in enumerate(sentences)}

    def about(found: Alignment) -> float:
        return max((relevance[position[id(e)]] for e in found.evidence), default=0.0)

    wanted_terms = question_terms(question)
    multiwords = multiword_names(question)
    results = []
    for i, sentence in enumerate(parsed.sentences):
        content = content_terms(sentence.text, question, proper)
        anchors = asked + [t for t in content if t.kind == "name"]
        row = semantic[i].tolist() if semantic is not None else None
        cited = [j for j, s in enumerate(sentences) if s.source in sentence.markers]
        everywhere = list(range(len(sentences)))
        attributed = False
        args = (sentence.text, question, content, sentences, row, limits, similarity, relevance)
        if cited:
            found, lex, ok = _aligned(cited, *args)
            other, other_lex, other_ok = _aligned(everywhere, *args)
            # the model cited a passage that does not back the sentence, or backs it with a
            # sentence about something else than asked (week 4's row for week 37's "4 回")
            if other_ok and (not ok or about(other) > about(found)):
                found, lex, ok, attributed = other, other_lex, True, True
        else:
            found, lex, ok = _aligned(everywhere, *args)
            attributed = bool(found.evidence)
        unanchored = _unanchored(found, content, anchors, wanted_terms, multiwords)
        if unanchored:
            ok = False
        results.append(
            SentenceCheck(
                text=sentence.text,
                markers=sorted({e.source for e in found.evidence}) or list(sentence.markers),
                support=round(lex, 3),
                supported=ok,
                similarity=round(found.similarity, 3),
                attributed=attributed,
                evidence=found.evidence,
                content=tuple(t.text for t in content),
                content_missing=found.content_missing,
                informative=bool(novel_terms(sentence.text, question)),
                unanchored=unanchored,
            )
        )
    return results


def _relevance(question: str, sentences: Sequence[SourceSentence]) -> list[float]:
    """For each source sentence, the share of the question's terms in its context: between
    sentences that back an answer equally, the one about what was asked is its evidence."""
    wanted = question_terms(question)
    if not wanted:
        return [0.0] * len(sentences)
    out = []
    for s in sentences:
        haystack = Haystack.of(s.context)
        out.append(sum(occurs(t, haystack) for t in wanted) / len(wanted))
    return out


def _aligned(
    pool: Sequence[int],
    text: str,
    question: str,
    content: Sequence[Term],
    sentences: Sequence[SourceSentence],
    row: Sequence[float] | None,
    limits: Thresholds,
    similarity: Similarity | None,
    relevance: Sequence[float],
) -> tuple[Alignment, float, bool]:
    """The evidence for ``text`` among ``sentences[pool]``, its lexical support, and whether
    content and support checks pass. Support measures what the sentence adds to the question
    against its evidence's context (heading path included: "GloVe は…" under "## GloVe");
    the question's own words are the subject check's business."""
    chosen = [sentences[j] for j in pool]
    lexical = [support(text, [c.context], question) for c in chosen]

    def joint(evidence: Sequence[SourceSentence]) -> float:
        return support(text, [e.context for e in evidence], question)

    found = align(
        content,
        chosen,
        lexical,
        [row[j] for j in pool] if row else None,
        joint,
        limits.support,
        [relevance[j] for j in pool],
    )
    lex = support(text, [e.context for e in found.evidence], question)
    if found.content_missing and similarity is not None:
        found = replace(found, content_missing=_transliterated(found, content, similarity))
    ok = not found.content_missing and (
        lex >= limits.support or found.similarity >= limits.semantic
    )
    return found, lex, ok


def _unanchored(
    found: Alignment,
    content: Sequence[Term],
    anchors: Sequence[Term],
    asked: Sequence[Term],
    multiwords: Sequence[Sequence[Term]] = (),
) -> tuple[str, ...]:
    """The evidence sentences that supply some of the content but are about something else
    (`_borrowed`)."""
    return tuple(
        e.text for e in found.evidence if _borrowed(e, content, anchors, asked, multiwords)
    )


def _borrowed(
    e: SourceSentence,
    content: Sequence[Term],
    anchors: Sequence[Term],
    asked: Sequence[Term],
    multiwords: Sequence[Sequence[Term]] = (),
) -> bool:
    """Does ``e`` supply some of the answer's content about something other than what was asked?

    ``anchors`` are the names the question asks about and the names the answer sentence uses
    (other than what ``e`` supplies); ``asked`` are all the question's terms. The sentence's
    rivals are the names it mentions that are not anchors. It is about something else when:

    1. the clause holding the content contrasts with the question: it has a compound with the
       same head as one the question asks about but another modifier ("英独翻訳で BLEU 28.4、
       英仏翻訳で BLEU 41.8" gives 41.8 to 英仏, not 英独), or it names a rival while the
       asked name is in another clause ("A をランダムに、B をゼロにする" does not make B random);
    2. it names a rival while a name the question writes in several words is only partly near
       it (its lead-in, its headings up to the nearest one that names something: `_near`) —
       "Claude 3.5 Sonnet was released on 20 June 2024" is no date for Claude 3.5 Haiku;
    3. nothing near it names an anchor, and its broader context (heading path, title) does not
       either, or it names a rival itself ("| BERT-Base | 12 | 768 |" under "ELMo と BERT >
       BERT > モデルサイズ" gives no size of ELMo's).
    """
    labelled, sentence = Haystack.of(e.labelled), Haystack.of(e.text)
    supplied = [t for t in content if occurs(t, labelled)]
    if not any(occurs(t, sentence) for t in supplied):
        return False
    keys = {t.key for t in supplied}
    clauses = [Haystack.of(c) for c in _CLAUSE.split(e.text)]
    holding = next((c for c in clauses if any(occurs(t, c) for t in supplied)), sentence)
    if _contrasted(holding, asked):
        return True
    wanted = [a for a in anchors if a.key not in keys]
    if not wanted:
        return False
    rivals = [n for n in _names(e.text) if n not in keys and not _is_anchor(n, anchors)]
    near = Haystack.of(_near(e))
    if any(occurs(a, sentence) for a in wanted) and len(clauses) > 1:
        in_clause = [n for n in rivals if occurs(Term(n, "name"), holding)]
        return not any(occurs(a, holding) for a in wanted) and bool(in_clause)
    for words in multiwords:
        present = [occurs(w, near) for w in words]
        if rivals and any(present) and not all(present):
            return True
    if any(occurs(a, near) for a in wanted):
        return False
    return bool(rivals) or not any(occurs(a, Haystack.of(e.context)) for a in wanted)


def _contrasted(clause: Haystack, asked: Sequence[Term]) -> bool:
    """The clause lacks a compound the question asks about but has one with the same head and
    another modifier (英独翻訳 / 英仏翻訳, 生物由来説 / 無機由来説)."""
    runs = set(_KANJI_RUN.findall(clause.words))
    for q in asked:
        if q.kind != "kanji" or len(q.key) < 3 or occurs(q, clause):
            continue
        if any(len(r) >= 3 and r != q.key and r[-2:] == q.key[-2:] for r in runs):
            return True
    return False


def _names(text: str) -> list[str]:
    """Folded Latin names a text mentions: acronyms, inner capitals, sizes, and capitalised
    words other than the one that opens a sentence ("Weights are…" names nothing)."""
    text = unicodedata.normalize("NFKC", text)
    found = []
    for match in _LATIN_RUN.finditer(text):
        word = match.group(0)
        before = text[: match.start()].rstrip(" \t*-•・|#>")
        first = not before or before[-1] in ".!?。！？\n"
        if is_name(word, first):
            found.append(folded(word))
    return found


def _near(e: SourceSentence) -> str:
    """What an evidence sentence is specifically about: the sentence, its lead-in, and its
    headings from the innermost out to the first one that names something
    ("## Stable Diffusion > ### 公開と特徴" → both headings;
    "# ELMo と BERT > ## BERT > ### モデルサイズ" → not the title, so not ELMo)."""
    headings = []
    for heading in reversed([h for h in e.heading.split(" > ") if h]):
        headings.append(heading)
        if _names(heading):
            break
    return "\n".join([e.lead, e.text, *headings])


def _is_anchor(name: str, anchors: Sequence[Term]) -> bool:
    """``name`` is an anchor or part of one ("Llama" of "Llama 2"); a letter or two only when
    it is the same ("A" is not part of "LoRA")."""
    if len(name) <= 2:
        return any(name == a.key for a in anchors)
    return any(name == a.key or name in a.key or a.key in name for a in anchors)


def _transliterated(
    found: Alignment, content: Sequence[Term], similarity: Similarity
) -> tuple[str, ...]:
    """The missing content terms that are not a name the evidence writes in the other script
    (an answer's "Stanford" for the note's "スタンフォード", or the reverse)."""
    evidence = " ".join(e.text for e in found.evidence)
    katakana = sorted(set(_KATAKANA_RUN.findall(evidence)))
    latin = sorted(set(_LATIN_RUN.findall(evidence)))
    still = []
    for t in content:
        if t.text not in found.content_missing:
            continue
        others = katakana if script_of(t.text) == "en" else latin
        if t.kind == "number" or not others or similarity([t.text], others).max() < SAME_NAME:
            still.append(t.text)
    return tuple(still)


def check_subject(
    question: str,
    checks: Sequence[SentenceCheck],
    passages: Sequence[Passage] = (),
    thresholds: Thresholds | None = None,
    similarity: Similarity | None = None,
) -> SubjectCheck:
    """Is the evidence of the supported sentences about the question's subject?

    The context is each evidence sentence with the sentences leading up to it in its paragraph,
    its heading path and note title (a list item under "## GloVe" is about GloVe).

    - A name the question asks about that the notes file a section under (it is in a heading
      or title of some retrieved passage: GloVe, Word2Vec) must be in that context: the notes
      have a place for it, and an answer from another place is the neighbour's fact. A name
      written in the other script there counts (`SAME_NAME`).
    - The other terms count towards a share (names and numbers weigh ``NAME_WEIGHT``); a
      question term in another script than the whole context (a Japanese term over English
      notes) is left out, except names and numbers, which both languages write alike. Below
      ``thresholds.subject``, a question in the other language than the context may still
      agree with it in meaning (cosine ≥ ``thresholds.subject_semantic``). Within one
      language meaning is not enough: the rest of a Wikipedia article is close in meaning to
      a question about its missing paragraph.
    """
    limits = thresholds or Thresholds()
    wanted = question_terms(question)
    contexts = [e.context for c in checks if c.supported for e in c.evidence]
    context = "\n".join(contexts)
    haystack = Haystack.of(context)
    scripts = script_of(context) if context else "en"
    topics = folded(" ".join(f"{p.chunk.heading} {p.chunk.title}" for p in passages))
    counted: list[Term] = []
    for t in wanted:
        strict = t.kind in ("name", "number")
        if strict or script_of(t.text) == scripts or (scripts == "ja" and t.kind == "latin"):
            counted.append(t)
    found = [occurs(t, haystack) for t in counted]
    if similarity is not None and context:
        for i, t in enumerate(counted):
            if not found[i] and t.kind == "name":
                found[i] = _same_name(t.text, context, similarity)
    weights = [NAME_WEIGHT if t.kind in ("name", "number") else 1.0 for t in counted]
    total = sum(weights)
    coverage = sum(w for w, f in zip(weights, found, strict=True) if f) / total if total else 1.0
    missing = tuple(t.text for t, f in zip(counted, found, strict=True) if not f)
    names = tuple(
        t.text
        for t, f in zip(counted, found, strict=True)
        if not f and t.kind == "name" and t.key in topics
    )
    agrees = coverage >= limits.subject
    closeness = 0.0
    if similarity is not None and context:
        closeness = float(similarity([question], [context])[0, 0])
    if not agrees and not names and script_of(question) != scripts:
        # across languages few terms can match letter for letter: meaning decides
        agrees = closeness >= limits.subject_semantic
    passed = bool(contexts) and not names and agrees
    return SubjectCheck(round(coverage, 3), missing, names, passed, round(closeness, 3))


def _same_name(name: str, context: str, similarity: Similarity) -> bool:
    """``name`` appears in ``context`` written in the other script."""
    others = (
        _KATAKANA_RUN.findall(context) if script_of(name) == "en" else _LATIN_RUN.findall(context)
    )
    others = sorted(set(others))
    return bool(others) and float(similarity([name], others).max()) >= SAME_NAME
