"""Follow-up questions: a message that leans on earlier turns, rewritten into one that stands alone.

Chat front-ends send the whole conversation; retrieval, the abstention gate and the answer checks
all work on one question. "その手法は何年に発表されましたか？" retrieves nothing in particular,
and its checks would look for "手法" and "発表" rather than the method named two turns earlier.
So, as in the "condense question" step of conversational RAG (LlamaIndex's
``CondenseQuestionChatEngine``, LangChain's history-aware retriever), the model rewrites the last
message into a standalone question, and everything after that (retrieval, gates, prompt, checks,
citations) sees only that question. Two things differ here:

- The rewrite is asked for as **structured output** (``response_format: json_schema``, which
  vLLM enforces while decoding): one JSON object ``{"question": "..."}``, never a chatty reply.
- It is **skipped** when the message already stands alone (`stands_alone`: it names its subject
  and refers to nothing earlier), which most messages do; the model is then not asked at all.
  The cost of a rewrite is measured in docs/benchmarks.md (bench/bench_followup.py).

The answer's language stays the language of the message as the user wrote it.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Literal

from openai import AsyncOpenAI

from rag.footnote import without_footnote
from rag.prompt import language_of
from rag.terms import _EN_STOP, question_terms

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class Turn:
    """One earlier message of a conversation."""

    role: Role
    content: str


class RewriteStatus(StrEnum):
    STANDALONE = "standalone"  # stood alone: the model was not asked
    REWRITTEN = "rewritten"  # the model's standalone question is used
    UNCHANGED = "unchanged"  # the model was asked and returned the message as it was
    FAILED = "failed"  # the model's reply was unusable: the message is used as it was
    BY_RULE = "by_rule"  # the model's reply was unusable: the conversation's subject put in


@dataclass(frozen=True, kw_only=True)
class Rewrite:
    """What was done with a message: ``question`` is what retrieval and the checks get."""

    message: str  # as the user wrote it
    question: str  # the question answered
    status: RewriteStatus
    ms: float = 0.0  # time spent asking the model (0: not asked)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    detail: str = ""  # why a rewrite failed

    @property
    def language(self) -> str:
        """The answer's language: the user's message's, not the rewrite's."""
        return language_of(self.message)

    def to_json(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "status": str(self.status),
            "ms": self.ms,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "detail": self.detail,
        }


# ------------------------------------------------------------------------- does it stand alone
#
# A cheap test, run on every message with a history: words that point back (pronouns,
# demonstratives, "the former"), openings and endings that continue an earlier question ("and
# when?", "GloVe は？"), or no subject at all (Japanese drops the subject a conversation has
# already set: "何年に発表されましたか？"). Erring towards a rewrite costs only time: the model
# returns a standalone message unchanged.

_JA_POINTING = re.compile(
    r"(?<!ど)(?:その|それ(?!ぞれ)|この|これ|あの|あれ|そちら|こちら|あちら|そっち|こっち|どちら|"
    r"どっち|前者|後者|上記|前述|同じ|同様|両者|両方|先ほど|さっき|先程|彼女|彼ら|彼|そこ|ここ)"
)
_JA_CONTINUING = re.compile(
    r"^\s*(?:では|じゃあ|じゃ|それで|それでは|で、|あと|ちなみに|また|さらに|ほかに|他に|なら)"
)
_JA_ELLIPTIC_END = re.compile(
    r"(?:は|も|の方は|のほうは|だと|では|"
    r"どう(?:ですか|でしょうか|でしたか|なの|かな|だった)?)\s*[？?]?\s*$"
)
# what makes a term the question's topic or subject: a particle after it, a version between
# ("GloVe は", "LoRA の", "Llama 2 が"); a kanji noun right after a verb or adjective ending
# ("発表した大学は") is a head noun that needs its subject from elsewhere
_JA_PARTICLE = re.compile(
    r"(?:\s*\d+(?:\.\d+)*[A-Za-z]?)?\s*(?:は|が|の|とは|について|を|で|と|に|から|より|へ|や|も)"
)
_JA_MODIFIER_END = "たるいだなう"

_EN_POINTING = re.compile(
    r"\b(?:it|its|it's|itself|they|them|their|theirs|themselves|he|him|his|she|her|hers|"
    r"former|latter|same|above|aforementioned|previous|earlier|one|ones|this|that|these|those|"
    r"the\s+(?:method|model|paper|technique|approach|algorithm|architecture|idea|author|"
    r"authors|team|company|library|tool|dataset|study|result|results|first|second|other))\b",
    re.I,
)
_EN_DEMONSTRATIVES = {"this", "that", "these", "those"}
_EN_CONTINUING = re.compile(
    r"^\W*(?:and|also|so|then|but|or|what\s+about|how\s+about|what\s+else|how\s+so|"
    r"really|anything\s+else)\b",
    re.I,
)


def _ja_subject_end(text: str) -> int | None:
    """Where the first term that is the topic or subject of a Japanese question ends."""
    ends = []
    for term in question_terms(text):
        if term.kind == "number":
            continue
        at = text.find(term.text)
        while at >= 0:
            head_noun = term.kind == "kanji" and at > 0 and text[at - 1] in _JA_MODIFIER_END
            if not head_noun and _JA_PARTICLE.match(text, at + len(term.text)):
                ends.append(at + len(term.text))
                break
            at = text.find(term.text, at + 1)
    return min(ends, default=None)


def _en_name_end(text: str) -> int | None:
    """Where the first name of an English question ends (GloVe, QLoRA, Claude 3.5)."""
    starts = [(text.find(t.text), t.text) for t in question_terms(text) if t.kind == "name"]
    return min((at + len(term) for at, term in starts if at >= 0), default=None)


def _points_back_en(text: str, named_until: int | None) -> bool:
    for match in _EN_POINTING.finditer(text):
        if named_until is not None and match.start() >= named_until:
            continue  # "In QLoRA, … its own constant": it points at what this message named
        word = match.group(0).lower()
        if word in _EN_DEMONSTRATIVES:
            before = re.findall(r"[A-Za-z']+", text[: match.start()])
            # "vectors that …" opens a relative clause; "was that …", "about this", or a
            # demonstrative that opens the message, points back
            if before and before[-1].lower() not in _EN_STOP:
                continue
        return True
    return False


def _names(text: str) -> list[str]:
    return [t.text for t in question_terms(text) if t.kind == "name"]


def stands_alone(message: str, history: Sequence[Turn] = ()) -> bool:
    """Can ``message`` be understood without the turns before it? False when it points back
    before naming anything ("it", "その手法"), continues an earlier question ("And GloVe?",
    "では GloVe は？"), has no subject ("何年に発表されましたか？", "Why?"), or names nothing
    while the recent turns name what they are about ("トークナイザは何を使っていますか？"
    after turns about Gemma: Japanese leaves out a subject the conversation has set)."""
    if not _stands_alone(message):
        return False
    if _names(unicodedata.normalize("NFKC", message)):
        return True
    recent = [unicodedata.normalize("NFKC", cleaned(t, 400)) for t in list(history)[-4:]]
    return not any(_names(text) for text in recent)


def _stands_alone(message: str) -> bool:
    text = unicodedata.normalize("NFKC", message).strip()
    if not text:
        return False
    if _JA_CONTINUING.search(text) or _EN_CONTINUING.search(text):
        return False
    if language_of(text) == "ja":
        if _JA_ELLIPTIC_END.search(text):
            return False
        subject_end = _ja_subject_end(text)
        if subject_end is None:
            return False
        pointing = _JA_POINTING.search(text)
        return pointing is None or pointing.start() >= subject_end
    if _points_back_en(text, _en_name_end(text)):
        return False
    return any(t.kind != "number" for t in question_terms(text))


# ------------------------------------------------------------------------------- the rewrite

REWRITE_RULES = """You rewrite the last message of a conversation about the user's study notes \
into a standalone question.
Rules:
1. The question must be clear without the conversation: replace every pronoun or reference \
(it, they, that method, その手法, それ) with the name it refers to in the conversation.
2. Keep the language and the meaning of the last message. Do not answer it. Add nothing else.
3. If the last message already stands alone, return it unchanged.
Reply with JSON only: {"question": "<the standalone question>"}"""

# Worked examples (both languages, topics of their own; one already standalone, kept as it is)
# steady a small model.
_EXAMPLES: tuple[tuple[tuple[Turn, ...], str, str], ...] = (
    (
        (
            Turn("user", "BERT の事前学習にはどんなタスクがありますか？"),
            Turn("assistant", "Masked LM と Next Sentence Prediction です。"),
        ),
        "それは誰が発表しましたか？",
        "BERT は誰が発表しましたか？",
    ),
    (
        (
            Turn("user", "Which technique freezes the weights and trains low-rank matrices?"),
            Turn("assistant", "LoRA does."),
        ),
        "When was it proposed?",
        "When was LoRA proposed?",
    ),
    (
        (
            Turn("user", "Transformer の base モデルの層数は？"),
            Turn("assistant", "エンコーダとデコーダがそれぞれ 6 層です。"),
        ),
        "知識蒸留とは何ですか？",
        "知識蒸留とは何ですか？",
    ),
)

REWRITE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"question": {"type": "string", "minLength": 1, "maxLength": 600}},
    "required": ["question"],
    "additionalProperties": False,
}

# what Shiori appends to its own chat answers (`rag.footnote`) and its [n] markers: a chat UI
# sends them back as history, and they only lengthen the prompt
_MARKERS = re.compile(r"\s*\[\d{1,3}\]")


def cleaned(turn: Turn, max_chars: int) -> str:
    """A turn's text for the rewrite prompt: without Shiori's footnotes and markers, cut to
    ``max_chars``."""
    text = _MARKERS.sub("", without_footnote(turn.content)).strip()
    return text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "…"


def _transcript(history: Sequence[Turn], message: str, max_chars: int) -> str:
    lines = [
        f"{'User' if t.role == 'user' else 'Assistant'}: {cleaned(t, max_chars)}" for t in history
    ]
    # the language named per case: asked in general ("keep the language"), the CPU model
    # rewrote Japanese follow-ups in English, and its answers to those came out garbled
    language = "Japanese" if language_of(message) == "ja" else "English"
    return (
        "Conversation:\n"
        + "\n".join(lines)
        + f"\n\nLast message: {message.strip()}\n(Write the standalone question in {language}.)"
    )


def rewrite_messages(
    history: Sequence[Turn], message: str, max_chars: int = 400
) -> list[dict[str, str]]:
    """The chat messages that ask for a standalone question (rules, two examples, the case)."""
    messages = [{"role": "system", "content": REWRITE_RULES}]
    for turns, asked, standalone in _EXAMPLES:
        messages.append({"role": "user", "content": _transcript(turns, asked, max_chars)})
        messages.append(
            {
                "role": "assistant",
                "content": json.dumps({"question": standalone}, ensure_ascii=False),
            }
        )
    messages.append({"role": "user", "content": _transcript(history, message, max_chars)})
    return messages


# A Japanese reference to an earlier subject: a demonstrative with the noun it qualifies
# ("その手法", "このモデル") or a demonstrative pronoun ("それ").
_JA_REFERENCE = re.compile(
    r"(?:その|この|あの)[\u30a0-\u30ff\u3400-\u9fffー]*|(?:それ|これ|あれ)(?!ぞれ)"
)
_SHORT_ANSWER = 40  # characters: an answer this short names what a "which" question asked for


def _conversation_subject(history: Sequence[Turn], unique: bool = False) -> str | None:
    """The name the conversation is about: the first name of the latest turn that has one; an
    assistant turn counts when it is a short answer ("Word2Vec です" to "どの手法？").
    ``unique``: only when that turn names one thing (else None: which one is meant is for the
    model to read)."""
    for turn in reversed(history):
        text = unicodedata.normalize("NFKC", cleaned(turn, 400))
        if turn.role == "assistant" and len(text) > _SHORT_ANSWER:
            continue
        names = list(dict.fromkeys(_names(text)))
        if names:
            return names[0] if len(names) == 1 or not unique else None
    return None


_EN_REFERENCE = re.compile(
    r"\b(?:its|it|they|them|their|this|that|these|those|the\s+(?:method|model|paper|"
    r"technique|approach|algorithm|architecture|library|tool|dataset))\b",
    re.I,
)


def sure_rewrite(message: str, history: Sequence[Turn]) -> str | None:
    """The follow-up made standalone without asking the model, where nothing is left to read:
    it points back with a reference word ("その手法", "それ", "it", "its", "the model") and
    the turn it points to names exactly one thing ("GloVe です [1]。" → "その手法は何年に？" →
    "GloVeは何年に？"). None otherwise (the model rewrites it)."""
    subject = _conversation_subject(history, unique=True)
    if subject is None:
        return None
    text = " ".join(message.split())
    found = (
        _EN_REFERENCE.search(text) if language_of(message) != "ja" else _JA_REFERENCE.search(text)
    )
    return rule_rewrite(message, history) if found else None


def rule_rewrite(message: str, history: Sequence[Turn]) -> str | None:
    """A follow-up made standalone without the model: its first reference to an earlier
    subject replaced by the conversation's subject ("そのモデルの文脈長は？" → "Gemmaの文脈長
    は？", "Who published it?" → "Who published GloVe?"), or, in Japanese, the subject put
    first when it has none ("トークナイザは？" → "Gemma のトークナイザは？"). None when the
    conversation names nothing or an English message has no reference. Used when the model's
    rewrite is unusable: the CPU model rewrote Japanese follow-ups in English (answered then
    garbled, or about another model), kept "it", or returned the message as it was."""
    subject = _conversation_subject(history)
    if subject is None:
        return None
    text = " ".join(message.split())
    if language_of(message) != "ja":
        return (
            _EN_REFERENCE.sub(
                lambda m: f"{subject}'s" if m.group(0).lower() in ("its", "their") else subject,
                text,
                count=1,
            )
            if _EN_REFERENCE.search(text)
            else None
        )
    replaced, found = _JA_REFERENCE.subn(subject, text, count=1)
    return replaced if found else f"{subject} の{text}"


class RewriteError(ValueError):
    """The model's reply is not a usable standalone question."""


