"""Specific terms: the names a question asks about that a passage must mention to answer it.

A model with its version (Gemma 3, GPT-4, Mistral 7B, Claude 3.5), an identifier with two or
more capitals (DDIM, JSQuAD, LoRA) and a hyphenated compound (top-k, tree-of-thoughts). Notes,
Japanese ones included, write these in Latin letters, so a passage either mentions one (spaces,
hyphens, width and case aside) or is about something else: asked about "Gemma 3" with passages
on Gemma and Gemma 2 only, the model answers with their facts.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rag.passage import Passage

_SPECIFIC = (
    re.compile(r"(?<![\w.])[A-Z][A-Za-z]+[ -]?\d+(?:\.\d+)?[BMK]?(?![\w.])"),
    re.compile(r"(?<![\w-])[A-Za-z]*[A-Z][a-z]*[A-Z][A-Za-z0-9]*(?!\w)"),
    re.compile(r"(?<![\w-])[A-Za-z]+(?:-[A-Za-z]+)+(?![\w-])"),
)
_MONTHS = {
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
}
_UNITS = {"KB", "MB", "GB", "TB", "PB", "GHz", "MHz", "FLOPs", "TFLOPs", "PFLOPs"}
_FOLD = re.compile(r"[\s\-_・]+")


def folded(text: str) -> str:
    """Width, case, spaces and hyphens folded: "Gemma 3" ~ "gemma3", "top-k" ~ "Top K"."""
    return _FOLD.sub("", unicodedata.normalize("NFKC", text).lower())


def specific_terms(question: str) -> list[str]:
    text = unicodedata.normalize("NFKC", question)
    found: list[str] = []
    taken: list[range] = []  # "GPT" inside "GPT-4" is not a term of its own
    for pattern in _SPECIFIC:
        for match in pattern.finditer(text):
            term, span = match.group(0), range(*match.span())
            first = re.split(r"[ -]", term)[0]
            if first in _MONTHS or term in _UNITS or term in found:
                continue
            if any(span.start < t.stop and t.start < span.stop for t in taken):
                continue
            found.append(term)
            taken.append(span)
    return found


def missing_terms(question: str, passages: Sequence[Passage]) -> list[str]:
    """The question's specific terms that no passage (text, heading or title) mentions."""
    terms = specific_terms(question)
    if not terms:
        return []
    haystack = " ".join(_searchable(p) for p in passages)
    return [t for t in terms if folded(t) not in haystack]


def mentions(passage: Passage, term: str) -> bool:
    return folded(term) in _searchable(passage)


def _searchable(passage: Passage) -> str:
    c = passage.chunk
    return folded(f"{c.title} {c.heading} {c.text}")


# ------------------------------------------------------------------ question and answer terms
#
# Without a morphological analyser, Japanese text is cut at script changes: a run of kanji, of
# katakana, or of Latin letters and digits is a term ("GloVeのベクトルの次元数" → GloVe, ベクトル,
# 次元数); hiragana (particles, verb endings) and punctuation separate them. Single kanji are
# too ambiguous to require ("年", "数"), and so are the question words and generic nouns below.

_KANJI = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々〆ヶ"
_KATAKANA = "\u30a1-\u30fa\u30fc\u30fd\u30fe\uff66-\uff9f"
_TERM = re.compile(
    rf"(?P<latin>[A-Za-z0-9](?:[A-Za-z0-9'’+#]|[-./_](?=[A-Za-z0-9]))*)"
    rf"|(?P<katakana>[{_KATAKANA}]{{2,}})"
    rf"|(?P<kanji>[{_KANJI}]{{2,}})"
)
_POSSESSIVE = re.compile(r"['’]s$")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_QUOTED = re.compile(r"「([^」]{1,40})」|『([^』]{1,40})』|“([^”]{1,40})”|\"([^\"]{1,40})\"")
# question words and nouns that name the kind of answer, not the thing asked about
_GENERIC_KANJI = frozenset(
    "名前 名称 種類 理由 方法 目的 特徴 意味 場合 時期 場所 人物 組織 程度 割合 期間 回数 数値 "
    "具体的 具体 最初 最後 現在 以外 以上 以下 主要 一般 何年 何月 何日 何人 何回 何個 何種類 "
    "何歳 何倍 何割 何度 何語 何番目 何時 何処 何故 幾つ 誰 何 年代 年号 数字 単位 "
    "どの どれ 呼称 説明 内容 特長 利点 欠点 違い 役割 仕組み 関係 手法 技術 方式 手段 概念 "
    "考え方 仕方 やり方 形式 性質 状態 結果 効果 影響 問題 原因 条件 規模 大きさ".split()
)
_EN_STOP = frozenset(
    """a an the of in on at to for from by with about into over under between and or but not
    what which who whom whose when where why how does do did is are was were be been being has
    have had can could would should will may might must shall this that these those it its
    their there they them he she his her we you your i me my our as than then so such
    name named called call kind type number many much long year years per one two
    use used uses using make made give given according note notes say says said mention
    mentioned describe described explain explained main first last other another same
    following whole part parts value values""".split()
)
_MONTH_WORDS = frozenset(
    """january february march april may june july august september october november december
    jan feb mar apr jun jul aug sep sept oct nov dec""".split()
)


