"""Ask every golden question, score what comes back, and keep each result as it is made.

Results are appended to ``results.jsonl`` one question at a time, so an interrupted run resumes
where it stopped (questions already there are not asked again). The answers come from a
`Backend`: Shiori in this process (the real retriever, model and LLM) or a running service
over HTTP — the same JSON either way, the body of `/v1/ask`.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from eval import metrics as m
from eval.dataset import GoldenItem
from eval.judge import Judge

if TYPE_CHECKING:
    from runtime.parts import Runtime

RETRIEVAL_K = 10
# what a retrieval-only run records in place of an answer (it is left out of answer metrics)
RETRIEVAL_ONLY: dict[str, Any] = {
    "answer": None,
    "abstained": False,
    "reason": "not asked",
    "citations": [],
    "contexts": [],
}
UNFAITHFUL_BELOW = 0.5  # a judged faithfulness under this makes an answer unfaithful


class Backend(Protocol):
    model: str

    async def ask(self, question: str) -> dict[str, Any]: ...

    async def search(self, question: str, top_k: int) -> list[dict[str, Any]]: ...


class LocalBackend:
    """Shiori in this process, on a `runtime.parts.Runtime` (store opened, models loaded)."""

    def __init__(self, parts: Runtime) -> None:
        self.parts = parts
        self.model = parts.settings.llm_model

    async def ask(self, question: str) -> dict[str, Any]:
        answer = await self.parts.answerer.ask(question)
        return answer.to_json()

    async def search(self, question: str, top_k: int) -> list[dict[str, Any]]:
        import anyio

        from rag.answer import source_json

        found = await anyio.to_thread.run_sync(self.parts.retriever.search, question, top_k)
        return [source_json(n, p) for n, p in enumerate(found, 1)]


class HttpBackend:
    """A running Shiori service."""

    def __init__(self, url: str, api_key: str | None, timeout_s: float = 600) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout_s)
        self.model = "?"

    async def ask(self, question: str) -> dict[str, Any]:
        r = await self.http.post("/v1/ask", json={"question": question})
        r.raise_for_status()
        body: dict[str, Any] = r.json()
        self.model = body["model"]
        return body

    async def search(self, question: str, top_k: int) -> list[dict[str, Any]]:
        r = await self.http.post("/v1/search", json={"question": question, "top_k": top_k})
        r.raise_for_status()
        results: list[dict[str, Any]] = r.json()["results"]
        return results


CONTEXT_KEYS = ("n", "source", "title", "lines", "heading", "text", "score", "similarity")


def record_of(
    item: GoldenItem, body: dict[str, Any], retrieved: list[str], model: str
) -> dict[str, Any]:
    """One question's stored result: the golden item, the answer body (the JSON of
    `rag.answer.Answer.to_json`, or `/v1/ask`'s), and what retrieval ranked."""
    return {
        **item.model_dump(),
        "answer": body["answer"],
        "abstained": body["abstained"],
        "reason": body["reason"],
        "citations": [
            {k: c[k] for k in ("n", "source", "lines", "heading")} for c in body["citations"]
        ],
        "contexts": [{k: c.get(k) for k in CONTEXT_KEYS} for c in body["contexts"]],
        "subject": body.get("subject"),
        "retrieved": retrieved,
        "sentences": body.get("sentences", []),
        "unsupported": body.get("unsupported", []),
        "invalid_markers": body.get("invalid_markers", []),
        "model": body.get("model", model),
        "usage": body.get("usage", {}),
        "timings": body.get("timings", {}),
        "draft": body.get("draft"),
        "signals": body.get("signals", {}),
        "judge": None,
    }