def parse_rewrite(reply: str, message: str, history: Sequence[Turn], max_chars: int) -> str:
    """The standalone question in the model's reply, or `RewriteError` saying why not: not the
    JSON asked for, blank, too long, or a copy of an earlier answer (an answer is no
    question)."""
    try:
        data = json.loads(reply)
    except json.JSONDecodeError as exc:
        raise RewriteError(f"not JSON ({exc.msg})") from exc
    question = data.get("question") if isinstance(data, dict) else None
    if not isinstance(question, str) or not question.strip():
        raise RewriteError("no question in the reply")
    question = " ".join(question.split())
    if len(question) > max_chars:
        raise RewriteError(f"{len(question)} characters, over the limit of {max_chars}")
    # a Japanese message rewritten in English (the CPU model's habit) is refused; an English
    # one may well gain a Japanese name from the conversation ("Who published 栞?")
    if language_of(message) == "ja" and language_of(question) == "en":
        raise RewriteError("an English rewrite of a Japanese message")
    answers = {" ".join(cleaned(t, 10_000).split()) for t in history if t.role == "assistant"}
    if question in answers and question != " ".join(message.split()):
        raise RewriteError("the reply repeats an earlier answer")
    # the model is asked only about messages that do not stand alone: a reply that still
    # points back ("What published it?") or is the message as it was solves nothing
    if not stands_alone(question, history):
        raise RewriteError("the reply does not stand alone either")
    return question


