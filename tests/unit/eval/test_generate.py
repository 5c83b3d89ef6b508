"""eval.generate: study items become answerable golden items that load back and pass their own
checks on the evidence sentence."""

from __future__ import annotations

from pathlib import Path

from eval.dataset import load, save
from eval.generate import golden_items
from eval.metrics import check_answer, fold
from study.extract import candidates
from study.items import StudyItem
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


def test_a_long_answer_is_checked_by_its_specific_content_not_word_for_word() -> None:
    answer = (
        "PPO で方策、参照モデル、報酬モデル、価値関数の4つを同時に扱うので実装も調整も難しいこと"
    )
    item = StudyItem.make(
        question="RLHF の不安定さとは何ですか？",
        answer=answer,
        evidence=f"- RLHF の不安定さとは、{answer}である。",
        source="notes/11-rlhf.md",
        heading=("RLHF", "不安定さ"),
        lines=(30, 30),
        page=None,
        language="ja",
        kind="definition",
    )
    golden = golden_items([item])[0]
    assert golden.reference_answer == answer
    assert answer not in golden.must_contain  # not the whole sentence, word for word
    flat = [f for e in golden.must_contain for f in ([e] if isinstance(e, str) else e)]
    assert "PPO" in flat and all(fold(f) in fold(answer) for f in flat)
    assert check_answer(item.evidence, golden.must_contain).passed
    reworded = "PPO を使い、4つのモデル（方策・参照・報酬・価値関数）を一度に動かすため難しい。"
    assert check_answer(reworded, golden.must_contain).passed
