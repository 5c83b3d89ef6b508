"""Length buckets (`Settings.pad_multiple`): the embedder and the grounding verifier pad each batch
to a multiple of N tokens, so the models see few input shapes (issue 25, docs/benchmarks.md
"Memory under load"), and the padding changes no output beyond bfloat16's rounding: padded
positions are masked out of attention and of the mean pool.

The first test needs only the tokenizer (a stand-in model that embeds token ids); the others
load the real weights (slow)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from shiori.config import Settings, default_models_dir
from shiori.embedding import Embedder
from shiori.grounding import MAX_TOKENS, Claim, GroundingVerifier

MULTIPLE = 32
# measured (bench/heap_shapes.py, docs/benchmarks.md): bucketed against longest-only padding
# differ by at most one bfloat16 step of the unit vectors / probabilities; allowed: 4 steps.
TOLERANCE = 4 * 2**-9

CLAIMS = [
    Claim(
        "LoRA はいつ発表されましたか？",
        "LoRA > 基本情報",
        "2021年に Microsoft の Hu らが発表した。",
        c,
    )
    for c in ("2021年です。", "LoRA は2021年に Microsoft の Hu らが発表しました。", "Google です。")
] + [Claim("Q?", "", "長い根拠。" * 80, "長い主張。")]  # cut at MAX_TOKENS


def settings(multiple: int) -> Settings:
    return Settings(models_dir=default_models_dir(), pad_multiple=multiple)


class TokenModel:
    """Stands in for the encoder: each token's hidden state is a fixed vector of its id, so the
    pooled state depends on the real tokens only if padding is masked out."""

    def __init__(self) -> None:
        import torch

        self.shapes: list[tuple[int, ...]] = []
        self.table = torch.nn.Embedding(300_000, 8)

    def __call__(self, input_ids: Any, attention_mask: Any, **_: Any) -> Any:
        from types import SimpleNamespace

        self.shapes.append(tuple(input_ids.shape))
        return SimpleNamespace(last_hidden_state=self.table(input_ids))


def fake_verifier(multiple: int, model: TokenModel) -> GroundingVerifier:
    import torch
    from transformers import AutoTokenizer

    from shiori.models import resolve

    s = settings(multiple)
    v = GroundingVerifier(s)
    tokenizer = AutoTokenizer.from_pretrained(resolve(s.embed_model, s.models_dir))
    torch.manual_seed(0)
    v._parts = (tokenizer, model, torch.nn.Linear(8, 1))
    return v


def test_verifier_batches_are_padded_to_the_bucket_and_pads_are_inert() -> None:
    plain, bucketed = TokenModel(), TokenModel()
    bucketed.table = plain.table
    a = fake_verifier(0, plain).score(CLAIMS[:3])
    b = fake_verifier(MULTIPLE, bucketed).score(CLAIMS[:3])
    (longest,), (padded,) = plain.shapes, bucketed.shapes
    assert longest[1] % MULTIPLE != 0, "pick claims whose longest is not already a multiple"
    assert padded == (3, -(-longest[1] // MULTIPLE) * MULTIPLE)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    fake_verifier(MULTIPLE, bucketed).score(CLAIMS[3:])
    assert bucketed.shapes[-1] == (1, MAX_TOKENS)  # 192 is itself a multiple of 32


@pytest.mark.slow
def test_embeddings_match_unbucketed(embedder: Embedder) -> None:
    # the session's embedder pads by the default setting (32 now): both made here, one model
    plain = Embedder(settings(0))
    bucketed = Embedder(settings(MULTIPLE))
    plain.model = bucketed.model = embedder.model  # the same weights, loaded once
    lengths: list[int] = []
    hook = (
        embedder.model[0]
        .model.get_input_embeddings()
        .register_forward_pre_hook(lambda _m, inputs: lengths.append(inputs[0].shape[1]))
    )
    try:
        texts = ["LoRA", "LoRA はいつ発表されましたか？", "量子化 " * 20, "Q" * 7]
        a = plain.embed_queries(texts)
        n = len(lengths)
        b = bucketed.embed_queries(texts)
    finally:
        hook.remove()
    assert any(m % MULTIPLE for m in lengths[:n])
    assert all(m % MULTIPLE == 0 for m in lengths[n:]), lengths
    assert np.abs(a - b).max() <= TOLERANCE


@pytest.mark.slow
def test_verifier_scores_match_unbucketed() -> None:
    plain = GroundingVerifier(settings(0))
    bucketed = GroundingVerifier(settings(MULTIPLE))
    bucketed._parts = plain._parts
    assert np.abs(plain.score(CLAIMS) - bucketed.score(CLAIMS)).max() <= TOLERANCE