class Condenser:
    """Turns a message and its conversation into the question to answer. Shares the answer
    LLM's client; one per process."""

    def __init__(
        self,
        llm: AsyncOpenAI,
        model: str,
        *,
        history_messages: int = 6,
        turn_chars: int = 400,
        max_question_chars: int = 2000,
        max_tokens: int = 160,
    ) -> None:
        self.llm = llm
        self.model = model
        self.history_messages = history_messages
        self.turn_chars = turn_chars
        self.max_question_chars = max_question_chars
        self.max_tokens = max_tokens

    def request(self, history: Sequence[Turn], message: str) -> dict[str, Any]:
        """The chat completion request of a rewrite (the last ``history_messages`` turns)."""
        recent = list(history)[-self.history_messages :] if self.history_messages else []
        return {
            "model": self.model,
            "messages": rewrite_messages(recent, message, self.turn_chars),
            "temperature": 0,
            "max_tokens": self.max_tokens,
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "standalone_question",
                    "schema": REWRITE_SCHEMA,
                    "strict": True,
                },
            },
        }

    async def condense(self, message: str, history: Sequence[Turn]) -> Rewrite:
        """The standalone question for ``message``. Without history, or when the message stands
        alone, the model is not asked. LLM faults (connection, timeout, status) propagate: the
        caller reports them as it does for the answer itself."""
        if not any(t.role == "user" for t in history) or stands_alone(message, history):
            return Rewrite(message=message, question=message, status=RewriteStatus.STANDALONE)
        sure = sure_rewrite(message, history)
        if sure is not None:  # a generation saved (a rewrite costs a prefill and ~20 tokens)
            return Rewrite(
                message=message,
                question=sure,
                status=RewriteStatus.BY_RULE,
                detail="one thing named before, pointed back to: the model was not asked",
            )
        began = time.perf_counter()
        completion = await self.llm.chat.completions.create(**self.request(history, message))
        ms = round((time.perf_counter() - began) * 1000, 1)
        usage = completion.usage
        spent = Rewrite(
            message=message,
            question=message,
            status=RewriteStatus.UNCHANGED,
            ms=ms,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )
        reply = completion.choices[0].message.content or ""
        try:
            question = parse_rewrite(reply, message, history, self.max_question_chars)
        except RewriteError as exc:
            by_rule = rule_rewrite(message, history)
            if by_rule is not None:
                return replace(
                    spent, question=by_rule, status=RewriteStatus.BY_RULE, detail=str(exc)
                )
            return replace(spent, status=RewriteStatus.FAILED, detail=str(exc))
        if question == " ".join(message.split()):
            return spent
        return replace(spent, question=question, status=RewriteStatus.REWRITTEN)
