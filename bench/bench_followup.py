"""What follow-up questions cost: the model's rewrite into a standalone question, per follow-up,
against asking that standalone question directly, in one run on the same machine and model.

Over the bundled notes, with conversations of our own (a first question and its answer, then a
follow-up that names nothing or points back), each follow-up is asked twice through the real
answer engine (real EmbeddingGemma, embedded Qdrant, vLLM):

1. with its history: the rewrite (structured output) runs, then the answer;
2. as the golden set's own standalone question, without history: no rewrite.

Reported: the rewrite's time (and its share of the follow-up's total), the totals' ratio, the
rewrite's tokens, whether the rewrite named what the conversation was about, and whether both
answers pass the golden set's checks. Messages that stand alone but come with a history are
checked to skip the model entirely (their cost is the detector's, in microseconds).

    python bench/bench_followup.py [--write docs/benchmarks.md]      # make bench-followup
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from blocks import write_block  # bench/ is on sys.path when run as a script

from eval.dataset import load
from eval.metrics import fold
from eval.runner import answer_check
from ingest.pipeline import Ingestor
from rag.conversation import RewriteStatus, Turn, stands_alone
from runtime.llm.supervisor import local_llm
from service.components import Components
from shiori.config import Settings
from shiori.embedding import Embedder
from shiori.index import NoteIndex, open_client

REPO = Path(__file__).resolve().parents[1]
MARK_BEGIN, MARK_END = "<!-- bench-followup:begin -->", "<!-- bench-followup:end -->"


@dataclass(frozen=True)
class FollowUp:
    golden: str  # the id of the golden item whose question is the standalone form
    history: tuple[Turn, ...]
    message: str
    about: str  # what the rewrite must name


def turns(question: str, answer: str) -> tuple[Turn, ...]:
    return (Turn("user", question), Turn("assistant", answer))


FOLLOW_UPS = [
    FollowUp(
        "ja-gemma-context",
        turns("初代 Gemma が公開されたのはいつか。", "2024年2月21日です。"),
        "そのモデルの文脈長は何トークンか。",
        "Gemma",
    ),
    FollowUp(
        "ja-llama2-date",
        turns("Llama 2 を発表した会社はどこですか？", "Meta です。"),
        "それが発表されたのは何年何月何日か。",
        "Llama",
    ),
    FollowUp(
        "ja-bpe-inventor",
        turns("BPE とはどんな手法ですか？", "単語をサブワードに分けるトークナイズの手法です。"),
        "もともと誰が発表したアルゴリズムか。",
        "BPE",
    ),
    FollowUp(
        "en-qlora-blocksize",
        turns("What is QLoRA?", "A way to fine-tune a 4-bit quantised model with LoRA."),
        "How many weights are quantised together in one block with its own scaling constant?",
        "QLoRA",
    ),
    FollowUp(
        "en-claude3-date",
        turns("Which company made the Claude 3 family?", "Anthropic."),
        "On what date did it announce them?",
        "Claude",
    ),
    FollowUp(
        "eo-mmlu-subjects",
        turns("What is MMLU?", "A multiple-choice benchmark."),
        "How many subjects does it cover?",
        "MMLU",
    ),
]

# messages that name their subject: with a history, still no rewrite
STANDALONE_WITH_HISTORY = [
    (FOLLOW_UPS[0].history, "GPT-2 のトークナイザの語彙数はいくつか。"),
    (FOLLOW_UPS[3].history, "At which conference was the LoRA paper accepted?"),
    (FOLLOW_UPS[1].history, "HumanEval は何問の Python のプログラミング問題からなるか。"),
    (FOLLOW_UPS[5].history, "Who introduced the variational autoencoder (VAE)?"),
]


async def measure(parts: Components) -> dict[str, Any]:
    golden = {i.id: i for i in load(REPO / "eval" / "datasets" / "notes.jsonl")}
    rows = []
    for case in FOLLOW_UPS:
        item = golden[case.golden]
        followed = await parts.answerer.ask(case.message, history=case.history)
        direct = await parts.answerer.ask(item.question)
        rewrite = followed.rewrite
        assert rewrite is not None
        rows.append(
            {
                "id": case.golden,
                "message": case.message,
                "question": followed.question,
                "status": str(rewrite.status),
                "rewrite_ms": rewrite.ms,
                "rewrite_tokens": (rewrite.prompt_tokens, rewrite.completion_tokens),
                "names_it": fold(case.about) in fold(followed.question),
                "followed_ms": followed.timings["total_ms"],
                "direct_ms": direct.timings["total_ms"],
                "followed_ok": not followed.abstained
                and answer_check(item, followed.answer).passed,
                "direct_ok": not direct.abstained and answer_check(item, direct.answer).passed,
            }
        )
        print(rows[-1], flush=True)
    skipped = []
    for history, message in STANDALONE_WITH_HISTORY:
        rewrite = await parts.answerer.condense(message, history)
        skipped.append(rewrite.status is RewriteStatus.STANDALONE and rewrite.ms == 0)
    began = time.perf_counter()
    rounds = 200
    for _ in range(rounds):
        for history, message in STANDALONE_WITH_HISTORY:
            stands_alone(message, history)
    detector_us = (time.perf_counter() - began) / (rounds * len(STANDALONE_WITH_HISTORY)) * 1e6
    return {"rows": rows, "skipped": skipped, "detector_us": detector_us}


def report(result: dict[str, Any], command: str) -> str:
    rows = result["rows"]
    rewrite = [r["rewrite_ms"] for r in rows]
    ratios = [r["followed_ms"] / r["direct_ms"] for r in rows]
    share = [r["rewrite_ms"] / r["followed_ms"] for r in rows]
    prompt = statistics.mean(r["rewrite_tokens"][0] for r in rows)
    completion = statistics.mean(r["rewrite_tokens"][1] for r in rows)
    lines = [
        MARK_BEGIN,
        f"Command: `{command}` — {date.today().isoformat()}, this 2-core machine, vLLM CPU with "
        "Qwen2.5-Coder-1.5B-Instruct on the same cores, the bundled notes.",
        "",
        "| follow-up | answered as | rewrite | with history | standalone asked directly | "
        "checks (history / direct) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['message']} | {r['question']} | {r['rewrite_ms'] / 1000:.1f} s | "
            f"{r['followed_ms'] / 1000:.1f} s | {r['direct_ms'] / 1000:.1f} s | "
            f"{'pass' if r['followed_ok'] else 'fail'} / {'pass' if r['direct_ok'] else 'fail'} |"
        )
    lines += [
        "",
        f"- Rewrite per follow-up: median {statistics.median(rewrite) / 1000:.1f} s, worst "
        f"{max(rewrite) / 1000:.1f} s; {prompt:.0f} prompt and {completion:.0f} completion tokens "
        f"on average; median {statistics.median(share):.0%} of the follow-up's total time.",
        f"- A follow-up takes median {statistics.median(ratios):.2f}x (worst {max(ratios):.2f}x) "
        "the time of its standalone question asked directly (the answers differ in length too).",
        f"- The rewrite named what the conversation was about in "
        f"{sum(r['names_it'] for r in rows)} of {len(rows)}; answers passed the golden checks in "
        f"{sum(r['followed_ok'] for r in rows)} of {len(rows)} with history and "
        f"{sum(r['direct_ok'] for r in rows)} of {len(rows)} asked directly.",
        f"- Messages that stand alone, sent with a history: {sum(result['skipped'])} of "
        f"{len(result['skipped'])} skipped the model; the check costs "
        f"{result['detector_us']:.0f} µs per message. Of the bundled golden set's 84 questions, "
        "83 stand alone by this check (unit-tested).",
        MARK_END,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    base = Settings()
    embedder = Embedder(base)
    with tempfile.TemporaryDirectory(prefix="shiori-bench-") as tmp:
        work = Path(tmp)
        with local_llm(base, work / "vllm.log", print):
            settings = base.model_copy(update={"qdrant": str(work / "store")})
            index = NoteIndex(open_client(settings), settings, embedder.dimension)
            index.ensure_collections()
            Ingestor(settings, index, embedder).run([REPO / "notes"])
            parts = Components.assemble(settings, embedder, index)
            try:
                result = asyncio.run(measure(parts))
            finally:
                index.client.close()
    text = report(result, "make bench-followup")
    print(text)
    if args.write:
        write_block(
            args.write, MARK_BEGIN, MARK_END, text, "Follow-up questions (`make bench-followup`)"
        )


if __name__ == "__main__":
    main()