def script_of(text: str) -> str:
    """'ja' when the text has kana or kanji, else 'en' (the language a term can match in)."""
    return "ja" if re.search(rf"[\u3040-\u309f{_KATAKANA}{_KANJI}]", text) else "en"


_SIZE = re.compile(r"\d+(?:\.\d+)?[KMBT]", re.I)  # model and context sizes: 7B, 128K


def is_name(term: str, first: bool) -> bool:
    """A Latin term that names something: a size (7B, 128K), inner capitals (fastText, GPT-4,
    DDIM), or a capital letter not at the start of a sentence ("spring-2024" names nothing)."""
    if _SIZE.fullmatch(term):
        return True
    capitals = sum(c.isupper() for c in term)
    return capitals >= 2 or (capitals == 1 and (not term[0].isupper() or not first))


@dataclass(frozen=True)
class Term:
    """A term of a question or answer: ``kind`` is latin | name | number | katakana | kanji
    | quoted."""

    text: str
    kind: str

    @property
    def key(self) -> str:
        return folded(self.text)


def question_terms(question: str) -> list[Term]:
    """The terms that say what a question is about (its subject and relation), without the
    question words and generic nouns: "GloVeのベクトルの次元数はいくつ" → GloVe (name),
    ベクトル (katakana), 次元数 (kanji)."""
    text = unicodedata.normalize("NFKC", question)
    japanese = script_of(text) == "ja"
    found: dict[str, Term] = {}
    for match in _TERM.finditer(text):
        word = _POSSESSIVE.sub("", match.group(0))
        if match.lastgroup == "latin":
            if word.lower() in _EN_STOP or word.lower() in _MONTH_WORDS:
                continue
            if word.isdigit():
                kind = "number"
            elif japanese or is_name(word, first=not text[: match.start()].strip()):
                kind = "name"
            elif len(word) < 3:
                continue
            else:
                kind = "latin"
        elif match.lastgroup == "kanji":
            if word in _GENERIC_KANJI or "何" in word or "幾" in word:
                continue
            kind = "kanji"
        else:
            kind = "katakana"
        found.setdefault(folded(word), Term(word, kind))
    return list(found.values())


_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+#'’-]*")


def multiword_names(question: str) -> list[list[Term]]:
    """Names the question writes in several words ("Claude 3.5 Haiku", "Stable Diffusion"):
    runs of capitalised or numbered words with only spaces between them, each run one thing
    (unlike "LoRA と QLoRA", two)."""
    text = unicodedata.normalize("NFKC", question)
    out: list[list[Term]] = []
    run: list[Term] = []
    last_end = -1
    for match in _WORD.finditer(text):
        word = _POSSESSIVE.sub("", match.group(0).rstrip(".,"))
        lower = word.lower()
        named = (any(c.isupper() for c in word) or any(c.isdigit() for c in word)) and (
            lower not in _EN_STOP and lower not in _MONTH_WORDS
        )
        adjacent = last_end >= 0 and text[last_end : match.start()].strip(" \t") == ""
        if named and (adjacent or not run):
            run.append(Term(word, "name"))
        else:
            if len(run) >= 2:
                out.append(run)
            run = [Term(word, "name")] if named else []
        last_end = match.end()
    if len(run) >= 2:
        out.append(run)
    return out


