"""Answers sooner: vLLM's serving options against today's flags, on the bundled set's questions.

Each configuration starts its own vLLM CPU server (today's command from
`runtime.llm.vllm_cpu.server_command`, plus the option's flags) on a port of its own, then
answers the same questions, one at a time, through Shiori's answer path in this process
(`Answerer.stream`, what `/v1/ask` runs: retrieve, gate, pack, generate at temperature 0, the
second reading after a refusal, verify). Measured per question: the whole answer (the /v1/ask
path without HTTP), and per generation the time to first token (request sent to first text) and
the decode rate ((completion tokens - 1) / (last token - first token)). Every configuration's
final answers are compared with today's, text for text.

Options: prefix caching off (vLLM 0.32 turns it on by default, so today's flags run with it),
and n-gram speculative decoding (prompt lookup: a draft of N tokens copied from where the
last M tokens occur earlier in the prompt, verified in one forward pass; answers quote their
sources, so drafts may be accepted often). Acceptance is read from vLLM's /metrics.

    python bench/bench_answer.py [--questions N] [--configs today,ngram,no-prefix-cache]
        (a configuration may repeat, in any order: figures compare with the first one;
         bf16, w8a8 and w4a16 serve that checkpoint of the model, SHIORI_LLM_QUANTIZATION;
         whole and focus show whole passages or focused ones, SHIORI_PROMPT_FOCUS)
        [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blocks import write_block  # bench/ is on sys.path when run as a script

from ingest.pipeline import Ingestor
from rag.answer import Answer, Answerer
from runtime.llm import vllm_cpu
from service.components import Components
from shiori.config import Settings
from shiori.embedding import Embedder
from shiori.index import NoteIndex, open_client

REPO = Path(__file__).resolve().parents[1]
DATASET = REPO / "eval" / "datasets" / "notes.jsonl"
MARK_BEGIN, MARK_END = "<!-- bench-answer:begin -->", "<!-- bench-answer:end -->"


def ngram(tokens: int, lookup_max: int, lookup_min: int = 2) -> list[str]:
    spec = {
        "method": "ngram",
        "num_speculative_tokens": tokens,
        "prompt_lookup_max": lookup_max,
        "prompt_lookup_min": lookup_min,
    }
    return ["--speculative-config", json.dumps(spec)]


CONFIGS: dict[str, list[str]] = {
    "today": [],
    "no-prefix-cache": ["--no-enable-prefix-caching"],
    "ngram": ngram(4, 4),
    "ngram-k8": ngram(8, 4),
    "bf16": [],
    "w8a8": [],
    "w4a16": [],
}
CONFIGS["whole"] = []  # today's flags, the prompt shows whole passages (before issue 22's focus)
CONFIGS["focus"] = []  # today's flags, the prompt shows the sentences that bear on the question
CONFIGS["w8a8-focus"] = []
CONFIGS["llamaindex"] = []  # a plain LlamaIndex pipeline on today's server (`plain_pipeline`)
# configurations that serve another checkpoint of the model (SHIORI_LLM_QUANTIZATION)
WEIGHTS = {"bf16": "none", "w8a8": "w8a8", "w4a16": "w4a16", "w8a8-focus": "w8a8"}
# configurations that change Shiori's own settings (the answer path's, not the server's)
ANSWERING: dict[str, dict[str, Any]] = {
    "whole": {"prompt_focus": False},
    "focus": {"prompt_focus": True},
    "w8a8-focus": {"prompt_focus": True},
    "bf16": {"prompt_focus": False},
    "w8a8": {"prompt_focus": False},
    "w4a16": {"prompt_focus": False},
}


@dataclass
class Generation:
    sent: float
    first: float | None = None
    end: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def ttft_ms(self) -> float:
        return ((self.first or self.end) - self.sent) * 1000

    @property
    def decode_tok_s(self) -> float | None:
        if self.first is None or self.completion_tokens < 2 or self.end <= self.first:
            return None
        return (self.completion_tokens - 1) / (self.end - self.first)


@dataclass
class Run:
    config: str
    start_s: float = 0.0
    totals_ms: list[float] = field(default_factory=list)
    generations: list[Generation] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    abstained: list[bool] = field(default_factory=list)
    # per question: the answer's own stage timings (`Answer.timings`, ms) and prompt tokens
    stages: list[dict[str, float]] = field(default_factory=list)
    prompt_tokens: list[int] = field(default_factory=list)
    accepted: float | None = None
    drafted: float | None = None


def questions(n: int) -> list[str]:
    rows = [json.loads(line) for line in DATASET.read_text(encoding="utf-8").splitlines() if line]
    return [r["question"] for r in rows if r.get("answerable")][: n * 3]


def spec_metrics(settings: Settings) -> tuple[float | None, float | None]:
    """(accepted, drafted) speculative tokens so far, from vLLM's Prometheus endpoint."""
    base = settings.llm_url.rstrip("/").removesuffix("/v1")
    with urllib.request.urlopen(base + "/metrics", timeout=10) as response:
        text = response.read().decode()
    found: dict[str, float] = {}
    for line in text.splitlines():
        for key in ("spec_decode_num_accepted_tokens_total", "spec_decode_num_draft_tokens_total"):
            if line.startswith(f"vllm:{key}"):
                found[key] = found.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return (
        found.get("spec_decode_num_accepted_tokens_total"),
        found.get("spec_decode_num_draft_tokens_total"),
    )


