"""Instruction-like text in notes: sentences and hidden comments aimed at the model that reads
the notes (the answering assistant), not at the person who studies them.

Notes are data. A note may carry text that tries to steer the answering model: tell it to ignore
its rules, to reveal its prompt, or to state some "fact" whenever asked (indirect prompt
injection, OWASP Top 10 for LLM Applications 2025, LLM01). Such text is found here at ingest,
stored on each chunk (`Chunk.instruction_spans`), counted in the ingest report, and shown with
search results; the answer engine keeps it out of answers as a source of facts.

How: the chunk text is cut into units (an HTML comment whole; otherwise sentences, split at
。！？!? and ". " and at line ends); each unit is normalised (NFKC, so full-width letters match;
invisible characters removed; lower case) and matched against rules for Japanese and English:

==================  ====================================================================
reason              what it matches (examples)
==================  ====================================================================
override            ignore earlier instructions ("ignore all previous instructions",
                    「これまでの指示を無視して」)
prompt_leak         reveal the prompt ("print your system prompt", 「システムプロンプトを表示して」)
role_change         a new identity or mode ("you are now …", "from now on, answer …",
                    「あなたは今から…」)
chat_markup         chat-template tokens a model treats as turns (``<|im_start|>``, ``[INST]``)
addressed_to_model  text addressed to the AI reading it ("Note to the AI assistant:",
                    「このノートを読んでいるAIへ」「AIへの指示」)
answer_directive    what to answer or claim ("always answer that …", "tell the user that …",
                    「…と答えてください」)
hidden_address      an HTML comment (invisible when the note is rendered) that names an AI,
                    assistant or language model
==================  ====================================================================

A unit addressed to the model flags the rest of its line as well; one that ends in a colon
("Note to the assistant:") flags the rest of its paragraph, and a heading ("## AIへの指示") its
section: what follows such a header is the message.

Rules, not a classifier: no model for this runs offline here, and rules say exactly why a
passage was flagged. They favour precision on study notes (a note that merely *describes*
prompts or RAG is not flagged: tests run the bundled notes through them); a note that quotes an
attack verbatim is flagged, which is right, since the quote would reach the model all the same.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from shiori.chunk import InstructionSpan

# Part of every chunk's generation (ingest.pipeline): a changed rule set re-flags every note.
VERSION = "1"

_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"), None)
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
# a sentence: up to 。！？!? (with closing quotes/brackets) or a ". " / line end
_SENTENCE = re.compile(r"[^\n]*?(?:[。！？!?]+[」』）)\"'”’]*|\.(?=\s)|$)", re.MULTILINE)

_AI = (
    r"(?:ai|a\.i\.|assistant|ai assistant|chatbot|chat bot|llm|large language model|"
    r"language model|gpt|chatgpt|claude|gemini|copilot|rag system|bot)s?"
)
_AI_JA = (
    r"(?:ai|aiアシスタント|アシスタント|エーアイ|人工知能|言語モデル|llm|チャットボット|"
    r"ボット|gpt|chatgpt)"
)
_END = r"(?=[。！!\n]|$)"
_IMPERATIVE_JA = (
    rf"(?:てください|て下さい|てくれ|なさい|ろ{_END}|よ{_END}|ること{_END}|"
    r"るように(?:して|しなさい|してください|。|$))"
)

_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (reason, re.compile(pattern))
    for reason, pattern in (
        # --- English --------------------------------------------------------------------------
        (
            "override",
            r"\b(?:ignore|disregard|forget|override|bypass|discard)\b[^.!?\n]{0,40}?"
            r"\b(?:previous|prior|above|earlier|preceding|all|any|every|your|these|those|"
            r"system|original|initial|existing|other)\b[^.!?\n]{0,30}?"
            r"\b(?:instructions?|rules?|prompts?|directions?|guidelines?|guardrails?|"
            r"constraints?|polic(?:y|ies)|directives?|commands?)\b",
        ),
        (
            "prompt_leak",
            r"\b(?:reveal|print|show|output|repeat|display|disclose|leak|tell me|give me|share|"
            r"recite|dump|expose|write out|spell out)\b[^.!?\n]{0,40}?"
            r"(?:\byour\s+(?:\w+\s+)?(?:prompt|instructions|rules|guidelines)\b|"
            r"\b(?:system|hidden|initial|original|secret|developer|internal)\s+"
            r"(?:prompt|message|instructions))",
        ),
        (
            "role_change",
            r"\byou are now\s+(?:a|an|the|my|no longer|free|in \w+ mode|dan)\b|"
            r"\bfrom now on,?\s+(?:you|the assistant|answer|respond|reply|say|always|never)\b|"
            r"\bpretend (?:to be|you are|that you are)\b|\bact as if you\b|"
            r"\bnew (?:system )?instructions?\s*:|\b(?:developer|jailbreak|god) mode\b",
        ),
        (
            "chat_markup",
            r"<\|(?:im_start|im_end|system|user|assistant|endoftext|begin_of_text|"
            r"start_header_id|end_header_id|eot_id)\|>|\[/?inst\]|<</?sys>>|"
            r"<(?:start|end)_of_turn>",
        ),
        (
            "addressed_to_model",
            rf"^[\s\-*>#\d.)(\[\]]*(?:(?:note|message|instructions?|attention|reminder|"
            rf"important|p\.?s\.?|memo)\s+)?(?:to|for)\s+(?:the\s+|any\s+|all\s+|every\s+)?{_AI}"
            rf"(?:\s+(?:reading|processing|summari[sz]ing|answering)\s+(?:this|these)"
            rf"(?:\s+\w+)?)?\s*[:,—–-]|"
            rf"\b(?:dear|hey|hi|hello|attention),?\s+(?:the\s+)?{_AI}\b|"
            rf"\bif you are an?\s+(?:ai|assistant|language model|llm|chatbot|ai assistant|"
            rf"large language model)\b|"
            rf"\b{_AI}\s+(?:reading|processing|summari[sz]ing|indexing)\s+(?:this|these)\b",
        ),
        (
            "answer_directive",
            r"\b(?:always|you must|you should|you will|you have to|make sure to|be sure to|"
            r"remember to|(?:the\s+)?(?:assistant|ai|chatbot|llm|model)\s+(?:must|should|shall|"
            r"will|has to)(?:\s+always)?)\s+(?:answer|say|respond|reply|state|claim|insist|"
            r"tell\s+(?:the user|users|them|everyone|people|anyone))s?\b\s*"
            r"(?:that\b|with\b|:|\"|“)|"
            r"\bwhen (?:you are |you're )?asked\b[^.!?\n]{0,80}?,\s*(?:always\s+)?"
            r"(?:answer|say|respond|reply|state|claim)\b|"
            r"\bif (?:anyone|someone|somebody|the user|a user|users)\s+asks?\b[^.!?\n]{0,80}?"
            r"\b(?:answer|say|respond|reply|tell them)\b|"
            r"\btell (?:the user|users|everyone|anyone who asks)\s+that\b",
        ),
        # --- Japanese -------------------------------------------------------------------------
        (
            "override",
            r"(?:以前|これまで|今まで|前|上記|先ほど|最初|元|すべて|全て|全部|あらゆる|他)の"
            r"[^。\n]{0,8}?(?:指示|命令|指令|ルール|規則|制約|設定|プロンプト)(?:を|は|も)?"
            r"[^。\n]{0,6}?(?:無視|忘れ|破棄|取り消|無効に)|"
            r"(?:指示|命令|指令|ルール|規則|制約|プロンプト)(?:を|は|も)?(?:すべて|全て|全部)?"
            r"(?:無視|忘れ|破棄)(?:して|しろ|せよ|しなさい|すること|て|なさい)(?:ください|下さい)?"
            r"(?=[。！!、,\n]|$)",
        ),
        (
            "prompt_leak",
            r"(?:あなた|君|きみ|お前)の(?:システムプロンプト|プロンプト|指示|設定|ルール|命令)|"
            r"(?:システムプロンプト|システムメッセージ|初期プロンプト|隠された指示|内部の指示)"
            r"(?:を|の内容を|の中身を|を全て|をすべて)?[^。\n]{0,6}?"
            r"(?:表示|出力|教え|開示|公開|見せ|書き出|繰り返|暴露|漏ら)",
        ),
        (
            "role_change",
            r"(?:あなたは今から|これからあなたは|今からあなたは|あなたはもう|以後あなたは|"
            r"今後あなたは|あなたの新しい(?:役割|指示))",
        ),
        (
            "addressed_to_model",
            rf"{_AI_JA}(?:への|に対する|向けの|に向けた)(?:指示|命令|メッセージ|注意|お願い|伝言|"
            rf"メモ|ルール)|"
            rf"^[\s\-*>#\d.)(]*(?:親愛なる)?{_AI_JA}(?:へ|に告ぐ|の皆さん|さん)[:：、,!！]|"
            rf"(?:このノート|この文書|このメモ|この文章|このページ|これ)を(?:読んでいる|読んだ|"
            rf"処理している|要約する|参照する)(?:{_AI_JA}|あなた|モデル)|"
            rf"(?:もし)?あなたが{_AI_JA}(?:なら|であれば|ならば|の場合)",
        ),
        (
            "answer_directive",
            rf"(?:と|って|ように)\s*(?:答え|回答し|返答し|応答し|言い|述べ|伝え|主張し|断言し|"
            rf"記載し|説明し){_IMPERATIVE_JA}|"
            rf"(?:ユーザー|ユーザ|利用者|質問者|相手)(?:に|へ)(?:は)?[^。\n]{{0,40}}?"
            rf"(?:と|って)(?:伝え|言い|答え|説明し){_IMPERATIVE_JA}",
        ),
    )
)
_MENTIONS_AI = re.compile(
    rf"\b(?:{_AI}|model)\b|{_AI_JA}|(?:言語)?モデル|アシスタント|チャットボット"
)


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    comment: bool = False


def normalise(text: str) -> str:
    """What the rules see: NFKC (full-width ``ｉｇｎｏｒｅ`` → ``ignore``), invisible characters
    removed, lower case, runs of spaces as one."""
    folded = unicodedata.normalize("NFKC", text).translate(_INVISIBLE).lower()
    return re.sub(r"[ \t\u3000]+", " ", folded)


def _units(text: str) -> Iterator[_Unit]:
    """HTML comments whole, the rest as sentences (offsets into ``text``)."""
    pos = 0
    for comment in _COMMENT.finditer(text):
        yield from _sentences(text, pos, comment.start())
        yield _Unit(comment.start(), comment.end(), comment=True)
        pos = comment.end()
    yield from _sentences(text, pos, len(text))


def _sentences(text: str, start: int, end: int) -> Iterator[_Unit]:
    for match in _SENTENCE.finditer(text, start, end):
        s, e = match.span()
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            yield _Unit(s, e)


def _reason(unit_text: str, comment: bool) -> str | None:
    folded = normalise(unit_text)
    for reason, pattern in _RULES:
        if pattern.search(folded):
            return reason
    if comment and _MENTIONS_AI.search(folded):
        return "hidden_address"
    return None


def _line_end(text: str, pos: int) -> int:
    end = text.find("\n", pos)
    return len(text) if end < 0 else end


def _paragraph_end(text: str, pos: int) -> int:
    blank = re.compile(r"\n[ \t]*\n|\n#{1,6} ").search(text, pos)
    return len(text) if blank is None else blank.start()


def _section_end(text: str, pos: int) -> int:
    heading = re.compile(r"\n#{1,6} ").search(text, pos)
    return len(text) if heading is None else heading.start()


def find_instructions(text: str) -> tuple[InstructionSpan, ...]:
    """Instruction-like pieces of ``text``: sorted, non-overlapping spans (character offsets
    into ``text``, end exclusive), each with the first rule that matched (see the module doc).
    Empty for ordinary note text."""
    found: list[InstructionSpan] = []
    for unit in _units(text):
        reason = _reason(text[unit.start : unit.end], unit.comment)
        if reason is None:
            continue
        end = unit.end
        if reason == "addressed_to_model" and not unit.comment:
            # the message follows its address: the rest of the line; the rest of the
            # paragraph after a header ending in a colon; the section under a heading
            said = text[unit.start : unit.end].strip()
            end = max(end, _line_end(text, unit.end))
            if said.startswith("#"):
                end = max(end, _section_end(text, unit.end))
            elif said.endswith((":", "：")):
                end = max(end, _paragraph_end(text, unit.end))
        if found and unit.start <= found[-1].end:
            last = found.pop()
            found.append(InstructionSpan(last.start, max(last.end, end), last.reason))
        else:
            found.append(InstructionSpan(unit.start, end, reason))
    return tuple(found)