def proper_nouns(texts: Sequence[str]) -> set[str]:
    """Capitalised Latin words that ``texts`` use as names (not only at a sentence start)."""
    found: set[str] = set()
    for text in texts:
        text = unicodedata.normalize("NFKC", text)
        for match in _TERM.finditer(text):
            word = _POSSESSIVE.sub("", match.group(0))
            if match.lastgroup == "latin" and any(c.isupper() for c in word):
                before = text[: match.start()].rstrip()
                if before and before[-1] not in ".!?。！？\n":
                    found.add(word)
    return found


# Words that say what kind of organisation a name is: "Stanford University" is checked by
# "Stanford" (a note in Japanese writes スタンフォード大学, whose 大学 no transliteration finds).
_DESIGNATORS = frozenset(
    "university universities institute laboratory laboratories lab labs inc corporation corp "
    "company college school department foundation team group".split()
)


def content_terms(sentence: str, question: str = "", proper: set[str] | None = None) -> list[Term]:
    """The specific content an answer sentence asserts — numbers, names (Latin names; any Latin
    word inside a Japanese sentence; katakana words), quoted phrases — minus what it repeats
    from the question. These must occur in the sentence's evidence: an invented or
    neighbouring number, date or name is the hallucination that matters in study notes.

    A capitalised word that opens an English sentence is a name only when it has a possessive
    or ``proper`` (`proper_nouns` of the sources) lists it: "Facebook's team…" names
    Facebook, "Released in 2016" names nothing."""
    text = unicodedata.normalize("NFKC", sentence)
    proper = proper or set()
    asked = folded(question)
    japanese = script_of(text) == "ja"
    found: dict[str, Term] = {}

    def add(word: str, kind: str) -> None:
        key = folded(word)
        if key and key not in asked:
            found.setdefault(key, Term(word, kind))

    for match in _QUOTED.finditer(text):
        add(next(g for g in match.groups() if g), "quoted")
    for match in _NUMBER.finditer(text):
        add(match.group(0).replace(",", ""), "number")
    for match in _TERM.finditer(text):
        raw, group = match.group(0), match.lastgroup
        word = _POSSESSIVE.sub("", raw)
        if group == "latin" and not word.isdigit() and word.lower() not in _MONTH_WORDS:
            first = not text[: match.start()].strip()
            name = japanese or is_name(word, first)
            if not name and first and word[0].isupper():
                # "Stanford University researchers…": a designator after it makes it a name
                after = text[match.end() :].split(maxsplit=1)
                designated = bool(after) and after[0].lower().strip(".,") in _DESIGNATORS
                name = word in proper or raw != word or designated
            if word.lower() not in _EN_STOP and word.lower() not in _DESIGNATORS and name:
                add(word, "name")
        elif group == "katakana":
            add(word, "katakana")
    return list(found.values())


# What a question asks for, when its answer must be a number or a date: a "何トークン" answered
# without any number is not an answer, however well its sentence is supported.
_ASKS_NUMBER = re.compile(
    r"何(?:[^\s、。？?]{0,3})(?:年|月|日|回|個|人|問|%|パーセント|倍|割|件|種類|層|次元|語|文字|"
    r"トークン|パラメータ|GB|MB|時間|分|秒|歳|位|点|ステップ|枚|冊|台|社|か国|カ国|ヶ国)|"
    r"いくつ|いくら|どれ(?:だけ|くらい|ぐらい)|どのくらい|どの程度|何割|いつ|"
    # English asks at the start: "When…", "How many…", "In what year…", "Roughly how many…"
    r"^(?:\W*(?:(?:in|on|by|at|for|about|roughly|approximately|to)\s+)*)"
    r"(?:when|how\s+(?:many|much|long|large|big|old|often)|"
    r"(?:what|which)\s+(?:year|date|percentage|share|fraction|proportion|number))\b",
    re.I,
)
_NUMERAL = re.compile(r"\d+(?:[.,]\d+)*|[〇一二三四五六七八九十百千万億兆半]+")


_QUOTATION = re.compile(r"「[^」]*」|『[^』]*』|“[^”]*”|\"[^\"]*\"")