def instrument(parts: Components, sink: list[Generation]) -> None:
    """Record each generation of the answer path (its own streamed call to vLLM)."""
    answerer = parts.answerer
    original = answerer._events

    async def events(draft: Any, retry: bool) -> Any:
        gen = Generation(sent=time.perf_counter())
        async for event in original(draft, retry):
            if isinstance(event, tuple):
                gen.prompt_tokens, gen.completion_tokens = event
            elif isinstance(event, str) and gen.first is None:
                gen.first = time.perf_counter()
            yield event
        gen.end = time.perf_counter()
        sink.append(gen)

    answerer._events = events  # type: ignore[method-assign]


async def answer_all(parts: Components, asked: list[str], run: Run) -> None:
    for question in asked:
        began = time.perf_counter()
        final: Answer | None = None
        async for item in parts.answerer.stream(question):
            if isinstance(item, Answer):
                final = item
        run.totals_ms.append((time.perf_counter() - began) * 1000)
        assert final is not None
        run.answers.append(final.answer)
        run.abstained.append(final.abstained)
        run.stages.append(dict(final.timings))
        run.prompt_tokens.append(final.prompt_tokens)


def plain_pipeline(settings: Settings) -> Any:
    """The anchor: LlamaIndex's defaults over the same notes — SimpleDirectoryReader,
    SentenceSplitter, an in-memory vector index of EmbeddingGemma vectors, a query engine with
    the top 4 chunks and its default QA prompt — answered by the same vLLM server."""
    from llama_index.core import Settings as LlamaSettings
    from llama_index.core import SimpleDirectoryReader, VectorStoreIndex
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.llms.openai_like import OpenAILike

    from shiori.models import resolve

    LlamaSettings.embed_model = HuggingFaceEmbedding(
        model_name=resolve(settings.embed_model, settings.models_dir), device="cpu"
    )
    LlamaSettings.llm = OpenAILike(
        model=settings.llm_model,
        api_base=settings.llm_url,
        api_key="none",
        is_chat_model=True,
        temperature=0,
        max_tokens=settings.llm_max_tokens,
        timeout=settings.llm_timeout_s,
    )
    docs = SimpleDirectoryReader(str(REPO / "notes"), required_exts=[".md"]).load_data()
    return VectorStoreIndex.from_documents(docs).as_query_engine(similarity_top_k=4)


