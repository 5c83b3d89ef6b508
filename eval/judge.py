"""ragas (0.4, `ragas.metrics.collections`) as an LLM judge behind an OpenAI-compatible URL.

Offline traps of ragas 0.4.3 handled here: analytics off before ragas is imported (only the
string "true" works); both the judge LLM and embeddings are always passed (else ragas quietly
builds an OpenAI client); an async client; JSON-schema constrained output (instructor's
JSON_SCHEMA mode sends `response_format: json_schema`, which vLLM enforces while decoding).
A metric that fails (unparseable judge output, timeout) is recorded as an error with its
message — never as a score.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

import anyio

from shiori.embedding import Embedder

METRICS = ("faithfulness", "answer_relevancy", "context_precision", "context_recall")
SMOKE_BELOW_B = 3.0  # a judge below this many billion parameters gives a smoke run


def judge_label(model: str) -> str:
    """'smoke run (1.5B judge)' for a small judge, else 'judge: <model>'."""
    sizes = [float(x) for x in re.findall(r"(\d+(?:\.\d+)?)\s*b\b", model.lower())]
    if sizes and min(sizes) < SMOKE_BELOW_B:
        return f"smoke run: {model} ({min(sizes):g}B) is too small a judge to measure with"
    if not sizes:
        return f"judge {model} (size unknown: treat as a smoke run unless known to be large)"
    return f"judge {model}"


@dataclass
class JudgeScores:
    scores: dict[str, float | None] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"scores": self.scores, "errors": self.errors, "skipped": self.skipped}


class Judge:
    """Holds the judge client and the four metrics; scores one answered question at a time."""

    def __init__(
        self, url: str, model: str, api_key: str | None, embedder: Embedder, timeout_s: float
    ) -> None:
        os.environ["RAGAS_DO_NOT_TRACK"] = "true"  # before the first ragas import
        import instructor
        from openai import AsyncOpenAI
        from ragas.embeddings.base import BaseRagasEmbedding
        from ragas.llms.base import InstructorLLM
        from ragas.metrics.collections import (
            AnswerRelevancy,
            ContextPrecision,
            ContextRecall,
            Faithfulness,
        )

        class LocalEmbeddings(BaseRagasEmbedding):
            """Shiori's own embedding model, so that nothing reaches for a hub or OpenAI."""

            def embed_text(self, text: str, **_: Any) -> list[float]:
                return [float(x) for x in embedder.embed_queries([text])[0]]

            async def aembed_text(self, text: str, **_: Any) -> list[float]:
                return await anyio.to_thread.run_sync(self.embed_text, text)

        self.model = model
        self.label = judge_label(model)
        self.client = AsyncOpenAI(
            base_url=url, api_key=api_key or "none", timeout=timeout_s, max_retries=0
        )
        patched = instructor.from_openai(self.client, mode=instructor.Mode.JSON_SCHEMA)
        llm = InstructorLLM(client=patched, model=model, provider="openai", temperature=0.0)
        embeddings = LocalEmbeddings()
        self.metrics = {
            "faithfulness": Faithfulness(llm=llm),
            "answer_relevancy": AnswerRelevancy(llm=llm, embeddings=embeddings),
            "context_precision": ContextPrecision(llm=llm),
            "context_recall": ContextRecall(llm=llm),
        }

    async def score(
        self,
        question: str,
        answer: str,
        contexts: list[str],
        reference: str | None,
        abstained: bool,
    ) -> JudgeScores:
        result = JudgeScores()
        calls: dict[str, dict[str, Any]] = {}
        if abstained:
            result.skipped["faithfulness"] = result.skipped["answer_relevancy"] = "abstained"
        else:
            calls["faithfulness"] = {
                "user_input": question,
                "response": answer,
                "retrieved_contexts": contexts,
            }
            calls["answer_relevancy"] = {"user_input": question, "response": answer}
        if reference and contexts:
            calls["context_precision"] = {
                "user_input": question,
                "reference": reference,
                "retrieved_contexts": contexts,
            }
            calls["context_recall"] = {
                "user_input": question,
                "reference": reference,
                "retrieved_contexts": contexts,
            }
        else:
            why = "no reference answer" if not reference else "no contexts"
            result.skipped["context_precision"] = result.skipped["context_recall"] = why
        for name, kwargs in calls.items():
            try:
                value = (await self.metrics[name].ascore(**kwargs)).value
                result.scores[name] = None if value is None else float(value)
                if value is None or value != value:  # None or NaN: the judge gave nothing usable
                    result.errors[name] = "judge returned no score"
                    result.scores[name] = None
            except Exception as exc:  # parse failures, timeouts: counted, never a score
                result.scores[name] = None
                result.errors[name] = f"{type(exc).__name__}: {str(exc)[:300]}"
        return result

    async def aclose(self) -> None:
        await self.client.close()
