"""Question → grounded answer with verified citations, or an abstention with the closest sources.

retrieve → evidence gate → prompt → LLM (OpenAI-compatible, vLLM) → parse markers → drop
markers to nowhere → verify each sentence → abstain if the model refused or nothing it wrote
is supported. Every step's outcome is in the result, so callers (HTTP, CLI, evaluation) can
show or measure it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from openai import APIConnectionError, APIStatusError, APITimeoutError, AsyncOpenAI

from service.rag.abstain import (
    AbstentionPolicy,
    abstention_text,
    model_refused,
    unsupported_answer,
    weak_evidence,
)
from service.rag.markers import parse_answer, strip_invalid_markers
from service.rag.prompt import PromptStyle, build_messages, language_of
from service.rag.retrieve import Filters, Passage, Retriever
from service.rag.verify import SentenceCheck, check
from shiori.config import Settings


class LLMUnavailableError(RuntimeError):
    """The generation server did not answer (down, timing out, or refusing us)."""


@dataclass
class Answer:
    question: str
    answer: str
    abstained: bool
    reason: str  # "answered", "weak_evidence", "model_refused", "unsupported"
    passages: list[Passage]  # retrieved, in prompt order ([n] = index + 1)
    cited: list[int]  # source numbers the final answer cites
    checks: list[SentenceCheck]
    invalid_markers: list[int]
    model: str
    prompt_tokens: int = 0
    timings: dict[str, float] = field(default_factory=dict)


class Answerer:
    """Shared across requests: holds the retriever and one async LLM client."""

    def __init__(self, settings: Settings, retriever: Retriever, llm: AsyncOpenAI) -> None:
        self.settings = settings
        self.retriever = retriever
        self.llm = llm
        self.style = PromptStyle(settings.llm_prompt_style)
        self.policy = AbstentionPolicy(
            min_similarity=settings.abstain_min_similarity,
            min_term_overlap=settings.abstain_min_term_overlap,
        )

    @classmethod
    def client_for(cls, settings: Settings) -> AsyncOpenAI:
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "none"
        return AsyncOpenAI(
            base_url=settings.llm_url, api_key=key, timeout=settings.llm_timeout_s, max_retries=0
        )

    async def ask(
        self, question: str, top_k: int | None = None, filters: Filters | None = None
    ) -> Answer:
        began = time.perf_counter()
        passages = self.retriever.search(question, top_k or self.settings.top_k, filters)
        retrieved = time.perf_counter()
        language = language_of(question)
        result = Answer(
            question, "", True, "weak_evidence", passages, [], [], [], self.settings.llm_model
        )
        if weak_evidence(passages, self.policy):
            result.answer = abstention_text(language)
        else:
            messages = build_messages(question, [p.chunk for p in passages], self.style)
            try:
                completion = await self.llm.chat.completions.create(
                    model=self.settings.llm_model,
                    messages=messages,  # type: ignore[arg-type]
                    temperature=0,
                    max_tokens=self.settings.llm_max_tokens,
                )
            except (APIConnectionError, APITimeoutError) as exc:
                raise LLMUnavailableError(
                    f"LLM at {self.settings.llm_url} did not answer: {exc}"
                ) from exc
            except APIStatusError as exc:
                raise LLMUnavailableError(
                    f"LLM at {self.settings.llm_url} answered {exc.status_code}: {exc.message}"
                ) from exc
            raw = completion.choices[0].message.content or ""
            result.prompt_tokens = completion.usage.prompt_tokens if completion.usage else 0
            self._judge(result, raw, language)
        done = time.perf_counter()
        result.timings = {
            "retrieve_ms": round((retrieved - began) * 1000, 1),
            "generate_ms": round((done - retrieved) * 1000, 1),
            "total_ms": round((done - began) * 1000, 1),
        }
        return result

    def _judge(self, result: Answer, raw: str, language: str) -> None:
        n = len(result.passages)
        parsed = parse_answer(raw, n)
        result.invalid_markers = parsed.invalid_markers
        similarities = None
        if parsed.sentences and all(p.vector for p in result.passages):
            texts = [s.text for s in parsed.sentences]
            sentence_vecs = self.retriever.embedder.embed_queries(texts)
            source_vecs = np.asarray([p.vector for p in result.passages], dtype=np.float32)
            similarities = (sentence_vecs @ source_vecs.T).tolist()
        result.checks = check(
            parsed,
            [p.chunk.text for p in result.passages],
            self.settings.support_threshold,
            similarities,
            self.settings.semantic_support_threshold,
        )
        if model_refused(raw):
            result.reason, result.answer = "model_refused", abstention_text(language)
        elif unsupported_answer(result.checks, self.policy):
            result.reason, result.answer = "unsupported", abstention_text(language)
        else:
            result.abstained, result.reason = False, "answered"
            result.answer = (
                with_markers(result.checks)
                if any(c.attributed for c in result.checks)
                else strip_invalid_markers(raw, n).strip()
            )
            result.cited = sorted({m for c in result.checks for m in c.markers})


def with_markers(checks: list[SentenceCheck]) -> str:
    """Rebuild the answer from its checked sentences, each followed by its markers."""
    joiner = "" if any("\u3040" <= ch <= "\u9fff" for c in checks for ch in c.text) else " "
    return joiner.join(c.text + "".join(f"[{m}]" for m in c.markers) for c in checks)