def plain_answers(engine: Any, asked: list[str], run: Run) -> None:
    for question in asked:
        began = time.perf_counter()
        response = engine.query(question)
        run.totals_ms.append((time.perf_counter() - began) * 1000)
        run.answers.append(str(response))
        run.abstained.append(False)


def run_config(name: str, parts: Components, asked: list[str], work: Path) -> Run:
    settings = parts.settings
    if name in WEIGHTS:
        settings = settings.model_copy(update={"llm_quantization": WEIGHTS[name]})
    cmd = vllm_cpu.prepare(settings) + CONFIGS[name]
    log = work / f"vllm-{name}.log"
    run = Run(name)
    answering = parts.answerer.settings
    parts.answerer.settings = answering.model_copy(update=ANSWERING.get(name, {}))
    began = time.perf_counter()
    proc = vllm_cpu.spawn(cmd, log)
    try:
        vllm_cpu.wait_ready(settings, proc, log)
        run.start_s = time.perf_counter() - began
        if name == "llamaindex":
            plain_answers(plain_pipeline(settings), asked, run)
            return run
        asyncio.run(session(parts, asked, run))
        run.accepted, run.drafted = spec_metrics(settings)
    finally:
        parts.answerer.settings = answering
        parts.answerer.__dict__.pop("_events", None)
        vllm_cpu.stop(proc)
    return run


async def session(parts: Components, asked: list[str], run: Run) -> None:
    """One event loop and one fresh client per server (a pooled connection must not outlive
    its loop or its server)."""
    parts.answerer.llm = Answerer.client_for(parts.settings)
    try:
        # warm-up on an unrelated prompt: a server that has answered before (the system
        # prompt may then be cached, as in a running service), not the questions themselves
        await warm_up(parts)
        instrument(parts, run.generations)
        await answer_all(parts, asked, run)
    finally:
        await parts.answerer.llm.close()


