"""The bundled golden set through the real model, gated by eval/thresholds.toml (what CI runs),
with ragas on a small fixed subset as a smoke run (the CPU model is its own judge)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from eval import report
from eval.dataset import BUNDLED, load
from eval.judge import METRICS, Judge
from eval.report import THRESHOLDS
from eval.runner import LocalBackend, evaluate, summarise
from service.components import Components
from shiori.config import Settings
from shiori.embedding import Embedder
from shiori.index import NoteIndex
from tests.integration.conftest import LLM_KEY

pytestmark = pytest.mark.slow
JUDGED = 3  # ~9 judge calls each on this CPU: a smoke run, not a measurement


def test_bundled_golden_set_meets_the_thresholds(
    llm_settings: Settings, notes_index: NoteIndex, embedder: Embedder, tmp_path: Path
) -> None:
    store = notes_index.settings
    settings = Settings(qdrant=store.qdrant, collection=store.collection,
                        llm_url=llm_settings.llm_url, llm_api_key=LLM_KEY)  # fmt: skip
    parts = Components.assemble(settings, embedder, notes_index)
    items = load(BUNDLED)
    judged = {i.id for i in [i for i in items if i.answerable][:JUDGED]}

    async def go() -> list[dict[str, object]]:
        judge = Judge(settings.llm_url, settings.llm_model, LLM_KEY, embedder, 300)
        try:
            return await evaluate(
                items, LocalBackend(parts), tmp_path / "results.jsonl", judge, judged
            )
        finally:
            await judge.aclose()
            await parts.llm.close()

    records = asyncio.run(go())
    summary = summarise(records, "smoke")
    failures = report.check(summary, report.load_thresholds(THRESHOLDS))
    report.write(Path("reports") / "ci-notes", summary, records, failures)  # kept for a look
    assert len(records) == len(items)
    assert not failures, "\n".join(failures) + "\n" + json.dumps(summary, default=str)[:3000]
    # the judge ran on the subset: every metric was scored, counted as a failure, or skipped
    # as not applicable (an abstained answer has no faithfulness to judge) — never lost
    assert summary["judge"]["questions"] == JUDGED
    for name in METRICS:
        entry = summary["judge"][name]
        assert entry["scored"] + entry["parse_failures"] + entry["skipped"] == JUDGED, (name, entry)
    assert summary["judge"]["context_precision"]["scored"] >= 1  # the judge works at all
