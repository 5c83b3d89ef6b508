"""Candidate study items drawn from the notes' stored chunks, deterministically.

Each chunk's text is read line by line (code fences, headings and table lines aside), lines are
cut into sentences, and each sentence is matched against a few patterns per language:

- definition: 「XとはYである」, 「XはYの一種である」, "X is a Y", list items "X: Y" / 「X：Y」;
- number and date: 「XはN…である」 (date when N is a date), "X is N …", 「YYYY年M月に X が公開
  された」, "X was published … in May 2023";
- name: 「XはYが開発した」, "X was proposed by Y";
- contrast: 「AはX、BはYを使っている」, 「AにはX、BにはYが使われている」, "A uses X while B
  uses Y" (one item per side);
- table: each cell through its header row and its row's first cell (markdown tables).

Questions are asked in the note's language and, when the sentence does not name what it is
about, name the nearest heading of its path that names an entity (deepest first, the title up to
a separator last), never a title or heading joining two names (「ELMo と BERT」, "LoRA vs QLoRA");
when none names it, the question is not asked. Answers lose copula endings (である, です).
What is drawn is spread over notes and headings (round-robin) so that the first N cover the
notes. No model is involved: the same notes give the same items in the same order on every run.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from markdown_it import MarkdownIt

from shiori.chunk import Chunk
from study.items import Kind, Language, StudyItem, fold

if TYPE_CHECKING:
    from shiori.index import NoteIndex

T = TypeVar("T")

MAX_ANSWER = 60  # characters: a longer answer is not something to recall, nor to check
MIN_ANSWER = 1

_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
_LETTER = re.compile(r"[^\W\d_]")
_LIST_MARK = re.compile(r"^\s*(?:[-*+]\s+|[・•]\s*|\d+[.)]\s+)")  # ・ and • : pasted notes
_FENCE = re.compile(r"^\s*(```|~~~)")
_JA_SENTENCE = re.compile(r"[^。！？]+[。！？]?")
_EN_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"“(])")
_DEMONSTRATIVE = re.compile(
    r"^(?:この|その|あの|これ|それ|あれ|ここ|そこ|なお|ただし|また|つまり|もともと|一方|特に|実際|"
    r"たとえば|例えば|ポイント|結論)"
)
_EN_DEMONSTRATIVE = re.compile(
    r"^(?:this|that|these|those|it|they|there|here|which|example|note|e\.g|i\.e|see)\b", re.I
)
_TITLE_SEPARATOR = re.compile(r"\s*(?:[：:—–]|\s-\s)\s*")
_PARENTHESES = re.compile(r"\s*[（(][^（）()]*[）)]\s*")
_JOINED = re.compile(
    r"\S\s*(?:と|及び|および|や|・|、|&|/|／)\s*\S|\s(?:and|vs\.?|versus|or)\s", re.I
)
_NUMBERING = re.compile(r"^(?:\d+[.)]\s+|第?\d+[章節]\s*)")
_GENERIC_KATAKANA = (
    "サイズ",
    "データ",
    "メモ",
    "ポイント",
    "ステップ",
    "タスク",
    "モデル",
    "ノート",
)
_GENERIC_HEADER = {"", "項目", "item", "items", "属性", "attribute", "property", "観点", "比較"}

_JA_COPULA = r"(?:である|です|だ|となる|になる)"
_JA_DATE = re.compile(r"\d{4}\s*年(?:\s*\d{1,2}\s*月(?:\s*\d{1,2}\s*日)?)?")
_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
)
_EN_DATE = re.compile(rf"(?:{_MONTH}\s+(?:\d{{1,2}},\s+)?)?\d{{4}}")


@dataclass(frozen=True)
class Fact:
    """A question and its answer found in one sentence."""

    kind: Kind
    question: str
    answer: str


@dataclass(frozen=True)
class Context:
    """What a question may need to name: the note's subject (or its section's)."""

    subject: str
    language: Language

    def about(self, term: str) -> bool:
        """Does ``term`` already name the subject?"""
        return bool(self.subject) and fold(self.subject) in fold(term)


class NoSubject(Exception):
    """A question would need a subject and none names the thing the evidence is about."""


# --- sentences -------------------------------------------------------------------------------


def language_of(text: str) -> Language:
    """'ja' when at least a sixth of the letters are kana or kanji, else 'en' (an English note
    with a few Japanese terms stays English)."""
    letters = len(_LETTER.findall(text))
    japanese = len(_JAPANESE.findall(text))
    return "ja" if letters and japanese / letters >= 1 / 6 else "en"


def subject_of(title: str) -> str:
    """The note's subject: its title up to the first separator ("Gemma：Google の…" → "Gemma",
    "QLoRA — fine-tuning…" → "QLoRA"), parentheses dropped."""
    head = _TITLE_SEPARATOR.split(title.strip(), maxsplit=1)[0]
    return _PARENTHESES.sub(" ", head).strip() or title.strip()


def joins(text: str) -> bool:
    """Does ``text`` join two or more names (「ELMo と BERT」, "LoRA vs QLoRA", "A and B",
    「A・B」)? Such a heading or title is about several things, not the one a sentence is about."""
    return bool(_JOINED.search(text))


def _name_in_heading(heading: str, language: Language) -> str:
    """The entity a heading names, else "": "DDPM（2020年）" → "DDPM", "初代 Gemma" → "初代 Gemma",
    「チャンキング」 → 「チャンキング」, 「RLHF の難しさ」 → "RLHF", "4. Paged optimisers (NF4)" →
    ""; a generic heading (「基本情報」, 「モデルサイズ」, "Basic facts") or one joining two names
    names none."""
    head = subject_of(_NUMBERING.sub("", heading.strip()))
    if not head or joins(head):
        return ""
    if language == "ja":
        if m := re.fullmatch(r"([A-Za-z][\w.+-]*(?: [A-Za-z0-9][\w.+-]*)*)\s*の\s*\S+", head):
            return m.group(1)
        if re.search(r"[\u3041-\u309f]", head):
            return ""
        if re.search(r"[A-Za-z]{2,}|[A-Za-z]\d", head):
            return head
        if re.fullmatch(r"[\u30a0-\u30ff]{2,}", head) and not head.endswith(_GENERIC_KATAKANA):
            return head
        return ""
    if re.search(r"\b(?:[A-Z]{2,}\w*|\w+[A-Z]\w*|\w*\d\w*[A-Za-z]\w*)\b", head):
        return head if len(head) <= 30 else ""
    return ""


def context_of(chunk: Chunk, language: Language) -> Context:
    """The chunk's subject: the nearest heading of its path (deepest first, title last) that
    names an entity ("DDPM（2020年）" → "DDPM", 「チャンキング」), else the note's subject (its
    title up to a separator) unless that joins two names (「ELMo と BERT」) or is only the
    file's name (a note without a title): then none, and questions that need a subject are not
    asked."""
    headings = list(chunk.headings)
    if headings and fold(headings[0]) == fold(chunk.title):
        headings = headings[1:]
    for heading in reversed(headings):
        # NFKC: a heading typed full-width (ＧＰＴ－２) names what the sentences' GPT-2 names
        if name := _name_in_heading(unicodedata.normalize("NFKC", heading), language):
            return Context(name, language)
    subject = subject_of(unicodedata.normalize("NFKC", chunk.title))
    if joins(subject) or fold(chunk.title) == fold(Path(chunk.source).stem):
        # a title that is only the file's name ("week3", "2024-05-notes") names no entity
        subject = ""
    return Context(_short(subject), language)


def sentences(chunk: Chunk, language: Language) -> Iterator[tuple[str, int]]:
    """(sentence, offset into the chunk's text) of each prose sentence and list item; headings,
    code, tables, HTML comments and a split table's repeated header are skipped."""
    text = chunk.text
    offset = chunk.lead_chars + 1 if chunk.lead_chars else 0
    fenced = False
    for line in text[offset:].split("\n"):
        start = offset
        offset += len(line) + 1
        if _FENCE.match(line):
            fenced = not fenced
            continue
        stripped = line.strip()
        if fenced or not stripped or stripped[0] in "#|<>!" or stripped.startswith("[^"):
            continue
        mark = _LIST_MARK.match(line)
        body_at = start + (mark.end() if mark else len(line) - len(line.lstrip()))
        body = text[body_at : offset - 1].rstrip()
        if language == "ja":
            for m in _JA_SENTENCE.finditer(body):
                piece = m.group(0).strip()
                if piece:
                    yield piece, body_at + m.start() + (len(m.group(0)) - len(m.group(0).lstrip()))
        else:
            at = 0
            for piece in _EN_SENTENCE.split(body):
                found = body.find(piece, at)
                at = found + len(piece)
                if piece.strip():
                    yield piece.strip(), body_at + found


# --- the patterns ----------------------------------------------------------------------------


def _clean(answer: str) -> str:
    answer = answer.strip().lstrip("、,").strip().strip("「」『』\"“”'`*").strip()
    answer = re.sub(r"^(?:a|an|the) (?=\w)", "", answer)  # "a parallel scan" → "parallel scan"
    answer = re.sub(r"[。．.、,;：:]+$", "", answer).strip()
    # a sentence's copula is not part of what is recalled: 「…約1.17億である」 → 「…約1.17億」
    answer = re.sub(r"(?:である|です|(?<=[^\u3041-\u309f])だ)$", "", answer)
    return re.sub(r"[。．.、,;：:]+$", "", answer).strip()


def _balanced(text: str) -> bool:
    return all(text.count(a) == text.count(b) for a, b in ("「」", "（）", "()", "『』", "“”"))


def _ok(answer: str, question: str) -> bool:
    """A short answer, not given away by the question, with its brackets closed (a bracket
    left open means a pattern cut a quotation in two)."""
    a = fold(answer)
    return (
        MIN_ANSWER <= len(answer) <= MAX_ANSWER
        and bool(a)
        and a not in fold(question)
        and _balanced(answer)
        and _balanced(question)
    )


def _short(subject: str) -> str:
    """The subject as a question may name it: a long title is cut to its leading Latin name
    ("LoRA とパラメータ効率の良い…" → "LoRA", "Hallucination in LLMs" → "Hallucination"),
    else left out."""
    if len(subject) <= 15:
        return subject
    m = re.match(r"[A-Za-z][\w.-]*(?: [A-Z0-9][\w.-]*)*", subject)
    return m.group(0) if m else ""


def _subject(ctx: Context) -> str:
    """The subject a question needs; `NoSubject` when there is none."""
    if not ctx.subject:
        raise NoSubject
    return ctx.subject


def _ja_name(term: str) -> bool:
    """Is ``term`` a name of its own (MMLU, BERT-Base の層数, GPT-2 の語彙数), not a generic
    phrase that starts with a version or a size ("v1 系の…", "9B と 27B のモデル")?"""
    return bool(re.search(r"[A-Za-z]{2,}", term)) and not re.match(r"[A-Za-z]?\d", term)


def _ja_subject(ctx: Context, term: str) -> str:
    """``term`` with the subject before it when it is a generic word ("文脈長" → "Gemma の文脈
    長", "v1 系のテキストエンコーダ" → "Stable Diffusion の v1 系の…"); a name (MMLU,
    BERT-Base) stands alone. `NoSubject` when the term needs a subject and none is known."""
    term = term.strip()
    if ctx.about(term) or _ja_name(term):
        return term
    subject = _subject(ctx)
    joiner = " の" if re.search(r"[A-Za-z0-9]$", subject) else "の"
    if re.match(r"[A-Za-z0-9]", term):
        joiner += " "
    return f"{subject}{joiner}{term}"


def _lower_first(term: str) -> str:
    """ "Intrinsic hallucination" → "intrinsic hallucination"; a name ("GPT-4", "QLoRA") as
    it is."""
    if re.match(r"[A-Z][a-z]+(?:\s|$)", term):
        return term[0].lower() + term[1:]
    return term


def _en_name(term: str) -> bool:
    return bool(re.search(r"(?<=.)[A-Z]|\d", term))


def _en_subject(ctx: Context, term: str) -> str:
    """``term`` with "in <subject>" after it when it is a generic phrase ("context length");
    a name (a capital after the first letter, a digit) or a phrase naming the subject stands
    alone. `NoSubject` when a generic phrase has no subject."""
    term = term.strip()
    if ctx.about(term) or _en_name(term):
        return term
    return f"{term} in {_subject(ctx)}"


def _en_noun(ctx: Context, term: str) -> str:
    """A sentence's subject as a question names it: "The large model" → "the large model in
    Mamba"; a name ("Mamba", "GPT-4") as it is."""
    term = term.strip()
    bare = re.sub(r"^(?:the|a|an) ", "", term, flags=re.I)
    if _en_name(bare) or (bare == term and bare[:1].isupper()):
        return bare
    return f"the {_en_subject(ctx, bare)}"


def _attribute(label: str) -> str:
    """A column or row label as a phrase: "Year" → "year", "Weights public?" → "weights
    public"; an acronym or name keeps its capitals."""
    label = label.strip().rstrip("?？:：").strip()
    if re.fullmatch(r"[A-Z][a-z][a-z -]*", label):
        return label.lower()
    return label


_JA_DEFINITION = re.compile(
    rf"^(?P<x>[^、。「」]{{1,30}}?)とは、?(?P<y>[^。]{{2,60}}?)(?:のこと)?(?:{_JA_COPULA}|を指す|をいう|を言う)。?$"
)
_JA_KIND_OF = re.compile(
    rf"^(?P<x>[^、。]{{1,30}}?)は、?(?P<y>[^。]{{1,40}}?)の一種{_JA_COPULA}?。?$"
)
_JA_IS = re.compile(
    rf"(?:^|、|で、)(?P<x>[^、。はがを]{{1,20}}?)\s*は、?\s*(?P<y>[^。]{{1,50}}?){_JA_COPULA}。?$"
)
_JA_COLON = re.compile(r"^(?P<x>[^：:。]{1,30}?)\s*[：:]\s*(?P<y>[^：:]{2,80}?)。?$")
_JA_DATED = re.compile(
    r"^(?P<d>\d{4}\s*年(?:\s*\d{1,2}\s*月(?:\s*\d{1,2}\s*日)?)?)(?:には|に)、?\s*"
    r"(?P<x>[^。]{1,40}?)\s*(?:が|も)(?P<v>公開|発表|リリース|提案|追加|導入)された。?$"
)
_JA_DATED_TOPIC = re.compile(
    r"^(?P<x>[^、。]{1,30}?)\s*は、?\s*(?P<d>\d{4}\s*年(?:\s*\d{1,2}\s*月(?:\s*\d{1,2}\s*日)?)?)に"
    r"(?:[^。]{0,20}?)(?P<v>公開|発表|リリース|提案|導入)された。?$"
)
_JA_BY = re.compile(
    r"^(?P<x>[^、。]{1,30}?)\s*は、?\s*(?:\d{4}\s*年(?:\s*\d{1,2}\s*月)?に、?\s*)?"
    r"(?P<who>[^、。\d]{1,30}?)\s*(?:が(?P<v>開発|提案|発表|公開|考案)し(?:た|ている)"
    r"|(?:によって|により)(?P<pv>開発|提案|発表|公開|考案)され)"
)
_JA_CONTRAST_USE = re.compile(
    r"^(?P<a>[^、。]{1,20}?)\s*は\s*(?P<x>[^、。]{1,30}?)、\s*(?P<b>[^、。]{1,20}?)\s*は\s*"
    r"(?P<y>[^、。]{1,30}?)\s*を(?P<v>使っている|使う|用いる|用いている|採用している|採用する)。?$"
)
_JA_CONTRAST_USED = re.compile(
    r"^(?P<a>[^、。]{1,20}?)\s*には\s*(?P<x>[^、。]{1,30}?)、\s*(?P<b>[^、。]{1,20}?)\s*には\s*"
    r"(?P<y>[^、。]{1,30}?)\s*が(?P<v>使われている|使われる|用いられている|用いられる|採用されている)。?$"
)


def _term(x: str) -> bool:
    """Can ``x`` be what a sentence defines? Not a demonstrative or adverb, not ending in
    hiragana ("もともとは" is an adverb and "は", not "もとも" + "とは"), and not two names
    joined (「LLaMA と Llama 2は…」 states one value of two things: asked, it is ambiguous)."""
    x = x.strip()
    return (
        bool(x)
        and not _DEMONSTRATIVE.match(x)
        and not re.search(r"[\u3041-\u309f]$", x)
        and not joins(x)
    )


def ja_facts(sentence: str, ctx: Context) -> list[Fact]:
    """The facts of a Japanese sentence (see the module's docstring)."""
    s = unicodedata.normalize("NFKC", sentence).strip()
    found: list[Fact] = []
    if m := _JA_CONTRAST_USE.match(s):
        for who, what in (("a", "x"), ("b", "y")):
            q = f"{_ja_subject(ctx, m[who])}は何を使っていますか？"
            found.append(Fact("contrast", q, m[what]))
        return found
    if m := _JA_CONTRAST_USED.match(s):
        for where, what in (("a", "x"), ("b", "y")):
            q = f"{_ja_subject(ctx, m[where])}には何が使われていますか？"
            found.append(Fact("contrast", q, m[what]))
        return found
    if (m := _JA_DEFINITION.match(s)) and _term(m["x"]):
        return [Fact("definition", f"{m['x'].strip()}とは何ですか？", m["y"])]
    if m := _JA_KIND_OF.match(s):
        return [Fact("definition", f"{m['x'].strip()}は何の一種ですか？", m["y"])]
    if (m := _JA_BY.match(s)) and _term(m["x"]):
        q = f"{_ja_subject(ctx, m['x'])}を{m['v'] or m['pv']}したのは誰ですか？"
        return [Fact("name", q, m["who"])]
    if m := _JA_DATED.match(s):
        q = f"{_ja_subject(ctx, m['x'])}が{m['v']}されたのはいつですか？"
        return [Fact("date", q, m["d"])]
    if (m := _JA_DATED_TOPIC.match(s)) and _term(m["x"]):
        q = f"{_ja_subject(ctx, m['x'])}が{m['v']}されたのはいつですか？"
        return [Fact("date", q, m["d"])]
    if m := _JA_COLON.match(s):
        x, y = m["x"].strip(), m["y"]
        # a one-letter term (A, B, r) names nothing outside its formula
        if len(x) > 1 and not re.search(r"https?$", x) and not _DEMONSTRATIVE.match(x):
            return [Fact("definition", f"{_ja_subject(ctx, x)}とは何ですか？", y)]
    if (m := _JA_IS.search(s)) and _term(m["x"]):
        x, y = m["x"].strip(), m["y"].strip()
        if _JA_DATE.fullmatch(y.replace(" ", "")) or _JA_DATE.fullmatch(y):
            return [Fact("date", f"{_ja_subject(ctx, x)}はいつですか？", y)]
        if re.search(r"\d", y):
            return [Fact("number", f"{_ja_subject(ctx, x)}は何ですか？", y)]
        if m.start() == 0 and len(x) <= 15 and len(y) <= 40:
            if _ja_name(x):
                return [Fact("definition", f"{x}とは何ですか？", y)]
            return [Fact("definition", f"{_ja_subject(ctx, x)}は何ですか？", y)]
    return found


_EN_CONTRAST = re.compile(
    r"^(?P<a>[A-Z][^,.;]{0,40}?) (?P<v>relies on|[a-z]+s) (?P<x>[^,.;]{1,40}?),? "
    r"(?:while|whereas) (?P<b>[^,.;]{1,40}?) (?:[a-z]+s|relies on|uses?) (?P<y>[^,.;]{1,40}?)\.?$"
)
_EN_BY = re.compile(
    r"^(?P<x>[A-Z][^,.;]{0,60}?) (?:was|were) (?P<v>proposed|introduced|developed|written|"
    r"created|released|published|designed|trained) by (?P<who>(?:the )?[A-Z][\w.'-]*"
    r"(?: (?:[A-Z][\w.'-]*|and|of|the|et al\.?|de|van|von))*)"
)
# words that join names but cannot end one ("OpenAI and later …" names OpenAI)
_EN_JOINER_END = re.compile(r"(?: (?:and|of|the|de|van|von))+$")
# a year alone is a date only when the subject says so ("the hidden size is 4096" is a number)
_EN_YEARISH = re.compile(r"\b(?:year|date|released?|published|founded|introduced)\b", re.I)
_EN_VERB_ES = re.compile(r"(?:ss|sh|ch|x|z|o)es$|cuses$")


def _en_base_verb(verb: str) -> str:
    """The base form of a third-person verb ("has" → "have", "focuses" → "focus", "relies on"
    → "rely on", "uses" → "use"), for "What does A <verb>?"."""
    irregular = {"has": "have", "does": "do", "is": "be", "relies on": "rely on"}
    if verb in irregular:
        return irregular[verb]
    if verb.endswith("ies"):
        return verb[:-3] + "y"
    if _EN_VERB_ES.search(verb):
        return verb[:-2]
    return verb[:-1]


_EN_DATED = re.compile(
    rf"^(?P<x>[A-Z][^,;]{{0,60}}?) (?:was|were) (?P<v>published|released|introduced|proposed|"
    rf"presented|announced)(?P<where> (?:on|at) [^,;]+?)? (?:in|on) (?P<d>{_EN_DATE.pattern})\b"
)
_EN_DATED_BARE = re.compile(
    rf"^(?P<v>Published|Released|Introduced|Proposed|Presented|Announced)"
    rf"(?P<where> (?:on|at) [^,;]+?)? (?:in|on) (?P<d>{_EN_DATE.pattern})\b"
)
_EN_DEFINITION = re.compile(
    r"^(?P<x>[A-Z][^,.;:]{0,40}?) (?:is|are) (?:a|an) (?P<y>(?:kind|type|form) of [^,.;]{2,60}?|"
    r"[^,.;]{3,70}?)(?:,|\.|;|$)"
)
_EN_NUMBER = re.compile(
    r"^(?:The |the )?(?P<x>[^,.;]{2,40}?) (?:is|was|are|were) "
    r"(?P<y>(?:about |roughly |approximately |around |up to )?"
    r"\d[\d,.]*(?:\s?%|(?: [A-Za-z-]+){0,2}))\.?$"
)
_EN_COLON = re.compile(r"^(?P<x>[^:.]{1,30}?):\s+(?P<y>[^:]{2,80}?)\.?$")


def _en_term(x: str) -> bool:
    """Can ``x`` be a sentence's subject? Not a demonstrative or a label ("Example: the
    document says a model"), and not a clause."""
    return not _EN_DEMONSTRATIVE.match(x) and not re.search(r"[:;]|\b(?:says|said)\b", x)


def en_facts(sentence: str, ctx: Context) -> list[Fact]:
    """The facts of an English sentence (see the module's docstring)."""
    s = unicodedata.normalize("NFKC", sentence).strip()
    if m := _EN_CONTRAST.match(s):
        verb = _en_base_verb(m["v"])
        if not _EN_DEMONSTRATIVE.match(m["a"]) and not _EN_DEMONSTRATIVE.match(m["b"]):
            return [
                Fact("contrast", f"What does {_en_noun(ctx, m[side])} {verb}?", m[what])
                for side, what in (("a", "x"), ("b", "y"))
            ]
    if (m := _EN_BY.match(s)) and _en_term(m["x"]):
        who = _EN_JOINER_END.sub("", m["who"])
        if who.endswith(".") and not re.search(r"\b(?:al|[A-Z])\.$", who):
            who = who[:-1]  # the sentence's full stop, not an initial's or "et al."
        return [Fact("name", f"Who {m['v']} {_en_subject(ctx, m['x'])}?", who)]
    if (m := _EN_DATED.match(s)) and _en_term(m["x"]):
        where = m["where"] or ""
        q = f"When was {_en_subject(ctx, m['x'])} {m['v']}{where}?"
        return [Fact("date", q, m["d"])]
    if (m := _EN_DATED_BARE.match(s)) and ctx.subject:
        q = f"When was {ctx.subject} {m['v'].lower()}{m['where'] or ''}?"
        return [Fact("date", q, m["d"])]
    if (m := _EN_NUMBER.match(s)) and not _EN_DEMONSTRATIVE.match(m["x"]):
        x, y = m["x"].strip(), m["y"].rstrip(".")  # the sentence's full stop is not the value's
        year_only = re.fullmatch(r"\d{4}", y) is not None
        if _EN_DATE.fullmatch(y) and (not year_only or _EN_YEARISH.search(x)):
            return [Fact("date", f"When is the {_en_subject(ctx, x)}?", y)]
        return [Fact("number", f"What is the {_en_subject(ctx, x)}?", y)]
    if (m := _EN_DEFINITION.match(s)) and not _EN_DEMONSTRATIVE.match(m["x"]):
        y = re.sub(r"^(?:kind|type|form) of ", "", m["y"])
        if m["y"] != y:
            return [Fact("definition", f"What is {m['x']} a {m['y'].split()[0]} of?", y)]
        return [Fact("definition", f"What is {m['x']}?", m["y"])]
    if m := _EN_COLON.match(s):
        x = m["x"].strip()
        if len(x) > 1 and not re.search(r"https?$", x) and not _EN_DEMONSTRATIVE.match(x):
            if _en_name(x):
                return [Fact("definition", f"What is {x}?", m["y"])]
            if ctx.about(x):
                return [Fact("definition", f"What is {_lower_first(x)}?", m["y"])]
            # a generic label ("Headline claim: …") is an attribute of the subject
            return [
                Fact("definition", f"What is the {_lower_first(x)} of {_subject(ctx)}?", m["y"])
            ]
    return []


# --- tables ----------------------------------------------------------------------------------


@cache
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table")


def inline_text(markdown: str) -> str:
    """What a reader sees of one line of Markdown inline content: emphasis, code-span ticks,
    link and image syntax gone, a link's text and an image's alt text kept, escapes and
    entities resolved (markdown-it's inline tokens, not patterns). Questions and answers are
    made from this; the evidence stays as the note has it."""
    seen: list[str] = []
    for block in _parser().parseInline(markdown):
        for token in block.children or []:
            if token.type in ("text", "code_inline", "image"):
                seen.append(token.content)  # an image's content is its alt text
            elif token.type in ("softbreak", "hardbreak"):
                seen.append(" ")
    return "".join(seen)


def _plain(cell: str) -> str:
    return inline_text(cell).strip()


def table_rows(text: str) -> list[tuple[list[str], list[tuple[int, list[str]]]]]:
    """Each markdown table of ``text``: its header cells and (0-based line in ``text``, cells)
    of each body row."""
    tables: list[tuple[list[str], list[tuple[int, list[str]]]]] = []
    header: list[str] = []
    rows: list[tuple[int, list[str]]] = []
    row: list[str] | None = None
    line = 0
    in_head = False
    for token in _parser().parse(text):
        if token.type == "table_open":
            header, rows = [], []
        elif token.type == "thead_open":
            in_head = True
        elif token.type == "thead_close":
            in_head = False
        elif token.type == "tr_open":
            row, line = [], token.map[0] if token.map else 0
        elif token.type == "inline" and row is not None:
            row.append(_plain(token.content))
        elif token.type == "tr_close" and row is not None:
            if in_head:
                header = row
            else:
                rows.append((line, row))
            row = None
        elif token.type == "table_close":
            tables.append((header, rows))
    return tables


def table_facts(chunk: Chunk, ctx: Context) -> Iterator[tuple[Fact, str, int]]:
    """(fact, the row as written, its offset in the chunk's text) for each cell of each table:
    the cell is the answer, its row's first cell and its column's header the question. When the
    header's first cell is empty or generic (項目, Item), columns are the entities compared and
    rows their attributes; else rows are the entities."""
    lines = chunk.text.split("\n")
    starts = [0]
    for text_line in lines:
        starts.append(starts[-1] + len(text_line) + 1)
    for header, rows in table_rows(chunk.text):
        if len(header) < 2:
            continue
        columns_are_entities = fold(header[0]) in _GENERIC_HEADER
        for line, cells in rows:
            if line < len(lines) and starts[line] < chunk.lead_chars:
                continue  # a split table's repeated header
            label = cells[0] if cells else ""
            if not label:
                continue
            for col, cell in enumerate(cells[1:], start=1):
                if col >= len(header) or not header[col] or cell in {"", "-", "—", "–"}:
                    continue
                entity, attribute = (
                    (header[col], label) if columns_are_entities else (label, header[col])
                )
                try:
                    if ctx.language == "ja":
                        q = f"{_ja_subject(ctx, entity)}の{_attribute(attribute)}は何ですか？"
                    else:
                        named = (
                            entity if re.match(r"[A-Z0-9]", entity) else _en_subject(ctx, entity)
                        )
                        q = f"What is the {_attribute(attribute)} of {named}?"
                except NoSubject:
                    continue
                yield Fact("table", q, cell), lines[line].strip(), starts[line]


# --- drawing ---------------------------------------------------------------------------------


def _interleave(groups: Sequence[Sequence[T]]) -> Iterator[T]:
    """Round-robin: the first of each group, then the second of each …"""
    for i in range(max((len(g) for g in groups), default=0)):
        for g in groups:
            if i < len(g):
                yield g[i]


def chunk_items(chunk: Chunk, language: Language) -> Iterator[StudyItem]:
    """The candidate items of one chunk, in the order of their evidence in it."""
    ctx = context_of(chunk, language)
    rules: Callable[[str, Context], list[Fact]] = ja_facts if language == "ja" else en_facts
    found: list[tuple[int, Fact, str]] = []
    for sentence, offset in sentences(chunk, language):
        try:
            facts = rules(inline_text(sentence), ctx)
        except NoSubject:
            continue  # asked without its subject, the question would be vague: not asked
        found.extend((offset, fact, sentence) for fact in facts)
    found.extend((offset, fact, row) for fact, row, offset in table_facts(chunk, ctx))
    for offset, fact, evidence in sorted(found, key=lambda f: f[0]):
        answer = _clean(fact.answer)
        if not _ok(answer, fact.question):
            continue
        line = chunk.line_of(offset)
        yield StudyItem.make(
            question=fact.question,
            answer=answer,
            evidence=evidence,
            source=chunk.source,
            heading=tuple(chunk.headings),
            lines=(line, line),
            page=chunk.page,
            language=language,
            kind=fact.kind,
        )


def _under_heading(chunk: Chunk, heading: str) -> bool:
    wanted = fold(heading)
    return any(wanted in fold(h) for h in chunk.headings)


def candidates(
    chunks: Iterable[Chunk], heading: str | None = None, n: int | None = None
) -> list[StudyItem]:
    """Every candidate item of ``chunks`` (of one or more notes), spread over notes and
    headings: round-robin over the notes (by source), and within a note over its heading
    paths (in the note's order). ``heading``: only chunks with a heading containing it
    (case, width and spaces aside); ``n``: at most this many. Duplicates (an item drawn twice
    from overlapping chunks, a question asked twice with one answer) are dropped, the first
    kept; a question a note answers two ways is not asked at all."""
    by_note: dict[str, list[Chunk]] = {}
    for chunk in chunks:
        if heading is None or _under_heading(chunk, heading):
            by_note.setdefault(chunk.source, []).append(chunk)
    per_note: list[list[StudyItem]] = []
    for source in sorted(by_note):
        note = sorted(by_note[source], key=lambda c: (c.chunk_index, c.line_start))
        language = language_of("\n".join(c.text for c in note))
        groups: dict[tuple[str, ...], list[StudyItem]] = {}
        for chunk in note:
            groups.setdefault(tuple(chunk.headings), []).extend(chunk_items(chunk, language))
        per_note.append(list(_interleave(list(groups.values()))))
    # one question with two answers in one note (「文脈長」 under two headings) is ambiguous
    answers: dict[str, set[str]] = {}
    for items in per_note:
        for item in items:
            answers.setdefault(_asked(item), set()).add(fold(item.answer))
    seen: set[str] = set()
    drawn: list[StudyItem] = []
    for item in _interleave(per_note):
        if len(answers[_asked(item)]) > 1:
            continue
        keys = {item.id, _asked(item)}
        if keys & seen:
            continue
        seen |= keys
        drawn.append(item)
        if n is not None and len(drawn) >= n:
            break
    return drawn


def _asked(item: StudyItem) -> str:
    """What makes two items the same question: the note and the question, folded."""
    return f"{item.source}\0{fold(item.question)}"


def _within(path: str, roots: Sequence[Path]) -> bool:
    p = Path(path)
    return any(p == r or r in p.parents for r in roots)


def draw(
    index: NoteIndex,
    paths: Sequence[Path] = (),
    heading: str | None = None,
    n: int | None = None,
) -> list[StudyItem]:
    """`candidates` of the live chunks in ``index`` of the notes at or under ``paths`` (all
    notes when empty; paths are resolved, as ingest stores them)."""
    roots = [p.expanduser().resolve() for p in paths]
    chunks = [c for c in index.chunks() if not roots or _within(c.path, roots)]
    return candidates(chunks, heading, n)
