"""Embedding throughput against this CPU's limit, measured in one run.

The limit: the bf16 matrix multiplies EmbeddingGemma-300m does per token, at its own shapes
(24 layers, each q/k/v/o projections 768→768/256/256, 768→768 and the gated MLP 768→1152 ×2,
1152→768), on as many rows as a real batch holds. Timing those seven linears on T rows, 24
times, gives the tokens/s the model could reach if it were nothing but its weight matmuls: the
same per-token FLOP count the older figure used (2 × 106M), but at shapes the CPU's bf16 kernels
(AVX512-BF16, or AMX where the CPU has it) actually see, not a square 2048² product.

Against it, each option embeds the same JSQuAD paragraphs (as Shiori embeds documents: the
title prompt plus the text) in this process, one after another: today's settings (batch 4,
eager attention, bf16 weights), larger batches (sentence-transformers sorts one call's texts by
length, so a batch holds texts of similar length), SDPA attention, fp32 weights (with and
without bf16 autocast), one thread, and `torch.compile`. Each option's vectors are compared
with today's (cosine per text), and single-query latency (the query prompt, one question at a
time, as /v1/search embeds) is measured for every option.

    python bench/bench_embed.py [--limit N] [--queries N] [--no-compile] [--write FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from blocks import write_block  # bench/ is on sys.path when run as a script

from shiori.config import Settings
from shiori.embedding import Embedder, document_prompt

REPO = Path(__file__).resolve().parents[1]
JSQUAD = REPO.parent / "shared/data/jsquad/valid-v1.3.json"
MARK_BEGIN, MARK_END = "<!-- bench-embed:begin -->", "<!-- bench-embed:end -->"

# EmbeddingGemma-300m's transformer (config.json): hidden 768, 3 query heads and 1 key/value
# head of 256, MLP 1152, 24 layers. (in, out) of each weight matrix a token passes through.
LAYER_LINEARS = [(768, 768), (768, 256), (768, 256), (768, 768), (768, 1152), (768, 1152)]
LAYER_LINEARS.append((1152, 768))
LAYERS = 24
FLOPS_PER_TOKEN = 2 * LAYERS * sum(i * o for i, o in LAYER_LINEARS)


def cpu_description() -> tuple[str, list[str]]:
    name, flags = platform.processor() or platform.machine(), []
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1].split()
    wanted = ("amx_bf16", "amx_int8", "avx512_bf16", "avx512_vnni", "avx512f")
    return name, [f for f in wanted if f in flags]


def layer_matmul_limit(rows: int, seconds: float = 2.0) -> float:
    """Tokens/s of the model's weight matmuls alone at ``rows`` tokens per batch (bf16)."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    weights = [torch.randn(o, i, dtype=torch.bfloat16) * 0.02 for i, o in LAYER_LINEARS]
    x768 = torch.randn(rows, 768, dtype=torch.bfloat16)
    x1152 = torch.randn(rows, 1152, dtype=torch.bfloat16)

    def layer() -> None:
        for w in weights:
            F.linear(x1152 if w.shape[1] == 1152 else x768, w)

    with torch.inference_mode():
        for _ in range(3):
            layer()
        n, began = 0, time.perf_counter()
        while time.perf_counter() - began < seconds:
            layer()
            n += 1
        per_layer = (time.perf_counter() - began) / n
    return rows / (per_layer * LAYERS)


