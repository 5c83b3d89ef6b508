"""Same process, same run, ABAB: does padding every batch to a multiple of N tokens bound the API's
memory growth? (issue 25: the suspect is a per-input-shape cache of the CPU kernels, e.g.
oneDNN's primitive cache, since a batch padded to its own longest text has a new shape almost
every time.)

The embedder and the grounding verifier are loaded once (the API's heap settings: 2 malloc
arenas, set before the models load); a second Embedder / GroundingVerifier with
``pad_multiple=N`` shares the same loaded weights. Then W worker threads run, for each request,
embed_queries (1 query), embed_for_similarity (2-10 sentences) and verifier scoring (1-8
claims), with texts cut at random lengths from the bundled notes and the golden set's
questions. After --warmup seconds of each configuration, rounds alternate between padding to
the batch's longest text ("longest") and to a multiple of N ("bucketed 32"). Per round:
requests; the RSS held with every worker idle after a malloc_trim(0), before and after the
round (what the process keeps, not free pages glibc has yet to return); the least-squares RSS
slope (MB/min) of samples taken every 2 s after a trim, past the first --skip seconds (the ramp
of in-flight tensors); the distinct input shapes the models saw (this round / not seen before
in this configuration).

Before the rounds (alone with --fidelity-only): the largest difference between the two
configurations' outputs on the same inputs (unit-length embeddings; verifier probabilities),
and the padded lengths each configuration ran.

    flock /tmp/shiori-heavy.lock .venv/bin/python bench/heap_shapes.py \\
        --warmup 30 --rounds 6 --seconds 75
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from service import heap
from shiori.config import Settings
from shiori.embedding import Embedder
from shiori.grounding import Claim, GroundingVerifier

REPO = Path(__file__).resolve().parents[1]


def corpus() -> tuple[list[str], str]:
    lines = (REPO / "eval" / "datasets" / "notes.jsonl").read_text(encoding="utf-8").splitlines()
    qs = [json.loads(line)["question"] for line in lines if line.strip()]
    text = " ".join(
        " ".join(p.read_text(encoding="utf-8").split())
        for p in sorted((REPO / "notes").rglob("*.md"))
    )
    return qs, text


class Texts:
    def __init__(self, qs: list[str], text: str, seed: int) -> None:
        self.qs, self.text, self.rng = qs, text, random.Random(seed)

    def cut(self, lo: int, hi: int) -> str:
        n = self.rng.randint(lo, hi)
        i = self.rng.randrange(0, max(1, len(self.text) - n))
        return self.text[i : i + n]

    def query(self) -> str:
        q = self.rng.choice(self.qs)
        return q if self.rng.random() < 0.5 else q + " " + self.cut(5, 120)

    def sentences(self) -> list[str]:
        return [self.cut(10, 200) for _ in range(self.rng.randint(2, 10))]

    def claims(self) -> list[Claim]:
        return [
            Claim(self.rng.choice(self.qs), self.cut(5, 40), self.cut(20, 300), self.cut(20, 160))
            for _ in range(self.rng.randint(1, 8))
        ]


def fidelity(
    plain: tuple[Embedder, GroundingVerifier],
    bucketed: tuple[Embedder, GroundingVerifier],
    shapes: set[tuple[str, tuple[int, ...]]],
) -> dict[str, Any]:
    t = Texts(*corpus(), seed=1)
    queries = [t.query() for _ in range(24)]
    docs = [s for _ in range(4) for s in t.sentences()]
    claims = [t.claims() for _ in range(12)]  # scored as the rounds do: 1-8 per call
    out: dict[str, Any] = {}
    for name, fn in (
        ("embed_queries", lambda e, v: e.embed_queries(queries)),
        ("embed_for_similarity", lambda e, v: e.embed_for_similarity(docs)),
        ("verifier", lambda e, v: np.concatenate([v.score(batch) for batch in claims])),
    ):
        shapes.clear()
        a = fn(*plain)
        lengths_a = sorted({shape[1] for _, shape in shapes})
        shapes.clear()
        b = fn(*bucketed)
        lengths_b = sorted({shape[1] for _, shape in shapes})
        out[name] = {
            "n": len(a), "max_abs_diff": float(np.abs(a - b).max()),
            "lengths_longest": lengths_a, "lengths_bucketed": lengths_b,
        }  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6, help="A, B, A, B, ...")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--multiple", type=int, default=32)
    parser.add_argument("--skip", type=float, default=15, help="seconds left out of the slope")
    parser.add_argument("--warmup", type=float, default=0, help="s of each config before round 1")
    parser.add_argument("--fidelity-only", action="store_true", help="no rounds")
    parser.add_argument("--arenas", type=int, default=2, help="as the API (0: glibc's default)")
    args = parser.parse_args()

    heap.limit_arenas(args.arenas)
    plain_s, bucket_s = Settings(pad_multiple=0), Settings(pad_multiple=args.multiple)
    e0, v0 = Embedder(plain_s), GroundingVerifier(plain_s)
    e1, v1 = Embedder(bucket_s), GroundingVerifier(bucket_s)
    e1.model = e0.model  # the same loaded weights (cached_property: set on the instance)
    v1._parts = v0._parts
    e0.embed_queries(["warm-up"])
    v0.score([Claim("warm-up", "", "warm-up", "warm-up")])
    configs = [("longest", e0, v0), (f"bucketed {args.multiple}", e1, v1)]

    shapes: set[tuple[str, tuple[int, ...]]] = set()
    seen_all: dict[str, set[tuple[str, tuple[int, ...]]]] = {name: set() for name, _, _ in configs}

    def hook(tag: str) -> Any:
        def record(_module: Any, inputs: tuple[Any, ...]) -> None:
            shapes.add((tag, tuple(inputs[0].shape)))

        return record

    e0.model[0].model.get_input_embeddings().register_forward_pre_hook(hook("embed"))
    v0._parts[1].get_input_embeddings().register_forward_pre_hook(hook("verifier"))
    print(json.dumps({"fidelity": fidelity((e0, v0), (e1, v1), shapes)}), flush=True)
    if args.fidelity_only:
        return

    qs, text = corpus()
    proc = psutil.Process()

    def run(emb: Embedder, ver: GroundingVerifier, seconds: float, seed: int) -> tuple[int, float]:
        """Workers for ``seconds``: (requests, RSS slope in MB/min past --skip seconds)."""
        stop, done = threading.Event(), [0] * args.workers

        def work(k: int) -> None:
            t = Texts(qs, text, seed + k)
            while not stop.is_set():
                emb.embed_queries([t.query()])
                emb.embed_for_similarity(t.sentences())
                ver.score(t.claims())
                done[k] += 1

        threads = [threading.Thread(target=work, args=(k,)) for k in range(args.workers)]
        t0 = time.monotonic()
        for th in threads:
            th.start()
        samples: list[tuple[float, float]] = []
        while (now := time.monotonic() - t0) < seconds:
            if now >= args.skip:  # past the ramp of the first in-flight tensors
                heap.trim()
                samples.append((now, proc.memory_info().rss / 1e6))
            time.sleep(2)
        stop.set()
        for th in threads:
            th.join()
        if len(samples) < 2:
            return sum(done), float("nan")
        xs = [x for x, _ in samples]
        mx, my = statistics.fmean(xs), statistics.fmean(y for _, y in samples)
        slope = sum((x - mx) * (y - my) for x, y in samples) / sum((x - mx) ** 2 for x in xs)
        return sum(done), slope * 60

    def held() -> float:
        """RSS with every worker idle, after a trim: what the process keeps."""
        heap.trim()
        return float(proc.memory_info().rss / 1e6)

    for k, (name, emb, ver) in enumerate(configs):
        if args.warmup > 0:
            shapes.clear()
            run(emb, ver, args.warmup, seed=100_000 + 10 * k)
            seen_all[name] |= shapes
    before = held()
    print(json.dumps({"warmup_s": args.warmup, "held_mb": round(before)}), flush=True)
    for rnd in range(args.rounds):
        name, emb, ver = configs[rnd % 2]
        shapes.clear()
        requests, slope = run(emb, ver, args.seconds, seed=1000 * rnd)
        after = held()
        row = {
            "round": rnd + 1, "config": name, "requests": requests,
            "held_before_mb": round(before), "held_after_mb": round(after),
            "held_growth_mb": round(after - before), "slope_mb_per_min": round(slope, 1),
            "shapes": len(shapes), "new_shapes": len(shapes - seen_all[name]),
        }  # fmt: skip
        seen_all[name] |= shapes
        before = after
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
