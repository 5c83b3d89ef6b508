"""Dense embeddings: one sentence-transformers model, loaded once and shared.

EmbeddingGemma is trained with separate prompts for queries and documents; documents are given
their title (here: note title and heading path), which the model card recommends over "none".
The same tokenizer counts chunk sizes, so a chunk's budget is in the model's own tokens.

Each batch is padded to a multiple of ``Settings.pad_multiple`` tokens (32), not just to its
longest text: a batch padded to its own longest text has a new shape almost every time, and the
process's memory grew with the distinct shapes seen (issue 25, `bench/heap_shapes.py`; what
holds it is not isolated, and it is not only oneDNN's primitive cache). The attention mask and
the mean pool ignore the padding: vectors differ by at most one bfloat16 step (2^-9) from
unbucketed ones.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np

from shiori.config import Settings
from shiori.models import resolve

QUERY_PROMPT = "task: search result | query: "
STS_PROMPT = "task: sentence similarity | query: "


def document_prompt(title: str) -> str:
    clean = " ".join(title.split()) or "none"
    return f"title: {clean} | text: "


class Embedder:
    """Wraps the sentence-transformers model. Create one per process and pass it around."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.reference = resolve(settings.embed_model, settings.models_dir)

    @cached_property
    def model(self) -> Any:
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.utils.logging.disable_progress_bar()  # our own progress output is enough
        if self.settings.threads:
            torch.set_num_threads(self.settings.threads)
        if os.path.isdir(self.reference):
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        dtype = torch.bfloat16 if self.settings.embed_dtype == "bfloat16" else torch.float32
        model = SentenceTransformer(
            self.reference,
            device="cpu",
            truncate_dim=self.settings.embed_dim,
            # Measured on this 2-core CPU: the matmul-based "eager" attention beat PyTorch's
            # SDPA kernel for this model's short sequences and 256-wide heads (~1.1x).
            model_kwargs={"torch_dtype": dtype, "attn_implementation": "eager"},
        )
        if self.settings.embed_compile:
            model = _compiled(model)
        return model

    @cached_property
    def tokenizer(self) -> Any:
        """The model's tokenizer alone (cheap to load; chunking needs no weights)."""
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.reference)

    @property
    def dimension(self) -> int:
        if self.settings.embed_dim:
            return self.settings.embed_dim
        dim = self.model.get_embedding_dimension()
        assert dim is not None
        return int(dim)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encoded = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def embed_documents(self, texts: Sequence[str], titles: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        full = [document_prompt(t) + x for t, x in zip(titles, texts, strict=True)]
        return self._encode(full)

    def embed_queries(self, queries: Sequence[str]) -> np.ndarray:
        return self._encode([QUERY_PROMPT + q for q in queries])

    def embed_for_similarity(self, texts: Sequence[str]) -> np.ndarray:
        """Symmetric vectors for comparing two statements (the model's STS prompt on both
        sides), e.g. an English answer sentence and the Japanese note sentence it restates."""
        return self._encode([STS_PROMPT + t for t in texts])

    def _encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        multiple = self.settings.pad_multiple
        vectors = self.model.encode(
            texts,
            prompt="",
            batch_size=self.settings.embed_batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
            processing_kwargs={"text": {"pad_to_multiple_of": multiple}} if multiple > 1 else None,
        )
        return np.asarray(vectors, dtype=np.float32)


def _compiled(model: Any) -> Any:
    """Compile the transformer with Inductor (weights frozen as constants, dynamic shapes).

    Measured here (400 JSQuAD paragraphs, batch 16, in one run): 2,719 tokens/s compiled against
    2,191 eager (1.24x), but compiling took 97-104 s per process, Inductor's cache not helping
    with frozen weights (without freezing: 43 s with a warm cache, but only 2,418-2,533
    tokens/s). So it pays off above ~400k tokens and stays off by default.
    If compilation is impossible here (no C compiler), the eager model is kept.
    """
    import logging

    import torch
    import torch._inductor.config as inductor

    transformer = model[0].model  # the Hugging Face model inside sentence-transformers
    eager_forward = transformer.forward
    try:
        inductor.freezing = True
        transformer.forward = torch.compile(eager_forward, dynamic=True)
        model.encode(["warm-up", "ウォームアップ"], prompt="", show_progress_bar=False)
    except Exception as exc:  # a missing compiler shows up only at the first call
        logging.getLogger(__name__).warning("torch.compile unavailable (%s); running eager", exc)
        transformer.forward = eager_forward
    return model
