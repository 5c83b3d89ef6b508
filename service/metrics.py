"""Prometheus metrics: one registry per app (so tests can run several apps in one process)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160)


class Metrics:
    @contextmanager
    def counting_llm_errors(self) -> Iterator[None]:
        """Count an `LLMUnavailableError` raised in the block in ``llm_errors`` (it propagates)."""
        from rag.answer import LLMUnavailableError

        try:
            yield
        except LLMUnavailableError:
            self.llm_errors.inc()
            raise

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "shiori_requests",
            "HTTP requests by route and status code",
            ["route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "shiori_request_seconds",
            "HTTP request latency by route",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.stage_seconds = Histogram(
            "shiori_stage_seconds",
            "Time per answering stage: rewrite (a follow-up), retrieve, generate, verify, "
            "first_token",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "shiori_llm_tokens", "LLM tokens by kind", ["kind"], registry=self.registry
        )
        self.answers = Counter(
            "shiori_answers",
            "Answers by outcome: answered, weak_evidence, missing_term, model_refused, unsupported",
            ["outcome"],
            registry=self.registry,
        )
        self.rewrites = Counter(
            "shiori_rewrites",
            "Messages sent with a conversation, by what became of them: standalone (the model "
            "was not asked), rewritten, unchanged, by_rule, failed",
            ["status"],
            registry=self.registry,
        )
        self.llm_errors = Counter(
            "shiori_llm_errors", "Requests the LLM did not answer", registry=self.registry
        )

    def observe_answer(
        self, reason: str, timings: dict[str, float], prompt_tokens: int, completion_tokens: int
    ) -> None:
        self.answers.labels(reason).inc()
        for stage in ("rewrite", "retrieve", "generate", "verify", "first_token"):
            if f"{stage}_ms" in timings:
                self.stage_seconds.labels(stage).observe(timings[f"{stage}_ms"] / 1000)
        self.tokens.labels("prompt").inc(prompt_tokens)
        self.tokens.labels("completion").inc(completion_tokens)

    def render(self) -> bytes:
        return generate_latest(self.registry)