def read_results(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by an interruption: that question is redone
    return records


def answer_check(item: GoldenItem, text: str) -> m.AnswerCheck:
    """The item's deterministic checks on an answer text; items without positive checks fall
    back to "contains the reference answer" (and still honour ``must_not_contain``)."""
    if item.has_positive_checks:
        return m.check_answer(text, item.must_contain, item.must_contain_any, item.must_not_contain)
    base = m.check_answer(text, (), (), item.must_not_contain)
    if item.reference_answer and not m.contains_reference(text, item.reference_answer):
        return m.AnswerCheck(False, (item.reference_answer, *base.missing), base.forbidden)
    return base


def score_item(item: GoldenItem, record: dict[str, Any]) -> dict[str, Any]:
    """Every deterministic metric of one asked question (``record``: the stored answer body
    with ``retrieved``). Pure: rerun on stored records when a golden set's checks change."""
    sentences = record.get("sentences", [])
    retrieved = record.get("retrieved", [])
    scores: dict[str, Any] = {
        "markers": sum(len(s["sources"]) for s in sentences if not s["attributed"])
        + len(record.get("invalid_markers", [])),
        "valid_markers": sum(len(s["sources"]) for s in sentences if not s["attributed"]),
        "cited_sentences": sum(1 for s in sentences if s["sources"]),
        "supported_cited_sentences": sum(1 for s in sentences if s["sources"] and s["supported"]),
    }
    if record.get("answer") is None:  # retrieval only
        if item.answerable:
            scores.update(_retrieval(item, retrieved))
        return scores
    answered = not record["abstained"]
    draft = record.get("draft")
    if draft is not None and record.get("reason") != "model_refused":
        # the answer the model gave before any check withdrew it: what a looser threshold
        # would have shown the user (the risk–coverage curves read this)
        scores["draft_error"] = not item.answerable or not answer_check(item, draft).passed
    if item.answerable:
        answer = record["answer"] if answered else ""
        verdict = answer_check(item, answer)
        scores.update(_retrieval(item, retrieved))
        contexts = {c["source"] for c in record.get("contexts", [])}
        scores["context_hit"] = float(bool(set(item.reference_sources) & contexts))
        if answered:
            scores["correct"] = verdict.passed
            scores["check"] = {
                "missing": list(verdict.missing),
                "forbidden": list(verdict.forbidden),
            }
        if item.reference_answer:
            ref = item.reference_answer
            scores.update(
                exact_match=m.exact_match(answer, ref),
                f1=m.token_f1(answer, ref),
                contains=m.contains_reference(answer, ref),
            )
    scores["outcome"] = m.ItemOutcome(
        item.answerable, not answered, correct=scores.get("correct")
    ).outcome.value
    return scores


def _retrieval(item: GoldenItem, retrieved: Sequence[str]) -> dict[str, float]:
    relevant = set(item.reference_sources)
    if not relevant:
        return {}
    return {
        "hit_at_1": m.hit_rate_at(retrieved, relevant, 1),
        "hit_at_3": m.hit_rate_at(retrieved, relevant, 3),
        "hit_at_5": m.hit_rate_at(retrieved, relevant, 5),
        "recall_at_5": m.recall_at(retrieved, relevant, 5),
        "mrr_at_10": m.mrr_at(retrieved, relevant, 10),
        "ndcg_at_10": m.ndcg_at(retrieved, relevant, 10),
    }


async def evaluate(
    items: Sequence[GoldenItem],
    backend: Backend,
    results_path: Path,
    judge: Judge | None = None,
    judge_ids: set[str] | None = None,
    progress: Callable[[GoldenItem, dict[str, Any] | None], None] = lambda item, rec: None,
    answers: bool = True,
) -> list[dict[str, Any]]:
    """Results for ``items`` in order, asking only what ``results_path`` does not hold yet.
    ``judge_ids`` limits the (slow) judge to those questions; None = all. ``answers=False``
    measures retrieval only (no LLM)."""
    results_path.parent.mkdir(parents=True, exist_ok=True)
    done = {r["id"]: r for r in read_results(results_path)}
    records = []
    with results_path.open("a", encoding="utf-8") as out:
        for item in items:
            wants_judge = judge is not None and (judge_ids is None or item.id in judge_ids)
            old = done.get(item.id)
            if old is not None and (old.get("judge") is not None or not wants_judge):
                # scored again: the golden set's checks may have changed since it was asked
                records.append({**old, **item.model_dump(), "metrics": score_item(item, old)})
                progress(item, None)
                continue
            body = await backend.ask(item.question) if answers else RETRIEVAL_ONLY
            retrieved = [r["source"] for r in await backend.search(item.question, RETRIEVAL_K)]
            record = record_of(item, body, retrieved, backend.model)
            record["metrics"] = score_item(item, record)
            if wants_judge and judge is not None:
                scored = await judge.score(
                    item.question,
                    body["answer"],
                    [c["text"] for c in body["contexts"]],
                    item.reference_answer,
                    body["abstained"],
                )
                record["judge"] = {**scored.to_dict(), "model": judge.model}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
            records.append(record)
            progress(item, record)
    return records


def summarise(records: Sequence[dict[str, Any]], judge_label: str | None) -> dict[str, Any]:
    """The run in numbers: retrieval, answers, abstention, hallucination (with its parts),
    citations, judge scores (with their failures), latency, and breakdowns."""
    everything = len(records)
    retrieval_rows = [r for r in records if r["answerable"]]
    records = [r for r in records if r["answer"] is not None]  # retrieval-only rows: no answer
    answerable = [r for r in records if r["answerable"]]

    def avg(rows: Sequence[dict[str, Any]], key: str) -> float:
        return m.mean(r["metrics"][key] for r in rows if key in r["metrics"])

    def judge_of(r: dict[str, Any], name: str) -> float | None:
        j = r.get("judge") or {}
        value = (j.get("scores") or {}).get(name)
        return None if value is None else float(value)

    def outcome_of(r: dict[str, Any]) -> m.ItemOutcome:
        faith = judge_of(r, "faithfulness")
        unfaithful = None if faith is None else faith < UNFAITHFUL_BELOW
        return m.ItemOutcome(
            r["answerable"], r["abstained"], unfaithful, r["metrics"].get("correct")
        )

    outcomes = [outcome_of(r) for r in records]
    judged = [r for r in records if r.get("judge") is not None]
    judge_summary: dict[str, Any] = {"label": judge_label, "questions": len(judged)}
    for name in ("faithfulness", "answer_relevancy", "context_precision", "context_recall"):
        values = [v for r in judged if (v := judge_of(r, name)) is not None]
        errors = [r["id"] for r in judged if name in (r["judge"].get("errors") or {})]
        skipped = sum(name in (r["judge"].get("skipped") or {}) for r in judged)
        judge_summary[name] = {
            "mean": m.mean(values),
            "scored": len(values),
            "parse_failures": len(errors),
            "skipped": skipped,  # not applicable: an abstention, or no reference answer
            "failed_ids": errors,
        }
    totals = [r["timings"].get("total_ms", 0.0) for r in records if r.get("timings")]

    def breakdown(key: str) -> dict[str, Any]:
        groups: dict[str, list[dict[str, Any]]] = {}
        for r in records:
            groups.setdefault(str(r.get(key) or "-"), []).append(r)
        out = {}
        for name, rows in sorted(groups.items()):
            group = [outcome_of(r) for r in rows]
            selective = m.selective_scores(group)
            out[name] = {
                "n": len(rows),
                "abstained": sum(r["abstained"] for r in rows) / len(rows),
                "hallucination": m.hallucination(group)["rate"],
                "coverage": selective["coverage"],
                "selective_accuracy": selective["selective_accuracy"],
                "outcomes": selective["counts"],
                "f1": avg(rows, "f1"),
                "contains": avg(rows, "contains"),
                "hit_at_5": avg(rows, "hit_at_5"),
            }
        return out

    return {
        "questions": everything,
        "answered_questions": len(records),
        "answerable": len(retrieval_rows),
        "models": sorted({r.get("model", "?") for r in records}),
        "retrieval": {
            k: avg(retrieval_rows, k)
            for k in (
                "hit_at_1",
                "hit_at_3",
                "hit_at_5",
                "recall_at_5",
                "mrr_at_10",
                "ndcg_at_10",
            )
        },
        "answers": {
            k: avg(answerable, k) for k in ("exact_match", "f1", "contains", "context_hit")
        },
        "abstention": m.abstention_scores(
            [r["abstained"] for r in records], [r["answerable"] for r in records]
        ),
        "hallucination": m.hallucination(outcomes),
        "selective": m.selective_scores(outcomes),
        "risk_coverage": risk_coverage(records),
        "citations": citations(records),
        "judge": judge_summary,
        "latency_ms": {
            "p50": statistics.median(totals) if totals else float("nan"),
            "p95": sorted(totals)[round(0.95 * (len(totals) - 1))] if totals else float("nan"),
        },
        "by_category": breakdown("category"),
        "by_language": breakdown("language"),
    }


# signals where a lower value means more confidence in the answer
LOWER_IS_SURER = frozenset({"missing_terms", "content_missing", "subject_names_missing"})


def risk_coverage(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Risk–coverage of every decision signal the answers recorded, plus where the run sits.

    The candidates are the items for which the model produced an answer (shown to the user or
    withdrawn by a check); answering those whose signal is at least t gives one point of the
    curve per t (`eval.metrics.risk_coverage`: coverage over all items, risk = wrong or
    unanswerable among the answered). ``operating_point`` is the run as it was: coverage and
    risk of the answers actually shown."""
    n = len(records)
    candidates = [r for r in records if "draft_error" in r["metrics"]]
    names = sorted({k for r in candidates for k in r.get("signals", {})})
    curves = {}
    for name in names:
        sign = -1.0 if name in LOWER_IS_SURER else 1.0
        values = [sign * float(r.get("signals", {}).get(name, 0.0)) for r in candidates]
        errors = [bool(r["metrics"]["draft_error"]) for r in candidates]
        curves[name] = m.risk_coverage(values, errors, n)
        # how well the signal tells right drafts from wrong ones, whatever the threshold
        curves[name]["auroc"] = m.auroc(values, [not e for e in errors])
    shown = [r for r in records if not r["abstained"]]
    wrong = sum(1 for r in shown if r["metrics"].get("outcome") != m.Outcome.CORRECT.value)
    return {
        "candidates": len(candidates),
        "curves": curves,
        "operating_point": {
            "coverage": len(shown) / n if n else float("nan"),
            "risk": wrong / len(shown) if shown else float("nan"),
        },
    }


def citations(records: Sequence[dict[str, Any]]) -> dict[str, float | int]:
    """Markers that point at a retrieved source, and cited sentences their source supports."""
    markers = sum(r["metrics"]["markers"] for r in records)
    valid = sum(r["metrics"]["valid_markers"] for r in records)
    cited = sum(r["metrics"]["cited_sentences"] for r in records)
    supported = sum(r["metrics"]["supported_cited_sentences"] for r in records)
    nan = float("nan")
    return {
        "marker_validity": valid / markers if markers else nan,
        "cited_sentence_support": supported / cited if cited else nan,
        "n_markers": markers,
        "n_cited_sentences": cited,
    }