def _unquoted(question: str) -> str:
    """The question without what it quotes (「生命は、いつ…」 asks no date)."""
    return _QUOTATION.sub(" ", unicodedata.normalize("NFKC", question))


def asks_for_number(question: str) -> bool:
    """Does the question ask for a quantity, a date or a year (so its answer needs a number)?"""
    return bool(_ASKS_NUMBER.search(_unquoted(question)))


# a question that asks who (or which organisation) did something is answered by a name
_ASKS_NAME = re.compile(
    r"誰|だれ|どこの(?:会社|企業|組織|大学|チーム|研究者)|どの(?:会社|企業|組織|大学)|"
    r"^\W*(?:who|whom|which\s+(?:company|companies|organi[sz]ations?|team|group|person|people|"
    r"researchers?|lab|university|authors?))\b",
    re.I,
)


def asks_for_name(question: str) -> bool:
    """Does the question ask who (or which organisation) did something?"""
    return bool(_ASKS_NAME.search(_unquoted(question)))


def new_numbers(text: str, question: str = "") -> list[str]:
    """The numbers in ``text`` (digits, or Japanese numerals: 十, 百, 億, 半 …) that the question
    does not already say ("27B モデルは…" answers no "何トークン")."""
    asked = {m.replace(",", "") for m in _NUMERAL.findall(unicodedata.normalize("NFKC", question))}
    found = _NUMERAL.findall(unicodedata.normalize("NFKC", text))
    return [n for n in found if n.replace(",", "") not in asked]


_KANJI_DIGITS = {c: i for i, c in enumerate("〇一二三四五六七八九")}
_KANJI_UNITS = {"十": 10, "百": 100, "千": 1000}
_KANJI_NUMBER = re.compile(r"[〇一二三四五六七八九十百千]+")


def _kanji_value(run: str) -> str:
    """A run of kanji numerals as digits: positional (二〇二四 → 2024, 一五 → 15) or with units
    (十五 → 15, 三百二十 → 320)."""
    if not any(c in _KANJI_UNITS for c in run):
        return "".join(str(_KANJI_DIGITS[c]) for c in run)
    total, digit = 0, 0
    for c in run:
        if c in _KANJI_UNITS:
            total += (digit or 1) * _KANJI_UNITS[c]
            digit = 0
        else:
            digit = digit * 10 + _KANJI_DIGITS[c]
    return str(total + digit)


def with_arabic_numerals(text: str) -> str:
    """``text`` with runs of kanji numerals also written in digits (for matching numbers)."""
    return _KANJI_NUMBER.sub(lambda m: f"{m.group(0)}{_kanji_value(m.group(0))}", text)


@dataclass(frozen=True)
class Haystack:
    """A text to look terms up in: ``folded`` (width, case, spaces and hyphens folded) and
    ``words`` (NFKC and lower case only, so that word boundaries survive)."""

    folded: str
    words: str

    @classmethod
    def of(cls, text: str) -> Haystack:
        return cls(folded(text), unicodedata.normalize("NFKC", text).lower())


def occurs(term: Term, haystack: Haystack) -> bool:
    """``term`` in ``haystack``: folded ("Gemma 3" ~ "gemma3"); numbers also without thousands
    separators and in kanji numerals ("15" in "一五条"); a Latin name or word only as a word
    of its own (`_word_pattern`: "B" is not in "BA", "LoRA" not in "QLoRA")."""
    if term.kind == "number":
        plain = haystack.folded.replace(",", "")
        return term.key in plain or term.key in with_arabic_numerals(plain)
    if term.kind in ("name", "latin") and term.key.isascii():
        return _word_pattern(term.text).search(haystack.words) is not None
    return term.key in haystack.folded


@functools.lru_cache(maxsize=4096)
def _word_pattern(word: str) -> re.Pattern[str]:
    """A Latin word or name as a whole word, spaces and hyphens inside it optional ("Gemma 3"
    ~ "gemma3", "top-k" ~ "Top K"), so that "LoRA" is not found inside "QLoRA" nor "B" in
    "BA"."""
    parts = re.findall(r"[a-z0-9]+|[^a-z0-9\s_-]", unicodedata.normalize("NFKC", word).lower())
    body = r"[\s_-]*".join(re.escape(p) for p in parts)
    return re.compile(rf"(?<![a-z0-9]){body}(?![a-z0-9])")