async def warm_up(parts: Components) -> None:
    await parts.answerer.llm.chat.completions.create(
        model=parts.settings.llm_model,
        messages=[{"role": "user", "content": "こんにちは。一言で答えてください。"}],
        temperature=0,
        max_tokens=8,
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ttft(r: Run) -> str:
    if not r.generations:
        return "—"
    return f"{statistics.median(g.ttft_ms for g in r.generations):.0f} ms"


def report(runs: list[Run], asked: list[str], command: str) -> str:
    base = runs[0]
    base_p50 = statistics.median(base.totals_ms)
    lines = [
        MARK_BEGIN,
        f"Command: `{command}` — run on {time.strftime('%Y-%m-%d')}, this 2-core machine, vLLM "
        f"CPU 0.32 with Qwen2.5-Coder-1.5B-Instruct on the same cores; {len(asked)} "
        "answerable questions of eval/datasets/notes.jsonl that reach generation, one at a time, "
        "through Shiori's answer path in process (the /v1/ask path without HTTP).",
        "",
        f"| configuration | answer p50 | p95 | p50 vs {base.config} | TTFT p50 | decode tok/s "
        f"(median) | answers equal to {base.config}'s | spec. tokens accepted | server start |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        p50 = statistics.median(r.totals_ms)
        decode = [d for g in r.generations if (d := g.decode_tok_s) is not None]
        same = sum(a == b for a, b in zip(r.answers, base.answers, strict=True))
        flags = " ".join(CONFIGS[r.config]) or (
            ", ".join(
                [f"weights {WEIGHTS[r.config]}" for _ in range(r.config in WEIGHTS)]
                + [f"{k}={v}" for k, v in ANSWERING.get(r.config, {}).items()]
            )
            or "(today's)"
        )
        accept = (
            f"{r.accepted / r.drafted:.0%} ({r.accepted:.0f} / {r.drafted:.0f})"
            if r.accepted is not None and r.drafted
            else "—"
        )
        lines.append(
            f"| {r.config}: `{flags}` | {p50 / 1000:.2f} s | {pct(r.totals_ms, 0.95) / 1000:.2f} s "
            f"| {p50 / base_p50:.2f}x | {ttft(r)} | "
            f"{statistics.median(decode) if decode else float('nan'):.1f} | {same} of "
            f"{len(asked)} | {accept} | {r.start_s:.0f} s |"
        )
    gens = len(base.generations)
    lines += [
        "",
        f"- Generations per configuration: {gens} for {len(asked)} questions (a refusal is read "
        "a second time). Answers compared as the final text Shiori returns.",
        *stage_lines(runs),
        "",
        MARK_END,
    ]
    return "\n".join(lines)


STAGES = ("rewrite_ms", "retrieve_ms", "first_token_ms", "generate_ms", "verify_ms", "total_ms")


def stage_lines(runs: list[Run]) -> list[str]:
    """p50 of each stage of Shiori's answers (`Answer.timings`), per configuration."""
    out = []
    for r in runs:
        if not r.stages:
            continue
        cells = []
        for key in STAGES:
            values = [s[key] for s in r.stages if key in s]
            if values:
                cells.append(f"{key.removesuffix('_ms')} {statistics.median(values):.0f} ms")
        gens = len(r.generations)
        tokens = [t for t in r.prompt_tokens if t]
        mean_tokens = (
            f", prompt tokens per answer (mean) {statistics.mean(tokens):.0f}" if tokens else ""
        )
        out.append(
            f"- {r.config}, p50 by stage: {', '.join(cells)}; {gens} generations, "
            f"{sum(r.abstained)} abstained{mean_tokens}."
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--configs", default="today,ngram,no-prefix-cache")
    parser.add_argument("--write", type=Path, help="update this Markdown file in place")
    parser.add_argument("--keep", type=Path, help="also write the raw runs as JSON here")
    args = parser.parse_args()
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown or not names:
        parser.error(f"--configs: the first is the base; known: {', '.join(CONFIGS)}")

    work = Path(tempfile.mkdtemp(prefix="bench-answer-"))
    port = 18100 + os.getpid() % 800
    settings = Settings(
        qdrant=str(work / "store"),
        collection="notes",
        llm_url=f"http://127.0.0.1:{port}/v1",
        llm_api_key=None,
    )
    try:
        embedder = Embedder(settings)
        index = NoteIndex(open_client(settings), settings, embedder.dimension)
        index.ensure_collections()
        Ingestor(settings, index, embedder).run([REPO / "notes"])
        index.client.close()
        parts = Components.build(settings, embedder)
        asked = []
        for q in questions(args.questions):
            if asyncio.run(parts.answerer.prepare(q)).messages is not None:
                asked.append(q)
            if len(asked) == args.questions:
                break
        runs = []
        for name in names:
            runs.append(run_config(name, parts, asked, work))
            r = runs[-1]
            print(name, f"p50 {statistics.median(r.totals_ms):.0f} ms", flush=True)
        command = "make bench-answer" + (
            f" (--questions {args.questions} --configs {args.configs})"
            if (args.questions, args.configs) != (8, "today,ngram,no-prefix-cache")
            else ""
        )
        if args.keep:
            raw = [
                {
                    "config": r.config,
                    "totals_ms": r.totals_ms,
                    "answers": r.answers,
                    "ttft_ms": [g.ttft_ms for g in r.generations],
                    "decode": [g.decode_tok_s for g in r.generations],
                    "stages": r.stages,
                    "prompt_tokens": r.prompt_tokens,
                    "abstained": r.abstained,
                }
                for r in runs
            ]
            args.keep.write_text(json.dumps({"questions": asked, "runs": raw}, ensure_ascii=False))
        text = report(runs, asked, command)
        print(text)
        if args.write:
            write_block(
                args.write, MARK_BEGIN, MARK_END, text, "Answers sooner (`make bench-answer`)"
            )
        asyncio.run(parts.aclose())
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