def square_matmul_gflops(seconds: float = 2.0) -> float:
    """The older reference figure: one 2048² bf16 product (GFLOP/s)."""
    import torch

    a = torch.randn(2048, 2048, dtype=torch.bfloat16)
    b = torch.randn(2048, 2048, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    n, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        a @ b
        n += 1
    return 2 * 2048**3 * n / (time.perf_counter() - began) / 1e9


def jsquad(limit: int, queries: int) -> tuple[list[str], list[str], list[str]]:
    """(titles, texts, questions): the first ``limit`` validation paragraphs, one question each
    from the first ``queries`` of them."""
    data = json.loads(JSQUAD.read_text(encoding="utf-8"))
    titles, texts, questions = [], [], []
    for article in data["data"]:
        for para in article["paragraphs"]:
            title, _, text = para["context"].partition(" [SEP] ")
            titles.append(title)
            texts.append(text)
            if len(questions) < queries:
                questions.append(para["qas"][0]["question"])
    return titles[:limit], texts[:limit], questions


def padded_tokens(lengths: list[int], char_lengths: list[int], batch: int) -> int:
    """Tokens the model computes with padding, batching as sentence-transformers does (one
    call's texts sorted by character length, longest first, then cut into batches)."""
    order = np.argsort([-c for c in char_lengths])
    sorted_lengths = [lengths[i] for i in order]
    return sum(
        max(sorted_lengths[s : s + batch]) * len(sorted_lengths[s : s + batch])
        for s in range(0, len(sorted_lengths), batch)
    )


@dataclass
class Option:
    name: str
    batch: int
    attention: str = "eager"
    threads: int | None = None
    autocast: bool = False  # fp32 weights, bf16 autocast (the bf16-weights model is the default)
    compiled: bool = False
    vectors: np.ndarray | None = None
    seconds: float = 0.0
    query_ms: list[float] = field(default_factory=list)
    query_vectors: np.ndarray | None = None
    extra: str = ""


@contextlib.contextmanager
def configured(embedder: Embedder, option: Option) -> Iterator[None]:
    import torch

    transformer = embedder.model[0].model
    threads_before = torch.get_num_threads()
    if option.threads:
        torch.set_num_threads(option.threads)
    transformer.set_attn_implementation(option.attention)
    context = (
        torch.autocast("cpu", dtype=torch.bfloat16) if option.autocast else contextlib.nullcontext()
    )
    try:
        with context:
            yield
    finally:
        torch.set_num_threads(threads_before)
        transformer.set_attn_implementation("eager")


def measure(
    embedder: Embedder,
    option: Option,
    titles: list[str],
    texts: list[str],
    questions: list[str],
) -> None:
    embedder.settings = embedder.settings.model_copy(update={"embed_batch_size": option.batch})
    with configured(embedder, option):
        embedder.embed_documents(texts[:8], titles[:8])  # warm-up (kernels, allocator)
        began = time.perf_counter()
        option.vectors = embedder.embed_documents(texts, titles)
        option.seconds = time.perf_counter() - began
        embedder.embed_queries(questions[:3])
        rows = []
        for q in questions:
            began = time.perf_counter()
            rows.append(embedder.embed_queries([q])[0])
            option.query_ms.append((time.perf_counter() - began) * 1000)
        option.query_vectors = np.stack(rows)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine in float64. The model returns vectors normalised in bf16 (norms off by up
    to ~0.5%), so a plain dot product would not be 1 even for the same vector."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return np.sum(a64 * b64, axis=1) / (np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1))


def compile_in_fresh_process() -> float:
    """Seconds a new process spends compiling, with this run's Inductor caches on disk (what
    every later `shiori` process would pay)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, __file__, "--compile-only"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        print(f"compiling in a fresh process failed:\n{done.stderr[-2000:]}", flush=True)
        return float("nan")
    return float(done.stdout.strip().splitlines()[-1])


def progress(option: Option, base: Option, tokens: int) -> None:
    """One line per option as soon as it is measured (a crash later loses no figure)."""
    assert option.vectors is not None and base.vectors is not None
    assert option.query_vectors is not None and base.query_vectors is not None
    low = min(
        cosine(option.vectors, base.vectors).min(),
        cosine(option.query_vectors, base.query_vectors).min(),
    )
    print(
        f"{option.name}: {tokens / option.seconds:.0f} tok/s, min cosine {low:.5f}, query p50 "
        f"{pct(option.query_ms, 50):.0f} ms p95 {pct(option.query_ms, 95):.0f} ms",
        flush=True,
    )


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def report(
    options: list[Option],
    tokens: int,
    lengths: list[int],
    char_lengths: list[int],
    limits: dict[int, float],
    square: float,
    cpu: tuple[str, list[str]],
    command: str,
    n_texts: int,
    compile_s: tuple[float, float] | None,
    threads: int,
) -> str:
    base = options[0]
    assert base.vectors is not None and base.query_vectors is not None
    limit = max(limits.values())
    rows_desc = ", ".join(f"{r:,} rows: {v:,.0f}" for r, v in sorted(limits.items()))
    lines = [
        MARK_BEGIN,
        f"Command: `{command}` — run on {time.strftime('%Y-%m-%d')}, {cpu[0]}, "
        f"{os.cpu_count()} cores (bf16-relevant CPU flags: {', '.join(cpu[1]) or 'none'}), "
        f"torch threads {threads}; {n_texts} JSQuAD valid paragraphs, "
        f"{tokens:,} tokens with the document prompt (mean {statistics.mean(lengths):.0f}, "
        f"max {max(lengths)}).",
        "",
        f"- Limit, this run: EmbeddingGemma's weight matmuls (24 layers × 7 linears at the "
        f"model's shapes, {FLOPS_PER_TOKEN / 1e6:.0f}M FLOPs per token) in bf16, tokens/s by "
        f"rows per batch: {rows_desc}. **Limit = {limit:,.0f} tokens/s** "
        f"({limit * FLOPS_PER_TOKEN / 1e9:,.0f} GFLOP/s). A square 2048² bf16 product ran at "
        f"{square:,.0f} GFLOP/s in the same run.",
        "",
        "| option | batch | tokens/s | of limit | vs today | padding | min cosine vs today "
        "| query p50 | query p95 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for o in options:
        assert o.vectors is not None and o.query_vectors is not None
        tok_s = tokens / o.seconds
        cos, qcos = cosine(o.vectors, base.vectors), cosine(o.query_vectors, base.query_vectors)
        pad = padded_tokens(lengths, char_lengths, o.batch) / tokens - 1
        lines.append(
            f"| {o.name} | {o.batch} | {tok_s:,.0f} | {tok_s / limit:.0%} | "
            f"{base.seconds / o.seconds:.2f}x | {pad:+.0%} | {min(cos.min(), qcos.min()):.5f} | "
            f"{pct(o.query_ms, 50):.0f} ms | {pct(o.query_ms, 95):.0f} ms |"
        )
    lines.append("")
    lines.append(
        "- Padding: tokens computed beyond the texts' own, with sentence-transformers' "
        "length-sorted batches of one call. Min cosine: the lowest cosine similarity between an "
        f"option's vector and today's, over the {n_texts} documents and the queries."
    )
    if compile_s is not None:
        lines.append(
            f"- `torch.compile` (Inductor, frozen weights, dynamic shapes) took {compile_s[0]:.0f} "
            f"s to compile in this process, and {compile_s[1]:.0f} s in a fresh process with the "
            "compile caches this run left on disk."
        )
    lines += ["", MARK_END]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=400, help="JSQuAD paragraphs (default 400)")
    parser.add_argument("--queries", type=int, default=40, help="single queries timed per option")
    parser.add_argument(
        "--options",
        default="b16,b32,b64,sdpa,1thread,autocast,fp32,compile",
        help="which options besides today's (default: all of them)",
    )
    parser.add_argument("--compile-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--write", type=Path, help="update this Markdown file in place")
    args = parser.parse_args()

    import torch

    if args.compile_only:
        from shiori.embedding import _compiled

        model = Embedder(Settings()).model  # loading is not compiling
        began = time.perf_counter()
        _compiled(model)
        print(time.perf_counter() - began)
        return

    titles, texts, questions = jsquad(args.limit, args.queries)
    settings = Settings()
    embedder = Embedder(settings)
    full = [document_prompt(t) + x for t, x in zip(titles, texts, strict=True)]
    lengths = [
        len(ids) + 2 for ids in embedder.tokenizer(full, add_special_tokens=False)["input_ids"]
    ]
    char_lengths = [len(t) for t in full]
    tokens = sum(lengths)
    cpu = cpu_description()
    print(f"{cpu}; {len(texts)} texts, {tokens} tokens; torch threads {torch.get_num_threads()}")

    def limits_now() -> dict[int, float]:
        mean_len = int(statistics.mean(lengths))
        return {r: layer_matmul_limit(r) for r in (4 * mean_len, 32 * mean_len, 64 * mean_len)}

    limits_start, square_start = limits_now(), square_matmul_gflops()
    print("limit (start):", {k: round(v) for k, v in limits_start.items()}, round(square_start))
    threads = torch.get_num_threads()
    wanted = set(args.options.split(","))
    plan = [
        ("today", Option(f"today (batch {settings.embed_batch_size}, eager, bf16)",
                         settings.embed_batch_size)),
        ("b16", Option("batch 16", 16)),
        ("b32", Option("batch 32", 32)),
        ("b64", Option("batch 64", 64)),
        ("sdpa", Option("batch 32, SDPA attention", 32, attention="sdpa")),
        ("1thread", Option("batch 32, 1 thread", 32, threads=1)),
    ]  # fmt: skip
    options = [o for key, o in plan if key in wanted or key == "today"]
    for option in options:
        measure(embedder, option, titles, texts, questions)
        progress(option, options[0], tokens)

    if wanted & {"autocast", "fp32"}:  # fp32 weights need their own model
        fp32 = Embedder(settings.model_copy(update={"embed_dtype": "float32"}))
        extras = [
            ("autocast", Option("batch 32, fp32 weights + bf16 autocast", 32, autocast=True)),
            ("fp32", Option("batch 32, fp32 weights", 32)),
        ]
        for key, extra in extras:
            if key in wanted:
                measure(fp32, extra, titles, texts, questions)
                progress(extra, options[0], tokens)
                options.append(extra)
        del fp32

    compile_s: tuple[float, float] | None = None
    if "compile" in wanted:
        from shiori.embedding import _compiled

        began = time.perf_counter()
        compiled_model = _compiled(embedder.model)
        first = time.perf_counter() - began
        embedder.__dict__["model"] = compiled_model
        for batch in (16, 32):
            comp = Option(f"batch {batch}, torch.compile", batch, compiled=True)
            measure(embedder, comp, titles, texts, questions)
            progress(comp, options[0], tokens)
            options.append(comp)
        compile_s = (first, compile_in_fresh_process())
    limits_end, square_end = limits_now(), square_matmul_gflops()
    limits = {r: (limits_start[r] + limits_end[r]) / 2 for r in limits_start}
    command = "make bench-embed"
    if args.limit != 400 or args.options != parser.get_default("options"):
        command += f" (--limit {args.limit} --options {args.options})"
    square = (square_start + square_end) / 2
    text = report(
        options,
        tokens,
        lengths,
        char_lengths,
        limits,
        square,
        cpu,
        command,
        len(texts),
        compile_s,
        threads,
    )
    print(text)
    if args.write:
        write_block(
            args.write, MARK_BEGIN, MARK_END, text, "Embedding throughput (`make bench-embed`)"
        )


if __name__ == "__main__":
    main()
