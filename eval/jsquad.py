"""SQuAD-format data (JSQuAD) as a Shiori evaluation.

Three uses:
- `build`: every paragraph a note, every question a golden item (retrieval at scale);
- `build_near_miss`: whole articles as notes, with the answering paragraph of half the sampled
  questions left out, so that the rest of the same article is a near miss (answer mode);
- `write_distractors`: N paragraphs as extra notes beside a golden set's own, the way a
  notebook grows.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.dataset import GoldenItem
from eval.metrics import fold
from ingest.pipeline import display_path


def build(squad_json: Path, corpus_dir: Path) -> list[GoldenItem]:
    """Write the paragraphs to ``corpus_dir`` (once; unchanged files are left alone, so
    re-ingesting them costs nothing) and return the questions as golden items."""
    data = json.loads(squad_json.read_text(encoding="utf-8"))
    corpus_dir.mkdir(parents=True, exist_ok=True)
    items: list[GoldenItem] = []
    n = 0
    for article in data["data"]:
        for para in article["paragraphs"]:
            title, sep, text = para["context"].partition(" [SEP] ")
            if not sep:  # plain SQuAD: no title inside the context
                title, text = article.get("title", f"paragraph {n}"), para["context"]
            doc = corpus_dir / f"{n:05d}.txt"
            body = f"{title}\n{text}\n"
            if not doc.exists() or doc.read_text(encoding="utf-8") != body:
                doc.write_text(body, encoding="utf-8")
            source = display_path(doc.resolve())
            for qa in para["qas"]:
                answers = [a["text"] for a in qa.get("answers", []) if a.get("text")]
                impossible = bool(qa.get("is_impossible")) or not answers
                items.append(
                    GoldenItem(
                        id=str(qa["id"]),
                        question=qa["question"],
                        reference_answer=None if impossible else answers[0],
                        reference_sources=[] if impossible else [source],
                        answerable=not impossible,
                        language="ja"
                        if any("\u3040" <= c <= "\u9fff" for c in qa["question"])
                        else "en",
                        category="jsquad",
                    )
                )
            n += 1
    return items


def corpus_dir_for(squad_json: Path, cache: Path) -> Path:
    digest = hashlib.sha256(squad_json.read_bytes()).hexdigest()[:12]
    return cache / "eval-corpora" / f"{squad_json.stem}-{digest}"


@dataclass(frozen=True)
class Paragraph:
    article: int
    index: int  # within its article
    title: str
    text: str
    qas: list[dict[str, Any]]

    @property
    def name(self) -> str:
        return f"{self.article:03d}-{self.index:03d}.md"

    def note(self) -> str:
        """The paragraph as a Markdown note: its article's title as the heading."""
        return f"# {self.title}\n\n{self.text}\n"


def paragraphs(squad_json: Path) -> list[list[Paragraph]]:
    """The paragraphs of a SQuAD-format file, grouped by article (JSQuAD puts the title into
    each context as "title [SEP] text"; plain SQuAD has it on the article)."""
    data = json.loads(squad_json.read_text(encoding="utf-8"))
    articles = []
    for a, article in enumerate(data["data"]):
        group = []
        for i, para in enumerate(article["paragraphs"]):
            title, sep, text = para["context"].partition(" [SEP] ")
            if not sep:
                title, text = article.get("title", f"article {a}"), para["context"]
            group.append(Paragraph(a, i, title.strip(), text.strip(), para["qas"]))
        articles.append(group)
    return articles


def _answers(qa: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(a["text"] for a in qa.get("answers", []) if a.get("text")))


def _write(corpus_dir: Path, kept: list[Paragraph]) -> None:
    corpus_dir.mkdir(parents=True, exist_ok=True)
    wanted = {p.name for p in kept}
    for old in corpus_dir.glob("*.md"):
        if old.name not in wanted:
            old.unlink()
    for p in kept:
        doc = corpus_dir / p.name
        if not doc.exists() or doc.read_text(encoding="utf-8") != p.note():
            doc.write_text(p.note(), encoding="utf-8")


class NotEnoughQuestionsError(ValueError):
    """The chosen articles cannot give that many questions of each kind."""


