"""The JSQuAD near-miss set and distractors on a small SQuAD-format file, and replaying a stored
run with today's checks (no model: the verifier's similarity is left out)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.dataset import GoldenItem
from eval.jsquad import NotEnoughQuestionsError, build_near_miss, write_distractors
from eval.metrics import fold
from eval.replay import replay
from eval.runner import record_of, score_item
from rag.abstain import AbstentionPolicy
from rag.verdict import Verifier
from rag.verify import Thresholds


def squad(tmp_path: Path, articles: int = 3, paragraphs: int = 6) -> Path:
    """Articles of paragraphs whose answers occur nowhere else (one shared answer on purpose:
    'Tokyo' is in two paragraphs of article 0)."""
    data = []
    for a in range(articles):
        paras = []
        for p in range(paragraphs):
            answer = "Tokyo" if a == 0 and p in (0, 1) else f"A{a}x{p}"
            paras.append({
                "context": f"Article {a} [SEP] Paragraph {p} of article {a} says {answer}.",
                "qas": [{"id": f"q{a}-{p}", "question": f"What does paragraph {p} of {a} say?",
                         "answers": [{"text": answer, "answer_start": 0}],
                         "is_impossible": False}],
            })  # fmt: skip
        data.append({"title": f"Article {a}", "paragraphs": paras})
    path = tmp_path / "mini.json"
    path.write_text(json.dumps({"data": data}), encoding="utf-8")
    return path


def test_near_miss_leaves_out_the_answering_paragraph_of_half_the_questions(
    tmp_path: Path,
) -> None:
    source = squad(tmp_path)
    corpus, items, counts = build_near_miss(source, tmp_path / "cache", 3, 8, seed=1)
    notes = {p.name: p.read_text(encoding="utf-8") for p in corpus.glob("*.md")}
    assert counts["unanswerable"] == counts["answerable"] == 4
    assert counts["notes"] == 18 - 4 and len(notes) == counts["notes"]
    assert all(text.startswith("# Article ") for text in notes.values())  # title as heading
    corpus_text = fold(" ".join(notes.values()))
    for item in items:
        if item.answerable:  # its paragraph is a note, and the check is its gold answer
            assert item.must_contain_any and fold(item.must_contain_any[0]) in corpus_text
            assert Path(item.reference_sources[0]).name in notes
        else:  # nothing left in the notes holds its answer
            gold = item.id.replace("q", "A").replace("-", "x")
            assert fold(gold) not in corpus_text
    # 'Tokyo' is answered by two paragraphs: leaving one out cannot make it unanswerable
    assert not any(i.id in ("q0-0", "q0-1") and not i.answerable for i in items)
    assert counts["rejected_answer_elsewhere"] >= 0
    # seeded: the same arguments give the same notes and questions
    again = build_near_miss(source, tmp_path / "cache", 3, 8, seed=1)
    assert [i.id for i in again[1]] == [i.id for i in items] and again[0] == corpus


def test_near_miss_and_distractors_refuse_what_the_file_cannot_supply(tmp_path: Path) -> None:
    source = squad(tmp_path, articles=2, paragraphs=2)
    with pytest.raises(NotEnoughQuestionsError, match="more articles"):
        build_near_miss(source, tmp_path, 2, 8)
    with pytest.raises(NotEnoughQuestionsError):
        build_near_miss(source, tmp_path, 5, 2)
    folder = write_distractors(source, tmp_path, 3, seed=0)
    assert len(list(folder.glob("*.md"))) == 3
    with pytest.raises(NotEnoughQuestionsError):
        write_distractors(source, tmp_path, 99)


def test_replay_judges_stored_drafts_again_without_the_model() -> None:
    """A stored run where the model gave the neighbour's figure and the old checks let it
    through: replayed with today's checks, it is withdrawn; gated questions stay gated."""
    item = GoldenItem(id="g02", question="GloVeのベクトルの次元数はいくつですか？",
                      answerable=False, must_not_contain=["300"])  # fmt: skip
    context = {"n": 1, "source": "notes/emb.md", "title": "単語埋め込みのメモ",
               "heading": "単語埋め込みのメモ > Word2Vec", "lines": [3, 5], "score": 1.0,
               "similarity": 0.7, "text": "- 2013年に Google が発表した。\n"
               "- ベクトルの次元数は 300 がよく使われた。"}  # fmt: skip
    glove = {**context, "n": 2, "heading": "単語埋め込みのメモ > GloVe", "lines": [7, 8],
             "text": "- 2014年にスタンフォードが発表した。\n- 共起行列を分解する。"}  # fmt: skip
    body = {"answer": "300 です。[1]", "abstained": False, "reason": "answered",
            "citations": [context], "contexts": [context, glove], "draft": "300 です。[1]",
            "signals": {"best_similarity": 0.7}}  # fmt: skip
    old = record_of(item, body, ["notes/emb.md"], "m")
    old["metrics"] = score_item(item, old)
    assert old["metrics"]["outcome"] == "answered_unanswerable"
    gated = {**old, "id": "g9", "reason": "weak_evidence", "abstained": True, "draft": None}
    verifier = Verifier(Thresholds(), AbstentionPolicy())
    new, kept = replay([old, gated], {}, verifier)
    assert new["abstained"] and new["metrics"]["outcome"] == "right_abstention"
    assert new["signals"]["best_similarity"] == 0.7  # retrieval signals carried over
    assert kept["reason"] == "weak_evidence" and kept["draft"] is None
