"""Train the grounding verifier: LoRA on EmbeddingGemma's attention + a linear head, on the CPU.

    python -m train.verifier [--squad ../shared/data/jsquad/valid-v1.3.json] [--examples 6000]
        [--seed 0] [--out shiori/verifier]            (what `make train-verifier` runs)

Reproducible from the seed (data sampling, initialisation, batch order; torch's CPU kernels
are deterministic for these ops). Writes the adapter (peft's safetensors), the head, the
manifest (sha256 of each file, hyper-parameters, dev AUROC) and the data card's counts.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eval.metrics import auroc
from shiori.config import Settings
from shiori.grounding import (
    MAX_TOKENS,
    Claim,
    load_backbone,
    mean_pool,
    verifier_input,
)
from shiori.models import sha256_of
from train.verifier.data import Example, build

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]


def balanced(examples: Sequence[Example], n: int, rng: random.Random) -> list[Example]:
    """``n`` examples, half positive and half negative (each side sampled uniformly)."""
    pos = [e for e in examples if e.label == 1]
    neg = [e for e in examples if e.label == 0]
    take = min(n // 2, len(pos), len(neg))
    chosen = rng.sample(pos, take) + rng.sample(neg, take)
    rng.shuffle(chosen)
    return chosen


def text(e: Example) -> str:
    return verifier_input(Claim(e.question, e.heading, e.evidence, e.claim))


def batches(examples: Sequence[Example], size: int, rng: random.Random) -> list[list[Example]]:
    """Batches of similar length (less padding), in random order."""
    ordered = sorted(examples, key=lambda e: len(text(e)))
    groups = [list(ordered[i : i + size]) for i in range(0, len(ordered), size)]
    rng.shuffle(groups)
    return groups


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.verifier", description=__doc__)
    parser.add_argument("--squad", type=Path, default=Path("../shared/data/jsquad/valid-v1.3.json"))
    parser.add_argument("--examples", type=int, default=6000, help="training examples (balanced)")
    parser.add_argument("--dev-examples", type=int, default=1200)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("shiori/verifier"))
    parser.add_argument("--data-out", type=Path, default=Path("reports/verifier"))
    args = parser.parse_args(argv)
    if not args.squad.is_file():
        print(f"error: {args.squad} not found (JSQuAD v1.3 valid, SQuAD format)", file=sys.stderr)
        return 2

    import torch
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import save_file

    rng = random.Random(args.seed)
    torch.manual_seed(args.seed)
    settings = Settings()
    torch.set_num_threads(settings.threads or torch.get_num_threads())
    train_all, dev_all = build(args.squad, seed=args.seed)
    train = balanced(train_all, args.examples, rng)
    dev = balanced(dev_all, args.dev_examples, rng)
    print(f"examples: train {len(train)} of {len(train_all)}, dev {len(dev)} of {len(dev_all)}")

    tokenizer, base = load_backbone(settings)
    config = LoraConfig(
        r=args.rank,
        lora_alpha=2 * args.rank,
        lora_dropout=0.05,
        target_modules=LORA_TARGETS,
    )
    model = get_peft_model(base, config)
    hidden = int(base.config.hidden_size)
    head = torch.nn.Linear(hidden, 1)
    lora = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(
        [{"params": lora, "lr": args.lr}, {"params": head.parameters(), "lr": 3 * args.lr}],
        weight_decay=0.01,
    )
    plan = [b for _ in range(args.epochs) for b in batches(train, args.batch, rng)]
    warmup = max(1, len(plan) // 20)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(
            0.0, 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, len(plan) - warmup)))
        )

    lr_sched = torch.optim.lr_scheduler.LambdaLR(optim, schedule)
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def forward(group: Sequence[Example]) -> torch.Tensor:
        enc = tokenizer(
            [text(e) for e in group],
            padding=True,
            truncation=True,
            max_length=MAX_TOKENS,
            pad_to_multiple_of=16,  # fewer distinct shapes for oneDNN to prepare kernels for
            return_tensors="pt",
        )
        out = model(**enc).last_hidden_state
        return head(mean_pool(out, enc["attention_mask"]).float()).squeeze(-1)

    model.train()
    began = time.perf_counter()
    running: list[float] = []
    for step, group in enumerate(plan):
        logits = forward(group)
        loss = loss_fn(logits, torch.tensor([float(e.label) for e in group]))
        optim.zero_grad()
        loss.backward()
        optim.step()
        lr_sched.step()
        running.append(float(loss.detach()))
        if (step + 1) % 20 == 0 or step + 1 == len(plan):
            spent = time.perf_counter() - began
            left = spent / (step + 1) * (len(plan) - step - 1)
            print(
                f"step {step + 1}/{len(plan)} loss {np.mean(running[-20:]):.4f} "
                f"{spent / 60:.1f} min, ~{left / 60:.1f} min left",
                flush=True,
            )

    model.eval()
    scores: list[float] = []
    with torch.inference_mode():
        for i in range(0, len(dev), 32):
            scores += torch.sigmoid(forward(dev[i : i + 32])).tolist()
    labels = [e.label for e in dev]
    by_kind = {
        kind: round(
            auroc(
                [s for s, e in zip(scores, dev, strict=True) if e.kind == kind or e.label == 1],
                [e.label for e in dev if e.kind == kind or e.label == 1],
            ),
            4,
        )
        for kind in sorted({e.kind for e in dev if e.label == 0})
    }
    dev_auroc = auroc(scores, labels)
    print(f"dev AUROC {dev_auroc:.4f}; per negative kind {by_kind}")

    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(args.out / "adapter"))
    save_file(
        {k: v.contiguous() for k, v in head.state_dict().items()},
        str(args.out / "head.safetensors"),
    )
    files = ["adapter/adapter_model.safetensors", "adapter/adapter_config.json", "head.safetensors"]
    manifest = {
        "backbone": settings.embed_model,
        "hidden_size": hidden,
        "lora": {"r": args.rank, "alpha": 2 * args.rank, "targets": LORA_TARGETS},
        "training": {
            "examples": len(train),
            "epochs": args.epochs,
            "batch": args.batch,
            "lr": args.lr,
            "seed": args.seed,
            "minutes": round((time.perf_counter() - began) / 60, 1),
            "kinds": dict(Counter(f"{e.kind}:{e.label}" for e in train)),
        },
        "dev": {
            "examples": len(dev),
            "auroc": round(dev_auroc, 4),
            "auroc_by_negative_kind": by_kind,
        },
        "sha256": {name: sha256_of(args.out / name) for name in files},
    }
    (args.out / "manifest.json").write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    )
    args.data_out.mkdir(parents=True, exist_ok=True)
    (args.data_out / "dev_scores.jsonl").write_text(
        "".join(
            json.dumps({"kind": e.kind, "label": e.label, "score": round(s, 5), "qid": e.qid})
            + "\n"
            for e, s in zip(dev, scores, strict=True)
        )
    )
    print(f"wrote {args.out} (adapter, head, manifest)")
    return 0