def build_near_miss(
    squad_json: Path,
    cache: Path,
    articles: int = 12,
    questions: int = 120,
    seed: int = 0,
) -> tuple[Path, list[GoldenItem], dict[str, int]]:
    """A near-miss answer set: ``articles`` whole articles as notes (one note per paragraph,
    the article title as its heading) and ``questions`` questions, half of them unanswerable
    because their paragraph was left out of the notes.

    Seeded: the same arguments give the same notes and questions. Articles are sampled; an
    unanswerable question is taken from a paragraph that is then removed, and only if no
    remaining paragraph of the chosen articles contains any of its gold answers (folded as
    the answer checks fold); at most one question per paragraph, so that no paragraph
    dominates. Answerable questions come from the remaining paragraphs; their check is
    ``must_contain_any`` of their distinct gold answers.

    Returns (corpus folder, items, counts); the corpus is written once under ``cache`` (a
    folder per argument set; unchanged files are left alone so re-ingesting costs nothing).
    Raises `NotEnoughQuestionsError` when the articles cannot supply the questions.
    """
    rng = random.Random(seed)
    groups = paragraphs(squad_json)
    if articles > len(groups):
        raise NotEnoughQuestionsError(f"{squad_json} has {len(groups)} articles, not {articles}")
    chosen = [p for a in sorted(rng.sample(range(len(groups)), articles)) for p in groups[a]]
    order = list(chosen)
    rng.shuffle(order)
    n_unanswerable = questions // 2
    n_answerable = questions - n_unanswerable
    folded = {p.name: fold(p.text) for p in chosen}
    removed: set[str] = set()
    unanswerable: list[tuple[Paragraph, dict[str, Any]]] = []
    rejected = 0
    for para in order:
        if len(unanswerable) == n_unanswerable:
            break
        qas = [q for q in para.qas if _answers(q)]
        rng.shuffle(qas)
        for qa in qas:
            gold = [fold(a) for a in _answers(qa)]
            elsewhere = any(
                g in text
                for name, text in folded.items()
                if name not in removed and name != para.name
                for g in gold
            )
            if elsewhere:
                rejected += 1
                continue
            removed.add(para.name)
            unanswerable.append((para, qa))
            break
    kept = [p for p in chosen if p.name not in removed]
    answerable: list[tuple[Paragraph, dict[str, Any]]] = []
    for para in order:
        if len(answerable) == n_answerable:
            break
        qas = [q for q in para.qas if _answers(q)]
        if para.name in removed or not qas:
            continue
        answerable.append((para, rng.choice(qas)))
    if len(unanswerable) < n_unanswerable or len(answerable) < n_answerable:
        raise NotEnoughQuestionsError(
            f"{articles} articles gave {len(unanswerable)} unanswerable and {len(answerable)} "
            f"answerable questions of {n_unanswerable} + {n_answerable}: ask for more articles"
        )
    digest = hashlib.sha256(squad_json.read_bytes()).hexdigest()[:12]
    corpus = (
        cache
        / "eval-corpora"
        / f"{squad_json.stem}-{digest}-near-miss-a{articles}-q{questions}-s{seed}"
    )
    _write(corpus, kept)
    items = []
    for para, qa in answerable:
        gold = _answers(qa)
        items.append(
            GoldenItem(
                id=str(qa["id"]),
                question=qa["question"],
                reference_answer=gold[0],
                reference_sources=[display_path((corpus / para.name).resolve())],
                answerable=True,
                category="answerable",
                must_contain_any=gold,
            )
        )
    for _, qa in unanswerable:
        items.append(
            GoldenItem(
                id=str(qa["id"]), question=qa["question"], answerable=False, category="near-miss"
            )
        )
    rng.shuffle(items)
    counts = {
        "articles": articles,
        "paragraphs": len(chosen),
        "notes": len(kept),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "rejected_answer_elsewhere": rejected,
    }
    return corpus, items, counts


def write_distractors(squad_json: Path, cache: Path, n: int, seed: int = 0) -> Path:
    """``n`` paragraphs of a SQuAD-format file (seeded sample) as notes in a cached folder, to
    ingest beside a golden set's own notes: retrieval and answers must hold up as unrelated
    notes pile up."""
    rng = random.Random(seed)
    everything = [p for group in paragraphs(squad_json) for p in group]
    if n > len(everything):
        raise NotEnoughQuestionsError(f"{squad_json} has {len(everything)} paragraphs, not {n}")
    digest = hashlib.sha256(squad_json.read_bytes()).hexdigest()[:12]
    folder = cache / "eval-corpora" / f"{squad_json.stem}-{digest}-distractors-{n}-s{seed}"
    _write(folder, rng.sample(everything, n))
    return folder
