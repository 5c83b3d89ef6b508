"""Prompt shapes measured side by side on the same passages: which one refuses answerable
questions least without answering unanswerable ones (issue 12, "fewer refusals" and "numbered
sentences or alignment after generation").

Each stored record of an earlier evaluation run (its question and the passages its model saw)
is asked again under every variant, with the same model and greedy decoding; the output goes
through the product's own verification (`rag.verdict.Verifier`) and is scored with the
golden set's checks. Questions refused before generation (weak evidence, a missing term) are
asked too and reported both ways: with the gate (as the product does) and without it.

    python bench/prompt_variants.py REPORT_DIR [REPORT_DIR …] [--variants markers,relaxed,…]
        [--llm-url http://127.0.0.1:8001/v1] [--out reports/prompt-variants.json]

Variants:
- markers: today's prompt (rules in English; [n] after each sentence; NOT_FOUND to refuse);
- relaxed: the question before and after the sources, refusal only when no source states the
  answer, numbers copied as written;
- quote: the model first quotes the source sentence that answers, then answers;
- sentences: sources shown sentence by sentence as [n.m]; the model cites sentences;
- answer: today's layout without the NOT_FOUND rule: the model always answers and the checks
  decide (asked again this way only where the model refused, it is "ask again when refused").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openai import AsyncOpenAI

from eval import metrics as m
from eval.dataset import GoldenItem
from eval.replay import GATES, passages_of
from eval.runner import read_results, record_of, score_item
from rag.answer import Answer, signals
from rag.evidence import source_sentences
from rag.prompt import NOT_FOUND, build_messages, language_of, source_label
from rag.retrieve import Passage
from rag.verdict import Verifier
from shiori.config import Settings
from shiori.embedding import Embedder

RELAXED = """You answer questions about the user's study notes using ONLY the numbered sources.
Rules:
1. Read every source before answering: the answer is usually written in one of them, sometimes
   inside a list or a table.
2. Use only facts written in the sources. Copy numbers, names and dates exactly as written.
3. End every sentence with the number of its source in brackets, like [1] or [2][3].
4. Only if no source states the answer, reply with exactly: NOT_FOUND
5. Answer in {language}, briefly (one or two sentences)."""

QUOTE = """You answer questions about the user's study notes using ONLY the numbered sources.
Reply in exactly two lines:
Evidence: the sentence from the sources that answers the question, copied word for word, then
its source number in brackets, like [2]
Answer: the answer in {language}, briefly, using only that evidence, ending with [n]
If no source states the answer, reply with exactly: NOT_FOUND"""

ANSWER = """You answer questions about the user's study notes using ONLY the numbered sources.
Rules:
1. Find the sentence in the sources that answers the question and answer from it.
2. Use only facts written in the sources. Copy numbers, names and dates exactly as written.
3. End every sentence with the number of its source in brackets, like [1] or [2][3].
4. Answer in {language}, briefly (one or two sentences)."""

SENTENCES = """You answer questions about the user's study notes using ONLY the sources below.
Every sentence of the sources has a number like [2.3] (source 2, sentence 3).
Rules:
1. Use only facts written in the sources. Copy numbers, names and dates exactly as written.
2. End every sentence of your answer with the numbers of the source sentences it comes from,
   like [2.3] or [1.1][1.2].
3. If the sources do not state the answer, reply with exactly: NOT_FOUND
4. Answer in {language}, briefly (one or two sentences)."""

_SUB_MARKER = re.compile(r"\[(\d{1,3})\.(\d{1,3})\]")
_QUOTE_LINES = re.compile(r"Evidence:\s*(?P<evidence>.*?)\s*Answer:\s*(?P<answer>.*)", re.S | re.I)


def messages_for(variant: str, question: str, passages: Sequence[Passage]) -> list[dict[str, str]]:
    language = "Japanese" if language_of(question) == "ja" else "English"
    chunks = [p.chunk for p in passages]
    if variant == "markers":
        return build_messages(question, chunks)
    if variant == "sentences":
        by_source: dict[int, list[str]] = {}
        for s in source_sentences(passages):
            by_source.setdefault(s.source, []).append(f"[{s.source}.{s.index + 1}] {s.text}")
        blocks = [
            f"[{n}] {source_label(c)}\n" + "\n".join(by_source.get(n, []))
            for n, c in enumerate(chunks, 1)
        ]
        rules = SENTENCES.format(language=language)
        user = "Sources:\n" + "\n\n".join(blocks) + f"\n\nQuestion: {question.strip()}"
        return [{"role": "system", "content": rules}, {"role": "user", "content": user}]
    sources = "\n\n".join(
        f"[{n}] {source_label(c)}\n{c.text.strip()}" for n, c in enumerate(chunks, 1)
    )
    q = question.strip()
    if variant == "answer":  # today's layout, no way to refuse: the checks decide
        rules = ANSWER.format(language=language)
        user = f"Sources:\n{sources}\n\nQuestion: {q}"
    else:
        rules = (RELAXED if variant == "relaxed" else QUOTE).format(language=language)
        user = f"Question: {q}\n\nSources:\n{sources}\n\nQuestion: {q}"
    return [{"role": "system", "content": rules}, {"role": "user", "content": user}]


def as_markers(variant: str, text: str) -> tuple[str, dict[str, Any]]:
    """The output as an answer with [n] markers (what the verifier reads), plus what the
    variant's format said on the side."""
    extra: dict[str, Any] = {}
    if variant == "sentences":
        extra["sentence_markers"] = len(_SUB_MARKER.findall(text))
        return _SUB_MARKER.sub(lambda x: f"[{x.group(1)}]", text), extra
    if variant == "quote":
        match = _QUOTE_LINES.search(text)
        if match is None:
            extra["format_ok"] = NOT_FOUND in text
            return (NOT_FOUND if NOT_FOUND in text else text), extra
        extra["format_ok"] = True
        extra["evidence"] = match.group("evidence")
        return match.group("answer").strip(), extra
    return text, extra


