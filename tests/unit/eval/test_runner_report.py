"""Golden-set loading, resumable runs, the summary and its thresholds, and the HTML report —
with a scripted backend (the real one runs in tests/integration/test_eval.py)."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import pytest

from eval import report
from eval.dataset import DatasetError, GoldenItem, load
from eval.report import THRESHOLDS
from eval.runner import evaluate, summarise

ITEMS = [
    GoldenItem(id="a", question="Gemma はいつ？", reference_answer="2024年2月21日",
               reference_sources=["notes/05-gemma.md"], answerable=True, language="ja",
               category="ja"),
    GoldenItem(id="b", question="Llama 4 の学習量は？", reference_answer=None,
               answerable=False, language="ja", category="unanswerable"),
    GoldenItem(id="c", question="What is LoRA's rank?", reference_answer="r",
               reference_sources=["notes/09-lora.md"], answerable=True, language="en",
               category="en-over-ja"),
]  # fmt: skip


def source(n: int, path: str) -> dict[str, Any]:
    return {"n": n, "source": path, "lines": [1, 2], "heading": "h <b>", "text": "t", "score": 1.0}


class Scripted:
    """Answers a: right and cited; b: invents an answer (a hallucination); c: abstains."""

    model = "scripted"

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def ask(self, question: str) -> dict[str, Any]:
        self.asked.append(question)
        gemma, lora = source(1, "notes/05-gemma.md"), source(1, "notes/09-lora.md")
        if question.startswith("Gemma"):
            sentence = {"text": "２０２４年２月２１日です。", "sources": [1], "support": 1.0,
                        "similarity": 0.9, "supported": True, "attributed": False}  # fmt: skip
            return {"answer": "２０２４年２月２１日です。[1]", "abstained": False,
                    "reason": "answered", "citations": [gemma], "contexts": [gemma],
                    "sentences": [sentence], "invalid_markers": [7]}  # fmt: skip
        if question.startswith("Llama"):
            return {"answer": "15兆トークン。[1]", "abstained": False, "reason": "answered",
                    "citations": [gemma], "contexts": [gemma], "sentences": [],
                    "invalid_markers": []}  # fmt: skip
        return {"answer": "not in your notes", "abstained": True, "reason": "weak_evidence",
                "citations": [], "contexts": [lora], "sentences": [],
                "invalid_markers": []}  # fmt: skip

    async def search(self, question: str, top_k: int) -> list[dict[str, Any]]:
        if question.startswith("Gemma"):
            return [source(1, "notes/01.md"), source(2, "notes/05-gemma.md")]
        return [source(1, "notes/09-lora.md")]


def test_a_run_scores_resumes_and_reports(tmp_path: Path) -> None:
    backend = Scripted()
    results = tmp_path / "results.jsonl"
    records = asyncio.run(evaluate(ITEMS[:2], backend, results))
    again = asyncio.run(evaluate(ITEMS, backend, results))  # resumes: only "c" is new
    assert backend.asked == [ITEMS[0].question, ITEMS[1].question, ITEMS[2].question]
    assert [r["id"] for r in again] == ["a", "b", "c"] and again[:2] == records
    assert len(results.read_text(encoding="utf-8").splitlines()) == 3

    a = again[0]["metrics"]
    assert a["exact_match"] == 0.0 and a["contains"] == 1.0  # full-width digits normalised
    assert (a["hit_at_1"], a["hit_at_3"], a["mrr_at_10"]) == (0.0, 1.0, 0.5)
    s = summarise(again, None)
    assert s["hallucination"]["answered_when_unanswerable"] == 1
    assert s["hallucination"]["rate"] == pytest.approx(1 / 3)
    assert s["abstention"]["recall_unanswerable"] == 0.0
    assert s["citations"]["marker_validity"] == pytest.approx(0.5)  # [1] valid, [7] not
    assert s["answers"]["contains"] == pytest.approx(0.5)  # c abstained: counts as a miss
    assert s["by_category"]["unanswerable"]["abstained"] == 0.0

    thresholds = tmp_path / "t.toml"
    thresholds.write_text('[max]\n"hallucination.rate" = 0.05\n[min]\n"retrieval.hit_at_5" = '
                          '0.9\n"judge.faithfulness.mean" = 0.5\n', encoding="utf-8")  # fmt: skip
    failures = report.check(s, report.load_thresholds(thresholds))
    assert any("hallucination.rate" in f for f in failures)
    assert any("not measured" in f and "faithfulness" in f for f in failures)
    assert not any("hit_at_5" in f for f in failures)  # 1.0 ≥ 0.9

    # every key of the bundled gate names a metric the summary has (a renamed one would be
    # "not measured" and fail CI for the wrong reason)
    bundled = report.check(s, report.load_thresholds(THRESHOLDS))
    assert not [f for f in bundled if "not measured" in f], bundled

    report.write(tmp_path / "out", s, again, failures)
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "<svg" in page and "h &lt;b&gt;" in page and "15兆トークン" in page
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["threshold_failures"] == failures


def test_compare_names_what_moved() -> None:
    a = {"hallucination": {"rate": 0.10}, "retrieval": {"hit_at_5": 0.9}}
    b = {"hallucination": {"rate": 0.05}, "retrieval": {"hit_at_5": 0.8}}
    verdicts = {label: v for label, _, _, v in report.compare(a, b)}
    assert verdicts["hallucination rate"] == "better" and verdicts["retrieval hit@5"] == "worse"
    assert math.isnan(report.lookup(a, "judge.faithfulness.mean"))


def test_a_bad_golden_set_is_refused_with_line_numbers(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    good = json.dumps(ITEMS[0].model_dump(), ensure_ascii=False)
    wrong = {"id": "x", "question": "q", "reference_answer": "y", "answerable": False,
             "language": "ja"}  # fmt: skip
    bad.write_text("\n".join([good, "{oops", good, json.dumps(wrong)]), encoding="utf-8")
    with pytest.raises(DatasetError) as caught:
        load(bad)
    message = str(caught.value)
    assert "line 2: not JSON" in message and "line 3: duplicate id 'a'" in message
    assert "line 4" in message and "reference_answer null" in message


def test_the_bundled_golden_set_is_valid_and_balanced() -> None:
    items = load(Path(__file__).resolve().parents[3] / "eval" / "datasets" / "notes.jsonl")
    assert len(items) >= 60
    assert sum(not i.answerable for i in items) >= len(items) / 4
    categories = {i.category for i in items}
    assert {"ja", "en", "en-over-ja", "multi-note", "paraphrase", "unanswerable"} <= categories
    notes = Path(__file__).resolve().parents[3]
    assert all((notes / s).is_file() for i in items for s in i.reference_sources)


def test_a_retrieval_only_run_reports_retrieval_and_nothing_else(tmp_path: Path) -> None:
    records = asyncio.run(evaluate(ITEMS, Scripted(), tmp_path / "r.jsonl", answers=False))
    s = summarise(records, None)
    assert s["questions"] == 3 and s["answered_questions"] == 0
    assert s["retrieval"]["hit_at_5"] == 1.0 and math.isnan(s["answers"]["f1"])
    report.write(tmp_path / "out", s, records, [])  # renders without answers
    assert "Worst answers" in (tmp_path / "out" / "report.html").read_text(encoding="utf-8")


def test_golden_items_take_answer_checks_and_the_grounding_case_format(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text(
        '{"id":"g1","kind":"relation","question":"GloVeは何にもとづく？","answerable":true,'
        '"must_contain":["共起"],"must_not_contain":["CBOW"]}\n'
        '{"id":"g2","question":"What is the size?","answerable":false,'
        '"must_not_contain":["300"]}\n',
        encoding="utf-8",
    )
    g1, g2 = load(path)
    assert (g1.category, g1.language, g1.reference_answer) == ("relation", "ja", None)
    assert g1.must_contain == ["共起"] and g2.language == "en"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"id":"x","question":"q","answerable":true}\n'
        '{"id":"y","question":"q","answerable":true,"must_contain":[""]}\n'
        '{"id":"z","question":"q","answerable":false,"must_contain_any":["a"]}\n'
        '{"id":"w","question":"q","answerable":true,"must_contain":[[]]}\n',
        encoding="utf-8",
    )
    with pytest.raises(DatasetError) as caught:
        load(bad)
    message = str(caught.value)
    for line in ("line 1:", "line 2:", "line 3:", "line 4:"):
        assert line in message, message


class Neighbour:
    """The grounding failure: answers every question with the neighbour's figure, citing it.
    Signals and drafts as the answer engine records them."""

    model = "scripted"

    def __init__(self, withdraw: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.withdraw = withdraw

    async def ask(self, question: str) -> dict[str, Any]:
        src = source(1, "notes/embeddings.md")
        text = "2016年です。[1]" if "fastText" in question else "300 です。[1]"
        confidence = 0.9 if "fastText" in question else 0.4
        withdrawn = question in self.withdraw
        return {"answer": "not in your notes" if withdrawn else text, "abstained": withdrawn,
                "reason": "unsupported" if withdrawn else "answered", "citations": [src],
                "contexts": [src], "sentences": [], "invalid_markers": [], "draft": text,
                "signals": {"support_min": confidence, "missing_terms": 0.0}}  # fmt: skip

    async def search(self, question: str, top_k: int) -> list[dict[str, Any]]:
        return [source(1, "notes/embeddings.md")]


GROUNDING = [
    GoldenItem(id="g3", question="fastTextが公開されたのは何年ですか？", answerable=True,
               must_contain=["2016"], reference_sources=["notes/embeddings.md"]),
    GoldenItem(id="g1", question="GloVeは何にもとづく手法ですか？", answerable=True,
               must_contain=["共起"], must_not_contain=["300"]),
    GoldenItem(id="g2", question="GloVeの次元数は？", answerable=False,
               must_not_contain=["300"]),
]  # fmt: skip


def test_a_wrong_answer_with_a_citation_counts_as_a_hallucination(tmp_path: Path) -> None:
    records = asyncio.run(evaluate(GROUNDING, Neighbour(), tmp_path / "r.jsonl"))
    outcomes = [r["metrics"]["outcome"] for r in records]
    assert outcomes == ["correct", "wrong", "answered_unanswerable"]
    assert records[1]["metrics"]["check"] == {"missing": ["共起"], "forbidden": ["300"]}
    s = summarise(records, None)
    assert s["hallucination"]["wrong_answers"] == 1
    assert s["hallucination"]["rate"] == pytest.approx(2 / 3)
    assert s["selective"]["coverage"] == 1.0
    assert s["selective"]["selective_accuracy"] == pytest.approx(1 / 3)
    # the curve comes from the saved signals: the sure answer (0.9) is the right one
    curve = s["risk_coverage"]["curves"]["support_min"]
    assert [(round(c, 3), round(r, 3)) for c, r, _ in curve["points"]] == [
        (0.333, 0.0), (0.667, 0.5), (1.0, 0.667)
    ]  # fmt: skip
    assert s["risk_coverage"]["operating_point"] == {"coverage": 1.0, "risk": pytest.approx(2 / 3)}
    report.write(tmp_path / "out", s, records, [])
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "Risk–coverage" in page and "<polyline" in page and "missing 共起" in page
    assert "wrong (answerable, answered wrongly)" in page


def test_withdrawn_answers_stay_on_the_curve_and_resumed_runs_are_rescored(
    tmp_path: Path,
) -> None:
    results = tmp_path / "r.jsonl"
    backend = Neighbour(withdraw={GROUNDING[1].question, GROUNDING[2].question})
    records = asyncio.run(evaluate(GROUNDING, backend, results))
    s = summarise(records, None)
    assert s["hallucination"]["rate"] == 0.0 and s["selective"]["coverage"] == 0.5
    # withdrawn drafts are still candidates: a looser threshold would have shown them
    assert s["risk_coverage"]["candidates"] == 3
    # the golden set's checks change; resuming scores the stored answers again, asking nothing
    changed = [GROUNDING[0].model_copy(update={"must_contain": ["2017"]}), *GROUNDING[1:]]
    again = asyncio.run(evaluate(changed, Neighbour(), results))
    assert again[0]["metrics"]["outcome"] == "wrong"
    assert len(results.read_text(encoding="utf-8").splitlines()) == 3
