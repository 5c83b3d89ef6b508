"""eval.generate: study items become answerable golden items that load back and pass their own
checks on the evidence sentence."""

from __future__ import annotations

from pathlib import Path

from eval.dataset import load, save
from eval.generate import golden_items
from eval.metrics import check_answer
from study.extract import candidates
from tests.unit.study.notes import note
from tests.unit.study.test_extract import EN, JA


def test_generated_items_round_trip_through_the_golden_set_format(tmp_path: Path) -> None:
    study = candidates([*note(tmp_path, "ja.md", JA), *note(tmp_path, "en.md", EN)])
    items = golden_items(study)
    save(items, tmp_path / "gen.jsonl")
    loaded = load(tmp_path / "gen.jsonl")
    assert loaded == items and len(loaded) == len(study)
    for golden, item in zip(loaded, study, strict=True):
        assert golden.id == f"gen-{item.id}" and golden.answerable
        assert golden.reference_sources == [item.source]
        assert golden.language == item.language and golden.category == f"generated-{item.kind}"
        assert check_answer(item.evidence, golden.must_contain).passed  # the evidence passes
    assert [g.id for g in golden_items(study)] == [g.id for g in items]  # stable