async def ask(
    llm: AsyncOpenAI, model: str, messages: list[dict[str, str]]
) -> tuple[str, float, int]:
    began = time.perf_counter()
    done = await llm.chat.completions.create(
        model=model,
        messages=messages,
        temperature=0,
        max_tokens=256,  # type: ignore[arg-type]
    )
    tokens = done.usage.completion_tokens if done.usage else 0
    return done.choices[0].message.content or "", time.perf_counter() - began, tokens


def item_of(record: dict[str, Any]) -> GoldenItem:
    return GoldenItem.model_validate({k: record[k] for k in GoldenItem.model_fields if k in record})


async def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings()
    verifier = Verifier.from_settings(settings, Embedder(settings))
    llm = AsyncOpenAI(base_url=args.llm_url, api_key="none", timeout=300, max_retries=0)
    records = [r for d in args.reports for r in read_results(Path(d) / "results.jsonl")]
    records = [r for r in records if r.get("answer") is not None and r.get("contexts")]
    out: dict[str, Any] = {"records": len(records), "variants": {}}
    for variant in args.variants:
        rows = []
        for record in records:
            item = item_of(record)
            passages = passages_of(record)
            raw, seconds, tokens = await ask(
                llm, args.model, messages_for(variant, item.question, passages)
            )
            text, extra = as_markers(variant, raw)
            verdict = verifier.judge(item.question, text, passages, language_of(item.question))
            answer = Answer(
                question=item.question,
                answer=verdict.answer,
                abstained=verdict.abstained,
                reason=verdict.reason,
                passages=passages,
                cited=verdict.cited,
                checks=verdict.checks,
                invalid_markers=verdict.invalid_markers,
                model=args.model,
                draft=text,
                subject=verdict.subject,
            )
            answer.signals = signals(answer)
            new = record_of(item, answer.to_json(), record.get("retrieved", []), args.model)
            new["metrics"] = score_item(item, new)
            gated = record["reason"] in GATES
            rows.append(
                {
                    "id": item.id,
                    "outcome_no_gate": new["metrics"]["outcome"],
                    "outcome": "false_abstention"
                    if gated and item.answerable
                    else "right_abstention"
                    if gated
                    else new["metrics"]["outcome"],
                    "reason": new["reason"],
                    "gated": gated,
                    "raw": raw,
                    "seconds": seconds,
                    "tokens": tokens,
                    **extra,
                }
            )
            print(variant, item.id, rows[-1]["outcome"], repr(raw[:80]), file=sys.stderr)
        out["variants"][variant] = {"summary": summarise(rows), "rows": rows}
        print(variant, json.dumps(out["variants"][variant]["summary"]), file=sys.stderr)
    await llm.close()
    return out


def outcome_item(outcome: str) -> m.ItemOutcome:
    """An `ItemOutcome` that has ``outcome`` (the inverse of `ItemOutcome.outcome`)."""
    answered = outcome in ("correct", "wrong")
    return m.ItemOutcome(
        answerable=outcome in ("correct", "wrong", "false_abstention"),
        abstained=outcome in ("false_abstention", "right_abstention"),
        correct=outcome == "correct" if answered else None,
    )


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def part(key: str) -> dict[str, Any]:
        items = [outcome_item(r[key]) for r in rows]
        selective = m.selective_scores(items)
        return {
            "counts": selective["counts"],
            "hallucination": m.hallucination(items)["rate"],
            "coverage": selective["coverage"],
            "selective_accuracy": selective["selective_accuracy"],
        }

    return {
        "with_gate": part("outcome"),
        "without_gate": part("outcome_no_gate"),
        "refused_by_model": sum(r["reason"] == "model_refused" for r in rows),
        "seconds_p50": statistics.median(r["seconds"] for r in rows),
        "completion_tokens_mean": statistics.mean(r["tokens"] for r in rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="+")
    parser.add_argument(
        "--variants",
        type=lambda s: s.split(","),
        default=["markers", "relaxed", "quote", "sentences"],
    )
    parser.add_argument("--llm-url", default="http://127.0.0.1:8001/v1")
    parser.add_argument("--model", default=Settings().llm_model)
    parser.add_argument("--out", type=Path, default=Path("reports/prompt-variants.json"))
    args = parser.parse_args()
    result = asyncio.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    for name, v in result["variants"].items():
        print(name, json.dumps(v["summary"], ensure_ascii=False))


if __name__ == "__main__":
    main()
